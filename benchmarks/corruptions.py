"""Benchmark ``evaluations.robustness.corrupt`` against imagecorruptions-imaug, per corruption, at 224 and 32 px.

Images: ``--n`` natural photographs from ``skimage.data`` (astronaut, chelsea, coffee, rocket, retina,
motorcycle), cropped at several offsets and scales and resized (INTER_AREA) to the size; nothing is
downloaded. Severity ``--severity`` (3).

* ours: one batched call ``corrupt(batch, name, severity)`` on the float tensor (N, 3, S, S) in [0, 1] (the
  path models use), and the same on the uint8 (N, S, S, 3) array (the reference's input type);
* theirs: ``imagecorruptions.corrupt(img, corruption_name=name, severity=severity)`` per uint8 (S, S, 3) image
  over the first ``--n-ref`` images. imagecorruptions always uses the ImageNet parameters (also at 32 px, where
  ours uses the CIFAR-10-C ones: the 32 px rows compare different amounts of work), picks frost among 6
  photos and resizes the photo on every call.

Each timing is the median of ``--repeats`` interleaved rounds after one warm-up call of each, in seconds per
image. Prints ``RATIO corruption_<name>_<size> <ours / theirs time>`` (< 1 = we are faster) for the uint8 path,
whose input and output types are the reference's, and ``RATIO corruption_<name>_<size>_float`` for the float
tensor path; ``RATIO corruptions_total_<size>`` and ``..._float`` are their total / our total (speed-up over
all corruptions timed). Writes ``benchmarks/results/corruptions.json``. Without imagecorruptions-imaug only our
times are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage import data as skdata

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians, report_ratio, write_results  # noqa: E402

from evaluations.robustness import CORRUPTIONS, corrupt, frost_source  # noqa: E402


def natural_images(n: int, size: int) -> np.ndarray:
    """``n`` uint8 (size, size, 3) crops of skimage's colour photographs, deterministic."""
    photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket(), skdata.retina(),
              skdata.motorcycle_left() if hasattr(skdata, "motorcycle_left") else skdata.stereo_motorcycle()[0]]
    photos = [p[..., :3] for p in photos if p.ndim == 3]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        p = photos[i % len(photos)]
        h, w = p.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 1.0))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        out.append(cv2.resize(p[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64, help="images in our batch")
    ap.add_argument("--n-ref", type=int, default=16, help="images timed per round for imagecorruptions")
    ap.add_argument("--severity", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 32])
    ap.add_argument("--corruptions", nargs="+", default=list(CORRUPTIONS))
    args = ap.parse_args()

    warnings.filterwarnings("ignore")
    try:
        from imagecorruptions import corrupt as ref_corrupt
    except ImportError:
        ref_corrupt = None
        print("imagecorruptions-imaug is not installed (pip install imagecorruptions-imaug): timing ours only")

    results: dict = {
        "severity": args.severity, "n": args.n, "n_ref": args.n_ref, "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "opencv": cv2.__version__, "frost_source": frost_source(), "sizes": {},
    }
    for size in args.sizes:
        u8 = natural_images(args.n, size)
        x = torch.from_numpy(u8).permute(0, 3, 1, 2).float().div(255.0).contiguous()
        ref_imgs = [np.ascontiguousarray(im) for im in u8[: args.n_ref]]
        per: dict = {}
        tot_ours = tot_u8 = tot_ref = 0.0
        for name in args.corruptions:
            fns = {
                "ours": lambda name=name, x=x: corrupt(x, name, args.severity),
                "ours_uint8": lambda name=name, u8=u8: corrupt(u8, name, args.severity),
            }
            if ref_corrupt is not None:
                def ref(name: str = name, ref_imgs: list = ref_imgs) -> None:
                    np.random.seed(0)
                    for im in ref_imgs:
                        ref_corrupt(im, corruption_name=name, severity=args.severity)

                fns["theirs"] = ref
            med = interleaved_medians(fns, repeats=args.repeats, warmup=1)
            ours, ours_u8 = med["ours"] / args.n, med["ours_uint8"] / args.n
            row = {"ours_s_per_image": ours, "ours_uint8_s_per_image": ours_u8}
            tot_ours += ours
            tot_u8 += ours_u8
            if ref_corrupt is not None:
                theirs = med["theirs"] / len(ref_imgs)
                tot_ref += theirs
                row |= {"theirs_s_per_image": theirs, "ratio_ours_over_theirs": ours / theirs,
                        "ratio_uint8_over_theirs": ours_u8 / theirs}
                report_ratio(f"corruption_{name}_{size}", ours_u8 / theirs, ours_uint8_ms=ours_u8 * 1e3,
                             theirs_ms=theirs * 1e3)
                report_ratio(f"corruption_{name}_{size}_float", ours / theirs, ours_float_ms=ours * 1e3,
                             theirs_ms=theirs * 1e3)
            else:
                print(f"TIME corruption_{name}_{size} ours_ms={ours * 1e3:.4g} ours_uint8_ms={ours_u8 * 1e3:.4g}")
            per[name] = row
        summary = {"ours_total_s_per_image": tot_ours, "ours_uint8_total_s_per_image": tot_u8}
        if ref_corrupt is not None:
            summary |= {"theirs_total_s_per_image": tot_ref, "speedup_total": tot_ref / tot_ours,
                        "speedup_total_uint8": tot_ref / tot_u8}
            report_ratio(f"corruptions_total_{size}", tot_ref / tot_u8, ours_uint8_ms=tot_u8 * 1e3,
                         theirs_ms=tot_ref * 1e3)
            report_ratio(f"corruptions_total_{size}_float", tot_ref / tot_ours, ours_float_ms=tot_ours * 1e3,
                         theirs_ms=tot_ref * 1e3)
        else:
            print(f"TIME corruptions_total_{size} ours_ms={tot_ours * 1e3:.4g} ours_uint8_ms={tot_u8 * 1e3:.4g}")
        results["sizes"][str(size)] = {"per_corruption": per, "summary": summary}
    path = write_results("corruptions", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
