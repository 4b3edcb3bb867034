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


def _example():
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_own_encoder", ROOT / "examples" / "evaluate_own_encoder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _folder(root: Path, mask_shape=(20, 24)) -> Path:
    import numpy as np
    from PIL import Image

    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((20, 24, 3), dtype=np.uint8)).save(root / cls / "0.png")
        np.save(root / cls / "0.mask.npy", np.ones(mask_shape, dtype=bool))
    return root


def test_example_masks_must_fit_their_image_and_errors_name_the_file(tmp_path):
    import numpy as np
    import pytest

    example = _example()
    images, masks, labels, classes = example.load_folder(_folder(tmp_path / "ok"), size=16)
    assert images.shape == (2, 3, 16, 16) and masks.shape == (2, 16, 16) and classes == ["a", "b"]
    bad = _folder(tmp_path / "size", mask_shape=(10, 10))
    with pytest.raises(ValueError, match=rf"mask file {bad / 'a' / '0.mask.npy'}: shape \(10, 10\) does not match"):
        example.load_folder(bad)
    cube = _folder(tmp_path / "cube", mask_shape=(3, 20, 24))
    with pytest.raises(ValueError, match=rf"mask file {cube / 'a' / '0.mask.npy'}: expected a 2-D"):
        example.load_folder(cube)
    single = _folder(tmp_path / "single", mask_shape=(20, 24, 1))  # one channel is fine
    assert example.load_folder(single, size=16)[1].shape == (2, 16, 16)
    (cube / "a" / "0.mask.npy").write_bytes(b"junk")
    with pytest.raises(ValueError, match=rf"mask file {cube / 'a' / '0.mask.npy'}: could not be read"):
        example.load_folder(cube)
    empty = _folder(tmp_path / "empty")
    (empty / "c").mkdir()
    with pytest.raises(ValueError, match=rf"class folder {empty / 'c'}: no .png images"):
        example.load_folder(empty)
    assert np.load(empty / "a" / "0.mask.npy").shape == (20, 24)
