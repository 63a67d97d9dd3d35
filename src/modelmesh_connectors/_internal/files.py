"""The one atomic write and the one sidecar lock of the library.

Atomic, durable file replacement: temp file beside the target, fsync, ``os.replace``.
Readers see the old file or the new one, never a half-written one (a crash leaves at most a
``<prefix>*.tmp`` file, by default ``.<name>.*.tmp``, which the owning store cleans up).
Callers wrap ``OSError`` into their own error type (cache, publish, lock file).

Lock a sidecar, trust the rename: :class:`SidecarLock` is an exclusive lock on a ``.lock``
file with a timeout, mapped to :class:`~modelmesh_connectors.errors.LockTimeoutError` /
:class:`~modelmesh_connectors.errors.CacheError`. It prevents duplicate work; correctness
never depends on it, only on the rename. On POSIX it is ``flock(2)`` on the file, taken
directly (open, flock, one stat; the file stays): the ``filelock`` package's per-acquire
bookkeeping cost ~1 ms per cache entry, a quarter of a cold install. The lock is the same
kind ``filelock`` takes on POSIX, so either excludes the other. Elsewhere ``filelock`` is used.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from modelmesh_connectors.errors import CacheError, LockTimeoutError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SidecarLock uses the filelock package
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "SidecarLock",
    "atomic_writer",
    "ensure_directory",
    "fsync_directory",
    "write_atomic",
    "write_temp",
]

# Created (or seen) by this process; mkdir costs ~0.3 ms. Kept as strings: hashing a Path
# re-renders it, and a cold install asks twice per archive.
_KNOWN_DIRECTORIES: set[str] = set()


def ensure_directory(directory: Path | str) -> None:
    """``mkdir -p`` once per process and directory.

    If the directory is removed later (e.g. ``cache prune``), the next write fails with
    ``FileNotFoundError``; :func:`write_temp` then forgets it and creates it again.

    Raises:
        OSError: it cannot be created.
    """
    key = os.fspath(directory)
    if key not in _KNOWN_DIRECTORIES:
        os.makedirs(key, exist_ok=True)
        _KNOWN_DIRECTORIES.add(key)


def _forget_directory(directory: Path | str) -> None:
    _KNOWN_DIRECTORIES.discard(os.fspath(directory))


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


# As tempfile.mkstemp opens its files: created here or not at all, never through a symlink,
# readable by the owner only. (tempfile itself brings shutil, random, bz2 and lzma into every
# client start for this one call.)
_TEMP_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_TEMP_ATTEMPTS = 100  # unpredictable names collide only when someone plants them


def _create_temp(directory: Path, prefix: str) -> tuple[int, Path]:
    for _ in range(_TEMP_ATTEMPTS):
        # 96 random bits: another writer (or an attacker guessing names) cannot pre-create it.
        path = directory / f"{prefix}{os.urandom(12).hex()}.tmp"
        try:
            return os.open(path, _TEMP_FLAGS, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {directory}")


def _mkstemp(target: Path, prefix: str | None) -> tuple[int, Path]:
    prefix = prefix if prefix is not None else f".{target.name}."
    ensure_directory(target.parent)
    try:
        return _create_temp(target.parent, prefix)
    except FileNotFoundError:
        _forget_directory(target.parent)  # removed since: create it again
        ensure_directory(target.parent)
        return _create_temp(target.parent, prefix)


@contextlib.contextmanager
def _temp_file(
    target: Path, *, durable: bool, prefix: str | None
) -> Iterator[tuple[BinaryIO, Path]]:
    """A temp file beside ``target``, flushed (and fsynced) on a clean exit, removed on error."""
    fd, tmp = _mkstemp(target, prefix)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle, tmp
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_temp(target: Path, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to a (fsynced) temp file in ``target``'s directory; return its path.

    Raises:
        OSError: the directory cannot be created or written (the temp file is removed).
    """
    with _temp_file(target, durable=durable, prefix=None) as (handle, tmp):
        handle.write(data)
    return tmp


