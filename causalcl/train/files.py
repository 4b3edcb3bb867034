"""Atomic file writes: a temporary file in the same folder, fsync, ``os.replace``, fsync of the folder.

A reader never sees a partial file: a process killed at any moment leaves the previous complete file or the
new one, and at worst a ``.<name>.*.tmp`` file, which :func:`remove_stale_temp_files` clears at the next start.
A write that fails (disk full, read-only folder) raises ``OSError`` naming the file, and leaves no temp file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "remove_stale_temp_files", "temp_prefix"]


def temp_prefix(path: Path) -> str:
    """The name prefix of ``path``'s temporary files (``.checkpoint.pt.``)."""
    return f".{path.name}."


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], None]) -> Path:
    """Write ``data`` (bytes, or a function that writes to a binary handle) to ``path`` atomically.

    Raises:
        OSError: the file could not be written; the message names it (a failure inside ``data``'s writer,
            such as torch's ``enforce fail at inline_container.cc`` on a full disk, is reported the same way).
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
        if isinstance(exc, RuntimeError):  # torch.save's writer: "[enforce fail at inline_container.cc] ..."
            free = _free_bytes(path.parent)
            hint = " (the disk is full)" if free is not None and free < (1 << 20) else ""
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OSError(errno.EIO, f"cannot write {str(path)!r}{hint}: {reason}") from None
        raise
    _fsync_folder(path.parent)
    return path


def _free_bytes(folder: Path) -> int | None:
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return stats.f_bavail * stats.f_frsize


def _fsync_folder(folder: Path) -> None:
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders; the file itself is already synced
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def remove_stale_temp_files(path: str | Path) -> list[Path]:
    """Remove the temporary files an interrupted :func:`atomic_write` of ``path`` left behind; returns them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = sorted(path.parent.glob(f"{temp_prefix(path)}*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale
