"""Use the evaluation layer from your own code: a torchvision ResNet and a folder of images with masks.

Layout of the folder (any image size; masks are boolean .npy arrays of the image's height × width):

    my_images/<class name>/<image>.png
    my_images/<class name>/<image>.mask.npy

    python examples/evaluate_own_encoder.py runs/my_images [--make-demo-folder]

``--make-demo-folder`` first writes such a folder from the embedded ``shapes`` data, so the example
runs anywhere. Nothing here imports ``causalcl`` except that optional step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

import evaluations
from evaluations import foreground, grounding, robustness, spectrum


def load_mask(path: Path, image_hw: tuple[int, int], size: int) -> torch.Tensor:
    """The boolean mask of one image from ``path`` (a 2-D .npy array of the image's height × width, or with a
    single channel), resized like its image. Every error names the file."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"mask file {path}: could not be read as a .npy array ({exc})") from exc
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
        arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:-1])  # (1, H, W) or (H, W, 1)
    if arr.ndim != 2:
        raise ValueError(f"mask file {path}: expected a 2-D (height, width) array, got shape {arr.shape}")
    if arr.shape != image_hw:
        raise ValueError(f"mask file {path}: shape {arr.shape} does not match its image's (height, width) {image_hw}")
    mask = Image.fromarray((arr != 0).astype(np.uint8) * 255)
    return torch.from_numpy(np.array(mask.resize((size, size), Image.NEAREST)) > 127)


def load_folder(root: Path, size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Images (N,3,size,size) in [0,1], masks (N,size,size) bool, labels (N,), class names.

    A class folder without images is refused (it would become a class no image has), as is a mask that is not
    the size of its image."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; expected {root}/<class name>/<image>.png with masks")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise FileNotFoundError(f"{root}: no class folders; expected {root}/<class name>/<image>.png with masks")
    images, masks, labels = [], [], []
    for label, name in enumerate(classes):
        paths = sorted((root / name).glob("*.png"))
        if not paths:
            raise ValueError(f"class folder {root / name}: no .png images; remove the folder or add its images")
        for path in paths:
            with Image.open(path) as im:
                image = im.convert("RGB")
            masks.append(load_mask(path.with_suffix(".mask.npy"), (image.height, image.width), size))
            image = image.resize((size, size), Image.BILINEAR)
            images.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255)
            labels.append(label)
    return torch.stack(images), torch.stack(masks), torch.tensor(labels), classes


def make_demo_folder(root: Path, n: int = 400) -> None:
    from causalcl.data import get_dataset  # only to produce example data

    data = get_dataset("shapes", split="test", n=n)
    for i in range(n):
        item = data[i]
        folder = root / data.class_names[item["label"]]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")
        np.save(folder / f"{i:05d}.mask.npy", item["mask"].numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--make-demo-folder", action="store_true")
    args = parser.parse_args()
    if args.make_demo_folder:
        make_demo_folder(args.root)

    try:
        images, masks, labels, classes = load_folder(args.root)
    except (ValueError, OSError) as exc:  # one clear line, not a traceback
        parser.exit(2, f"error: {exc}\n")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))  # folders are sorted by class
    images, masks, labels = images[order], masks[order], labels[order]
    half = len(images) // 2  # fit probes on one half, score on the other
    resnet = torchvision.models.resnet18(weights=None)  # your encoder: load your own weights here
    resnet.fc = torch.nn.Identity()

    feats = evaluations.extract_features(resnet, images, batch_size=128).x
    train, test = slice(0, half), slice(half, None)
    probe = evaluations.linear_probe(feats[train], labels[train], feats[test], labels[test])
    print(f"linear probe {probe.accuracy:.1%}, kNN "
          f"{evaluations.knn_accuracy(feats[train], labels[train], feats[test], labels[test], k=20):.1%}")
    print(f"RankMe {spectrum.rankme(feats):.1f}, alpha-ReQ {spectrum.alpha_req(feats)[0]:.2f}")

    classifier = torch.nn.Sequential(resnet, probe.classifier).eval()
    views = foreground.variants(images[test], masks[test], labels[test], num_classes=len(classes))
    accs = foreground.background_variant_accuracies(classifier, views, labels[test])
    print(f"BG-gap {foreground.bg_gap(accs['mixed_same'], accs['mixed_rand']):+.1%}, only-fg {accs['only_fg']:.1%}")

    cams = grounding.grad_cam(resnet, images[test][:64], resnet.layer4, labels[test][:64], probe=probe.classifier)
    metrics = grounding.grounding_metrics(cams, masks[test][:64])
    print(f"CAM energy in mask {metrics['energy_in_mask']:.1%} (uniform map: {metrics['energy_baseline']:.1%})")

    result = robustness.corruption_errors(classifier, (images[test][:64], labels[test][:64]),
                                          corruptions=["gaussian_noise", "defocus_blur", "contrast"], progress=False)
    print(f"{result.label}: clean error {result.clean_error:.1%}, mean corrupted error {result.mean_error:.1%}")


if __name__ == "__main__":
    main()