@contextlib.contextmanager
def atomic_writer(
    target: Path, *, durable: bool = True, prefix: str | None = None
) -> Iterator[BinaryIO]:
    """Write ``target`` through a temp file that replaces it only on a clean exit.

    The body writes (and may verify) the temp file; if it raises, the temp file is removed
    and ``target`` is unchanged. Verify inside the block: unverified bytes never get the
    final name.

    Args:
        target: The file to replace.
        durable: fsync the file and its directory (see :func:`write_atomic`).
        prefix: Temp file name prefix (default ``.<name>.``); the suffix is ``.tmp``.

    Yields:
        The open temp file (binary, read-write, at offset 0).

    Raises:
        OSError: the file cannot be written or renamed (nothing changed; no temp file left).
    """
    with _temp_file(target, durable=durable, prefix=prefix) as (handle, tmp):
        yield handle
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_directory(target.parent)


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
    with atomic_writer(target, durable=durable) as handle:
        handle.write(data)


class _Timeout(Exception):
    """The lock was not free before the timeout (mapped to LockTimeoutError)."""


_POLL_FIRST, _POLL_MAX = 0.001, 0.05  # seconds between attempts while another holder has it


class SidecarLock:
    """An inter-process lock on a sidecar file, with a timeout and the project's errors.

    Reentrant within a thread, exclusive across threads and processes (each thread opens
    its own descriptor; ``flock`` locks of two descriptors exclude each other even in one
    process). Take it to avoid duplicate work, then re-check: another process may have
    finished the work while this one waited.

    Args:
        path: The ``.lock`` file (its directory is created on first use).
        timeout: Seconds to wait (``float("inf")``: forever).
        what: Names the lock in messages (``cache lock``, ``metadata lock``).
        hint: What the user can do when it times out.
    """

    def __init__(self, path: Path, *, timeout: float, what: str, hint: str) -> None:
        self.path = path
        # A string: no Path arithmetic per acquire (a cold install takes one lock per archive).
        self._directory = os.path.dirname(path) or "."
        self._timeout = timeout
        self._what = what
        self._hint = hint
        self._held = threading.local()  # .fd and .depth of the calling thread

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block.

        Raises:
            LockTimeoutError: Another holder kept it longer than the timeout.
            CacheError: The directory or the lock file cannot be created.
        """
        depth: int = getattr(self._held, "depth", 0)
        if depth:  # reentrant: this thread holds it already
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        try:
            ensure_directory(self._directory)
        except OSError as exc:
            raise CacheError(
                f"cannot create the directory {self.path.parent} of the {self._what}: {exc}"
            ) from exc
        try:
            release = self._acquire()
        except _Timeout as exc:
            raise LockTimeoutError(
                f"timed out after {self._timeout} s waiting for the {self._what} {self.path}",
                hint=self._hint,
            ) from exc
        except OSError as exc:
            raise CacheError(f"cannot take the {self._what} {self.path}: {exc}") from exc
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            release()

    def _acquire(self) -> Callable[[], None]:
        if fcntl is None:  # pragma: no cover - not POSIX
            return self._acquire_filelock()
        deadline = time.monotonic() + self._timeout
        delay = _POLL_FIRST
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Timeout from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, _POLL_MAX)
                continue
            except BaseException:
                os.close(fd)
                raise
            # Locked, but maybe a file another holder unlinked after we opened it (filelock
            # may remove its file on release): a lock on a name-less inode excludes nobody.
            try:
                here, named = os.fstat(fd), os.stat(self.path)
                same = (here.st_dev, here.st_ino) == (named.st_dev, named.st_ino)
            except FileNotFoundError:
                same = False
            if same:
                return lambda: os.close(fd)  # closing the descriptor releases the flock
            os.close(fd)

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            _forget_directory(self._directory)  # removed since: create it again
            ensure_directory(self._directory)
            return os.open(self.path, flags, 0o644)

    def _acquire_filelock(self) -> Callable[[], None]:  # pragma: no cover - not POSIX
        from filelock import FileLock, Timeout

        lock = FileLock(self.path, timeout=self._timeout)
        try:
            lock.acquire()
        except Timeout as exc:
            raise _Timeout from exc
        except FileNotFoundError:
            _forget_directory(self._directory)
            ensure_directory(self._directory)
            try:
                lock.acquire()
            except Timeout as exc:
                raise _Timeout from exc
        return lambda: lock.release()
