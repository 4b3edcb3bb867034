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

Foreground masks (optional) lie beside their images as ``<image stem>.mask.npy``, e.g.
``root/train/dog/img1.jpg`` + ``root/train/dog/img1.mask.npy``: a 2-D ``(H, W)`` array of the image file's
height and width (nonzero = foreground; a 3-D ``(H, W, C)`` / ``(C, H, W)`` array with ``C`` in 1, 3, 4
counts a pixel as foreground when any channel is nonzero). They get the image's geometry exactly
(shorter side resized to ``image_size``, nearest-neighbour, then the same centre crop) and are attached
as ``masks`` (bool ``(N, S, S)``) when every image file has one (``masks=None``), required
(``masks=True``) or ignored (``masks=False``). Mask files are never read as images.
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

__all__ = [
    "ImageFolderDataset",
    "IMAGE_EXTENSIONS",
    "IMAGEFOLDER_LAYOUT",
    "MASK_SUFFIX",
    "load_image",
    "load_mask",
    "mask_path",
]

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
IMAGEFOLDER_LAYOUT = """<root>/<class>/<image files>            (all splits read the whole tree)
or
<root>/train/<class>/<image files>      (splits "train", "probe")
<root>/test/<class>/<image files>       (split "test"; <root>/val/ is used if test/ is absent)
optional foreground masks beside the images: <class>/<image stem>.mask.npy (2-D, nonzero = foreground)"""
#: a foreground mask ``<image stem>.mask.npy`` lies beside its image
MASK_SUFFIX = ".mask.npy"


def _square_box(w: int, h: int, image_size: int) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """The resized ``(width, height)`` (shorter side = ``image_size``) and the centre-crop box of a ``w x h`` image."""
    f = image_size / min(w, h)
    nw, nh = max(image_size, round(w * f)), max(image_size, round(h * f))
    left, top = (nw - image_size) // 2, (nh - image_size) // 2
    return (nw, nh), (left, top, left + image_size, top + image_size)


