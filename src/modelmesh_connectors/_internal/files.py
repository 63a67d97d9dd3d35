"""Atomic, durable file replacement: temp file beside the target, fsync, ``os.replace``.

Readers see the old file or the new one, never a half-written one (a crash leaves at most a
``.<name>.*.tmp`` file, which the owning store cleans up). Callers wrap ``OSError`` into their
own error type (cache, publish, lock file).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["ensure_directory", "fsync_directory", "write_atomic", "write_temp"]

_KNOWN_DIRECTORIES: set[Path] = set()  # created (or seen) by this process; mkdir costs ~0.3 ms


def ensure_directory(directory: Path) -> None:
    """``mkdir -p`` once per process and directory.

    If the directory is removed later (e.g. ``cache prune``), the next write fails with
    ``FileNotFoundError``; :func:`write_temp` then forgets it and creates it again.

    Raises:
        OSError: it cannot be created.
    """
    if directory not in _KNOWN_DIRECTORIES:
        directory.mkdir(parents=True, exist_ok=True)
        _KNOWN_DIRECTORIES.add(directory)


def fsync_directory(directory: Path) -> None:
    """Make a rename durable; best effort (some platforms cannot fsync a directory)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_temp(target: Path, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to a (fsynced) temp file in ``target``'s directory; return its path.

    Raises:
        OSError: the directory cannot be created or written (the temp file is removed).
    """
    ensure_directory(target.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except FileNotFoundError:
        _KNOWN_DIRECTORIES.discard(target.parent)  # removed since: create it again
        ensure_directory(target.parent)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def write_atomic(target: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``target`` with ``data`` atomically (and durably unless ``durable`` is off).

    Args:
        target: The file to replace.
        data: Its new bytes.
        durable: fsync the file and its directory. Off only for content-addressed files
            that are re-verified on every read (a lost write is then just a miss).

    Raises:
        OSError: the file cannot be written (nothing changed; no temp file is left).
    """
    tmp = write_temp(target, data, durable=durable)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_directory(target.parent)
