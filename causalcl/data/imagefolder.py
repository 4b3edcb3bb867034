"""Any folder of class sub-folders, loaded into memory at a fixed square size.

Layout (one of)::

    <root>/<class>/<image files>                   every split reads the whole tree
    <root>/train/<class>/<image files>             split "train" (and "probe")
    <root>/val/<class>/...  or  <root>/test/<class>/...   split "test" ("test" preferred over "val")

Class names are the sorted union of the class folders over all split folders, so labels agree
between splits. Images are converted to RGB (grey, palette, RGBA... are converted; alpha is
dropped), resized so that the shorter side is ``image_size`` (bilinear, antialiased) and centre-
cropped. Unreadable or truncated files are skipped and counted (``on_error="skip"``, a warning and a
log line give the count) or raise ``ValueError`` (``on_error="raise"``).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .base import TensorImageDataset, check_split

__all__ = ["ImageFolderDataset", "IMAGE_EXTENSIONS", "IMAGEFOLDER_LAYOUT", "load_image"]

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
IMAGEFOLDER_LAYOUT = """<root>/<class>/<image files>            (all splits read the whole tree)
or
<root>/train/<class>/<image files>      (splits "train", "probe")
<root>/test/<class>/<image files>       (split "test"; <root>/val/ is used if test/ is absent)"""


def load_image(path: str | os.PathLike[str], image_size: int) -> np.ndarray:
    """Read one image as uint8 ``(3, S, S)``: RGB, shorter side resized to ``S``, centre crop.

    Raises:
        OSError / ValueError / SyntaxError: unreadable or truncated file (PIL's errors).
    """
    with Image.open(path) as im:
        im.load()  # force decoding now, so a truncated file fails here
        im = im.convert("RGB")
        w, h = im.size
        f = image_size / min(w, h)
        nw, nh = max(image_size, round(w * f)), max(image_size, round(h * f))
        im = im.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - image_size) // 2, (nh - image_size) // 2
        im = im.crop((left, top, left + image_size, top + image_size))
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def _class_dirs(folder: Path) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


class ImageFolderDataset(TensorImageDataset):
    """Images under ``root`` (see the module docstring for the layout), held in memory.

    Args:
        split: ``train``, ``probe`` (= ``train``) or ``test``.
        root: dataset folder.
        image_size: output side (default 64).
        on_error: ``"skip"`` (default; count reported) or ``"raise"`` for unreadable files.
        progress: show a tqdm progress bar while loading.

    Attributes:
        paths: the files loaded, in dataset order. skipped: ``(path, error)`` of the files skipped.

    Raises:
        FileNotFoundError: missing root, or no image files (the message shows the expected layout).
        ValueError: bad split/on_error/image_size; an unreadable file with ``on_error="raise"``; every
            file unreadable.
    """

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        image_size: int = 64,
        on_error: str = "skip",
        progress: bool = True,
    ) -> None:
        check_split(split)
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        if int(image_size) != image_size or image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        if root is None or not Path(root).expanduser().is_dir():
            raise FileNotFoundError(
                f"imagefolder root {root!r} is not a directory. Expected layout:\n{IMAGEFOLDER_LAYOUT}"
            )
        root = Path(root).expanduser()
        folder, class_names = self._split_folder(root, split)
        files = [
            (f, class_names.index(c))
            for c in _class_dirs(folder)
            for f in sorted((folder / c).rglob("*"))
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
        ]
        if not files:
            raise FileNotFoundError(
                f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {folder}. "
                f"Expected layout:\n{IMAGEFOLDER_LAYOUT}"
            )
        images, labels, self.paths, self.skipped = [], [], [], []
        for path, label in tqdm(files, desc=f"loading {folder.name}", unit="img", disable=not progress):
            try:
                images.append(load_image(path, int(image_size)))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                if on_error == "raise":
                    raise ValueError(f"unreadable image file {path}: {exc}") from exc
                self.skipped.append((path, f"{type(exc).__name__}: {exc}"))
                continue
            labels.append(label)
            self.paths.append(path)
        if self.skipped:
            msg = (
                f"imagefolder: skipped {len(self.skipped)} unreadable image file(s) of {len(files)} under "
                f"{folder} (first: {self.skipped[0][0]}: {self.skipped[0][1]})"
            )
            log.warning(msg)
            warnings.warn(msg, stacklevel=2)
        if not images:
            raise ValueError(
                f"empty dataset: none of the {len(files)} image files under {folder} could be read"
            )
        super().__init__(torch.from_numpy(np.stack(images)), torch.tensor(labels), class_names, split=split)

    @staticmethod
    def _split_folder(root: Path, split: str) -> tuple[Path, list[str]]:
        split_dirs = {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}
        if not split_dirs:
            return root, _class_dirs(root)
        names = sorted({c for d in split_dirs.values() for c in _class_dirs(d)})
        if split in ("train", "probe"):
            if "train" not in split_dirs:
                raise FileNotFoundError(
                    f"{root} has split folders {sorted(split_dirs)} but no train/. "
                    f"Expected layout:\n{IMAGEFOLDER_LAYOUT}"
                )
            return split_dirs["train"], names
        folder = split_dirs.get("test", split_dirs.get("val"))
        if folder is None:
            raise FileNotFoundError(
                f"{root} has no test/ or val/ folder for split 'test'. Expected layout:\n{IMAGEFOLDER_LAYOUT}"
            )
        return folder, names