def _read_image(path: str | os.PathLike[str], image_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`load_image` plus the file's ``(height, width)``."""
    with Image.open(path) as im:
        im.load()  # force decoding now, so a truncated file fails here
        im = im.convert("RGB")
        w, h = im.size
        size, box = _square_box(w, h, image_size)
        im = im.resize(size, Image.BILINEAR).crop(box)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy(), (h, w)


def load_image(path: str | os.PathLike[str], image_size: int) -> np.ndarray:
    """Read one image as uint8 ``(3, S, S)``: RGB, shorter side resized to ``S``, centre crop.

    Raises:
        OSError / ValueError / SyntaxError: unreadable or truncated file (PIL's errors).
    """
    return _read_image(path, image_size)[0]


def mask_path(image_path: str | os.PathLike[str]) -> Path:
    """Where the foreground mask of ``image_path`` lies: ``<same folder>/<image stem>.mask.npy``."""
    p = Path(image_path)
    return p.parent / (p.stem + MASK_SUFFIX)


def load_mask(path: str | os.PathLike[str], image_hw: tuple[int, int], image_size: int) -> np.ndarray:
    """Read one mask file as bool ``(S, S)`` with the geometry :func:`load_image` gives its image.

    ``image_hw`` is the image file's ``(height, width)``; the mask must have that shape. It is resized
    nearest-neighbour so that the shorter side is ``S`` and centre-cropped like the image.

    Raises:
        ValueError: unreadable file, not a numeric/bool array, wrong ndim, or a shape other than ``image_hw``
            (the message names the file).
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"unreadable mask file {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(arr, np.ndarray):  # an .npz archive
        arr.close()
        raise ValueError(f"mask file {path}: expected one .npy array, got {type(arr).__name__}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"mask file {path}: expected a numeric or bool array, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = (arr != 0).any(axis=-1)  # (H, W, C)
    elif arr.ndim == 3 and arr.shape[0] in (1, 3, 4):
        arr = (arr != 0).any(axis=0)  # (C, H, W)
    if arr.ndim != 2:
        raise ValueError(f"mask file {path}: expected a 2-D (H, W) array, got shape {arr.shape}")
    if arr.shape != tuple(image_hw):
        raise ValueError(
            f"mask file {path}: shape {arr.shape} does not match its image's (height, width) {tuple(image_hw)}"
        )
    h, w = arr.shape
    size, box = _square_box(w, h, image_size)
    im = Image.fromarray((arr != 0).astype(np.uint8) * 255).resize(size, Image.NEAREST).crop(box)
    return np.asarray(im) > 127


def _class_dirs(folder: Path) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


class ImageFolderDataset(TensorImageDataset):
    """Images under ``root`` (see the module docstring for the layout), held in memory.

    Args:
        split: ``train``, ``probe`` (= ``train``) or ``test``.
        root: dataset folder.
        image_size: output side (default 64).
        on_error: ``"skip"`` (default; count reported) or ``"raise"`` for unreadable image files.
        progress: show a tqdm progress bar while loading.
        masks: foreground masks ``<image stem>.mask.npy`` (module docstring): ``None`` (default) attaches
            them when every image file of the split has one (a warning names the first missing one when
            only some have), ``True`` requires them, ``False`` ignores them.

    Attributes:
        paths: the files loaded, in dataset order. skipped: ``(path, error)`` of the files skipped.
        masks: bool ``(N, S, S)`` aligned with ``images``, or ``None``. mask_paths: the mask file of each
            of ``paths``, or ``None``.

    Raises:
        FileNotFoundError: missing root, or no image files (the message shows the expected layout);
            ``masks=True`` and an image without a mask file (the first one and the count are named).
        ValueError: bad split/on_error/image_size/masks; an unreadable image file with ``on_error="raise"``;
            every image file unreadable; a bad mask file (unreadable, not 2-D, or not the shape of its image),
            whatever ``on_error``.
    """

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        image_size: int = 64,
        on_error: str = "skip",
        progress: bool = True,
        masks: bool | None = None,
    ) -> None:
        check_split(split)
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        if masks is not None and not isinstance(masks, bool):
            raise ValueError(f"masks must be None (attach when all present), True or False, got {masks!r}")
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
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.lower().endswith(MASK_SUFFIX)
        ]
        if not files:
            raise FileNotFoundError(
                f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {folder}. "
                f"Expected layout:\n{IMAGEFOLDER_LAYOUT}"
            )
        with_masks = self._find_masks([f for f, _ in files], folder, masks)
        images, labels, mask_arrays, self.paths, self.skipped = [], [], [], [], []
        for path, label in tqdm(files, desc=f"loading {folder.name}", unit="img", disable=not progress):
            try:
                image, hw = _read_image(path, int(image_size))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                if on_error == "raise":
                    raise ValueError(f"unreadable image file {path}: {exc}") from exc
                self.skipped.append((path, f"{type(exc).__name__}: {exc}"))
                continue
            if with_masks:
                mask_arrays.append(load_mask(mask_path(path), hw, int(image_size)))
            images.append(image)
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
        self.mask_paths = [mask_path(p) for p in self.paths] if with_masks else None
        super().__init__(
            torch.from_numpy(np.stack(images)),
            torch.tensor(labels),
            class_names,
            masks=torch.from_numpy(np.stack(mask_arrays)) if with_masks else None,
            split=split,
        )

    @staticmethod
    def _find_masks(files: list[Path], folder: Path, masks: bool | None) -> bool:
        """Whether to load masks: every image file of the split has its ``<stem>.mask.npy`` (``masks`` semantics)."""
        if masks is False:
            return False
        missing = [mask_path(f) for f in files if not mask_path(f).is_file()]
        if not missing:
            return True
        if masks is True:
            raise FileNotFoundError(
                f"imagefolder: masks=True but {len(missing)} of {len(files)} image files under {folder} have no "
                f"mask file (first missing: {missing[0]}); each image <stem>.<ext> needs <stem>{MASK_SUFFIX} "
                f"beside it. Expected layout:\n{IMAGEFOLDER_LAYOUT}"
            )
        if len(missing) < len(files):
            msg = (
                f"imagefolder: masks not attached: {len(missing)} of {len(files)} image files under {folder} have "
                f"no mask file (first missing: {missing[0]}); masks=True requires them, masks=False silences this"
            )
            log.warning(msg)
            warnings.warn(msg, stacklevel=3)
        return False

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
