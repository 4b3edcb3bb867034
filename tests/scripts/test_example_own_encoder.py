"""The README's "use the evaluation layer from your own code" example runs end to end."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_example_runs_on_a_folder_with_masks(tmp_path):
    env = {**os.environ, "CAUSALCL_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "evaluate_own_encoder.py"), str(tmp_path / "imgs"),
                           "--make-demo-folder"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for phrase in ("linear probe", "RankMe", "BG-gap", "CAM energy in mask", "synthetic corruptions"):
        assert phrase in done.stdout
    assert len(list((tmp_path / "imgs").glob("*/*.mask.npy"))) == 400
