"""The content-addressed archive cache: only verified bytes ever become visible.

Layout below the cache root::

    archives/sha256/<hh>/<hex>              a verified archive; <hex> = sha256 of its bytes
    archives/sha256/<hh>/<hex>.lock         sidecar lock for <hex> (may stay; harmless)
    archives/sha256/<hh>/<hex>.<rand>.tmp   a download in progress, or a crash leftover

``<hh>`` is the first two hex characters (a fan-out level that keeps
directories small). A download goes to a temporary file in the same directory
while it is hashed and counted; only when length and sha256 match is it
``os.replace``-d into place (atomic on POSIX), so a reader sees either nothing
or a complete, verified file. Entries are not fsync-ed: every read re-hashes,
so a write lost in a crash is only a miss. A ``FileLock`` on the
sidecar stops two processes (or threads) downloading the same archive twice;
correctness never depends on it, only on the rename.
"""

from __future__ import annotations

__all__ = [
    "CACHE_DIR_ENV",
    "ArchiveCache",
    "CacheEntry",
    "default_cache_dir",
]

import contextlib
import hashlib
import io
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator, Sequence, Set
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

if TYPE_CHECKING:  # the network seam is imported only where a download happens
    import queue

    from modelmesh_connectors.client.fetcher import Sink
from modelmesh_connectors._internal.digest import (
    Hasher,
    check_digest,
    check_length,
    length_problem,
    sha256_hex,
)
from modelmesh_connectors._internal.files import SidecarLock, atomic_writer
from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.client.settings import CACHE_DIR_ENV, default_cache_dir
from modelmesh_connectors.errors import (
    CacheError,
    HashMismatchError,
    InvalidInput,
    LengthMismatchError,
)

_logger = logging.getLogger("modelmesh_connectors.client.cache")

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_FANOUT_DIR = re.compile(r"[0-9a-f]{2}")
_MISSING: Final = "missing"
_REMOVED: Final = "the entry was removed; fetch it again"


class CacheEntry(Frozen):
    """One archive in the cache (not re-verified; see :meth:`ArchiveCache.verify_all`)."""

    __slots__ = ("path", "sha256", "size")

    sha256: str  # lowercase hex, also the file name
    path: Path
    size: int  # bytes

    def __init__(self, sha256: str, path: Path, size: int) -> None:
        object.__setattr__(self, "sha256", sha256)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "size", size)


class _VerifyingSink:
    """Writes to the temp file while hashing and counting; refuses to pass ``length``."""

    def __init__(self, file: BinaryIO, path: Path, sha256: str, length: int) -> None:
        self._file = file
        self._path = path
        self._hasher = Hasher(sha256=sha256, length=length, what=f"archive {sha256}")
        self._closed = False

    def write(self, data: bytes) -> None:
        self._check_open()
        # Counted first: stops an endless or oversized download before it fills the disk.
        self._hasher.update(data)
        try:
            self._file.write(data)
        except OSError as exc:
            raise CacheError(f"cannot write the cache file {self._path}: {exc}") from exc

    def reset(self) -> None:
        self._check_open()
        try:
            self._file.seek(0)
            self._file.truncate()
        except OSError as exc:
            raise CacheError(f"cannot truncate the cache file {self._path}: {exc}") from exc
        self._hasher.reset()

    def finish(self) -> None:
        """Raise unless exactly the expected bytes were written."""
        self._check_open()
        self._hasher.check()

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this cache sink was used after its fetch() returned")


_PIPELINE_BYTES: Final = 8 * 1024 * 1024  # archives this long hash and write on a second thread
_BATCH_BYTES: Final = 1024 * 1024  # bytes of chunks handed to that thread at once
_BATCHES_QUEUED: Final = 2  # batches waiting at most: bounds what a fast sender can pile up


class _PipelinedSink(_VerifyingSink):
    """A :class:`_VerifyingSink` whose hashing and writing run on a second thread.

    For a large archive the receiving thread only counts each chunk (the cap is enforced
    here, before a byte is queued: an endless or oversized body stops at the signed length)
    and queues it; a worker thread hashes and writes the chunks in order. ``sha256`` and
    file writes release the interpreter lock, so receiving overlaps them on a second core.
    The queue is bounded (``_BATCHES_QUEUED`` batches of ``_BATCH_BYTES``): memory stays a
    few MiB whatever the archive's size. :meth:`finish` waits for the worker before the
    check, so the file is renamed only after every byte was hashed and written.
    """

    def __init__(self, file: BinaryIO, path: Path, sha256: str, length: int) -> None:
        super().__init__(file, path, sha256, length)
        self._length = length
        self._count = 0  # bytes accepted (queued or done)
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._queue: queue.Queue[list[bytes] | None] | None = None
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, data: bytes) -> None:
        self._check_open()
        if self._count + len(data) > self._length:
            # Counted before queuing: stops an endless or oversized download at the cap.
            raise LengthMismatchError(
                f"length mismatch for archive {self._hasher.sha256}: expected {self._length} "
                f"bytes, got more ({self._count + len(data)} so far); aborted"
            )
        self._count += len(data)
        self._batch.append(data)
        self._batch_bytes += len(data)
        if self._batch_bytes >= _BATCH_BYTES:
            self._hand_off()

    def reset(self) -> None:
        self._check_open()
        self._batch, self._batch_bytes, self._count = [], 0, 0  # never written
        self._stop()  # the worker is idle before the file is truncated under it
        super().reset()

    def finish(self) -> None:
        self._check_open()
        self._stop()  # every byte hashed and written (or the worker's error raised)
        super().finish()

    def close(self) -> None:
        if not self._closed:
            self._batch = []
            with contextlib.suppress(BaseException):
                self._stop()  # the caller is already failing: its error wins
        super().close()

    def _hand_off(self) -> None:
        self._raise_worker_error()
        if self._queue is None:
            import queue  # deferred: only a large download needs it

            self._queue = queue.Queue(_BATCHES_QUEUED)
            self._worker = threading.Thread(target=self._work, name="mmc-hash-write", daemon=True)
            self._worker.start()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._queue.put(batch)  # waits while the worker is _BATCHES_QUEUED batches behind

    def _stop(self) -> None:
        """Hand over the last batch, wait for the worker to end, raise its error."""
        if self._batch:
            self._hand_off()
        if self._queue is not None and self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._queue = self._worker = None
        self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _work(self) -> None:
        assert self._queue is not None
        take = self._queue.get
        while (batch := take()) is not None:
            if self._error is not None:
                continue  # failed already: drain, so the receiving thread never blocks
            try:
                for chunk in batch:
                    self._hasher.update(chunk)
                self._file.writelines(batch)
            except OSError as exc:
                self._error = CacheError(f"cannot write the cache file {self._path}: {exc}")
                self._error.__cause__ = exc
            except BaseException as exc:  # handed to the receiving thread
                self._error = exc


class ArchiveCache:
    """A content-addressed store of verified archive bytes.

    Thread- and process-safe: writers of one digest take its sidecar lock;
    readers rely on atomic renames and re-hash what they read.

    Args:
        root: The cache root (see :func:`default_cache_dir`); archives live in
            ``root/archives/sha256``.
        lock_timeout: Seconds to wait for another process holding an entry's
            lock (``float("inf")`` waits forever).

    Raises:
        ValueError: ``lock_timeout`` is negative or NaN.
    """

    def __init__(self, root: Path, *, lock_timeout: float = 60.0) -> None:
        if not lock_timeout >= 0:
            raise ValueError(f"lock_timeout must be >= 0 seconds, got {lock_timeout!r}")
        self._root = Path(root)
        self._store = self._root / "archives" / "sha256"
        self._store_text = str(self._store)
        self._lock_timeout = lock_timeout

    @property
    def root(self) -> Path:
        """The cache root given to the constructor."""
        return self._root

    def path_for(self, sha256: str) -> Path:
        """Where the archive with this digest lives (whether or not it exists).

        Args:
            sha256: Lowercase hex sha256.

        Returns:
            ``root/archives/sha256/<hh>/<hex>``.

        Raises:
            InvalidInput: ``sha256`` is not 64 lowercase hex characters.
        """
        return Path(self._entry_text(sha256))

    def _entry_text(self, sha256: str) -> str:
        """:meth:`path_for` as a string: the hot path (a warm run looks up every archive)
        builds no Path object until it returns one."""
        digest = _check_digest(sha256)
        return os.path.join(self._store_text, digest[:2], digest)

    # -- reading -----------------------------------------------------------------

    def lookup(self, sha256: str, length: int) -> Path | None:
        """Return the entry's path if it exists with this length and hash.

        A corrupt or wrong-size entry counts as a miss: it is removed (under
        its lock, after a re-check) and a warning is logged.

        Args:
            sha256: Expected lowercase hex sha256.
            length: Expected size in bytes.

        Returns:
            The verified path, or ``None`` on a miss.

        Raises:
            InvalidInput: Malformed ``sha256`` or ``length``.
            LockTimeoutError: Removing a corrupt entry waited too long for its lock.
            CacheError: The entry cannot be read or removed.
        """
        where = self._entry_text(sha256)
        _check_length(length)
        problem = _entry_problem(where, sha256, length)
        if problem is None:
            return Path(where)
        if problem != _MISSING:
            self._discard_if_still_bad(Path(where), sha256, length)
        return None

    def read_verified(self, sha256: str, length: int) -> bytes:
        """Read an entry and hash it in one pass.

        The returned bytes are exactly the bytes that were hashed, so using
        them leaves no window between check and use (stops a swapped-file race).

        Args:
            sha256: Expected lowercase hex sha256.
            length: Expected size in bytes.

        Returns:
            The archive bytes.

        Raises:
            InvalidInput: Malformed ``sha256`` or ``length``.
            CacheError: The entry is missing or unreadable.
            LengthMismatchError: The entry has another size (it is removed).
            HashMismatchError: The entry has another hash (it is removed).
            LockTimeoutError: Removing the bad entry waited too long for its lock.
        """
        path = self.path_for(sha256)
        _check_length(length)
        try:
            with _open_entry(path) as file:
                data = file.read(length + 1)
        except FileNotFoundError as exc:
            raise CacheError(
                f"archive {sha256} is not in the cache (expected {path})",
                hint="fetch it again; it may have been pruned",
            ) from exc
        except OSError as exc:
            raise CacheError(f"cannot read the cache entry {path}: {exc}") from exc
        try:
            got = len(data) if len(data) <= length else f"more than {length}"
            check_length(f"cached archive {path}", length, got, hint=_REMOVED)
            check_digest(f"cached archive {path}", sha256, sha256_hex(data), hint=_REMOVED)
        except (HashMismatchError, LengthMismatchError):
            self._discard_if_still_bad(path, sha256, length)
            raise
        return data

    def entries(self) -> list[CacheEntry]:
        """List the archives in the cache, sorted by digest (not re-verified).

        Returns:
            One :class:`CacheEntry` per regular file named by a digest.

        Raises:
            CacheError: The cache directory cannot be listed.
        """
        found: list[CacheEntry] = []
        try:
            if not self._store.is_dir():
                return []
            for fanout in self._store.iterdir():
                if not _FANOUT_DIR.fullmatch(fanout.name) or not fanout.is_dir():
                    continue
                for item in fanout.iterdir():
                    name = item.name
                    if not _HEX_DIGEST.fullmatch(name) or name[:2] != fanout.name:
                        continue
                    info = item.lstat()
                    if stat.S_ISREG(info.st_mode):
                        found.append(CacheEntry(sha256=name, path=item, size=info.st_size))
        except OSError as exc:
            raise CacheError(f"cannot list the archive cache {self._store}: {exc}") from exc
        return sorted(found, key=lambda entry: entry.sha256)

    def verify_all(self) -> list[str]:
        """Re-hash every entry and remove those whose bytes do not match their name.

        Returns:
            The digests of the removed (corrupt) entries, sorted.

        Raises:
            LockTimeoutError: An entry's lock was held too long.
            CacheError: An entry cannot be read or removed.
        """
        removed: list[str] = []
        for entry in self.entries():
            if _entry_problem(entry.path, entry.sha256, None) is None:
                continue
            if self._discard_if_still_bad(entry.path, entry.sha256, None):
                removed.append(entry.sha256)
        return removed

    # -- writing -----------------------------------------------------------------

    def fetch(self, sha256: str, length: int, write_into: Callable[[Sink], None]) -> Path:
        """Return the verified entry, filling it with ``write_into`` on a miss.

        ``write_into`` receives a :class:`~modelmesh_connectors.client.fetch.Sink`
        that hashes while writing, refuses to go past ``length`` and restarts on
        ``reset()``. Only after it returns and length and sha256 match is the
        file made visible. Concurrent callers for the same digest (threads or
        processes) download once; the others find the finished entry.

        Args:
            sha256: Expected lowercase hex sha256 (from signed metadata).
            length: Expected size in bytes (from signed metadata).
            write_into: Writes the archive bytes into the sink, e.g.
                ``lambda sink: fetcher.fetch_to(url, sink, max_length=length)``.

        Returns:
            The path of the verified entry.

        Raises:
            InvalidInput: Malformed ``sha256`` or ``length``.
            LengthMismatchError: ``write_into`` wrote more or fewer than ``length`` bytes.
            HashMismatchError: The bytes written do not hash to ``sha256``.
            LockTimeoutError: Another process held the entry's lock too long.
            CacheError: The cache cannot be written.
            ConnectorError: Whatever ``write_into`` raised, unchanged.
        """
        path = self.path_for(sha256)
        _check_length(length)
        if _entry_problem(path, sha256, length) is None:
            return path
        with self._locked(sha256):
            # Re-check: another process may have finished while we waited.
            problem = _entry_problem(path, sha256, length)
            if problem is None:
                return path
            if problem != _MISSING:
                self._discard(path, problem)
            self._clean_leftovers(sha256)
            self._write_entry(path, sha256, length, write_into)
        return path

    def remove(self, sha256: str) -> bool:
        """Remove an entry (and crash leftovers of it) under its lock.

        Args:
            sha256: Lowercase hex sha256.

        Returns:
            Whether an entry existed.

        Raises:
            InvalidInput: Malformed ``sha256``.
            LockTimeoutError: Another process held the entry's lock too long.
            CacheError: The entry cannot be removed.
        """
        path = self.path_for(sha256)
        if not path.parent.is_dir():
            return False
        with self._locked(sha256):
            self._clean_leftovers(sha256)
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise CacheError(f"cannot remove the cache entry {path}: {exc}") from exc
        return True

    def prune(self, keep: Set[str]) -> list[str]:
        """Remove every entry whose digest is not in ``keep``, and all crash leftovers.

        Args:
            keep: Digests to keep.

        Returns:
            The digests of the removed entries, sorted.

        Raises:
            LockTimeoutError: Another process held an entry's lock too long.
            CacheError: An entry cannot be removed.
        """
        removed = [
            e.sha256 for e in self.entries() if e.sha256 not in keep and self.remove(e.sha256)
        ]
        for digest in sorted(self._digests_with_leftovers()):
            with self._locked(digest):
                self._clean_leftovers(digest)
        return removed

    # -- internals ---------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, sha256: str) -> Iterator[None]:
        lock = SidecarLock(
            Path(self._entry_text(sha256) + ".lock"),
            timeout=self._lock_timeout,
            what="cache lock",
            hint="another modelmesh-connectors process is writing this archive; "
            "wait for it to finish or raise the lock timeout",
        )
        with lock.held():
            yield

    def _write_entry(
        self, path: Path, sha256: str, length: int, write_into: Callable[[Sink], None]
    ) -> None:
        try:
            # No fsync: every read re-hashes the entry, so a write lost or torn by a crash is
            # just a miss and is fetched again. Durability buys no safety here and cost ~5 ms
            # per archive.
            with atomic_writer(path, durable=False, prefix=f"{sha256}.") as file:
                sink = (_PipelinedSink if length >= _PIPELINE_BYTES else _VerifyingSink)(
                    file, path, sha256, length
                )
                try:
                    write_into(sink)
                    # Verify before the rename: unverified bytes never get the final name.
                    sink.finish()
                finally:
                    sink.close()
        except OSError as exc:  # CacheError from the sink is a ConnectorError, not OSError
            raise CacheError(f"cannot write the cache entry {path}: {exc}") from exc
        _logger.debug("cached archive %s (%d bytes)", sha256, length)

    def _discard_if_still_bad(self, path: Path, sha256: str, length: int | None) -> bool:
        with self._locked(sha256):
            problem = _entry_problem(path, sha256, length)
            if problem is None or problem == _MISSING:
                return False
            self._discard(path, problem)
            return True

    def _discard(self, path: Path, problem: str) -> None:
        _logger.warning("removing corrupt cache entry %s: %s", path, problem)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise CacheError(
                f"cannot remove the corrupt cache entry {path} ({problem}): {exc}"
            ) from exc

    def _clean_leftovers(self, sha256: str) -> None:
        # Called under the digest's lock: no live writer owns these files.
        directory = self.path_for(sha256).parent
        prefix = f"{sha256}."
        try:
            # A plain listing with a prefix test: the digest is the pattern, no glob needed.
            leftovers = [
                directory / name
                for name in os.listdir(directory)
                if name.startswith(prefix) and name.endswith(".tmp")
            ]
        except FileNotFoundError:
            return  # no fan-out directory yet: nothing left over
        except OSError as exc:
            raise CacheError(f"cannot list the cache directory {directory}: {exc}") from exc
        for leftover in leftovers:
            _logger.info("removing leftover of an interrupted download: %s", leftover)
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise CacheError(f"cannot remove the leftover file {leftover}: {exc}") from exc

    def _digests_with_leftovers(self) -> set[str]:
        digests: set[str] = set()
        try:
            if not self._store.is_dir():
                return digests
            for fanout in self._store.iterdir():
                if _FANOUT_DIR.fullmatch(fanout.name) and fanout.is_dir():
                    for item in fanout.glob("*.tmp"):
                        digest = item.name.split(".", 1)[0]
                        if _HEX_DIGEST.fullmatch(digest) and digest[:2] == fanout.name:
                            digests.add(digest)
        except OSError as exc:
            raise CacheError(f"cannot list the archive cache {self._store}: {exc}") from exc
        return digests


def _check_digest(sha256: str) -> str:
    # Digests become file names: strict validation stops path traversal ("../x").
    if not isinstance(sha256, str) or _HEX_DIGEST.fullmatch(sha256) is None:
        raise InvalidInput(f"expected a lowercase hex sha256 (64 characters), got {sha256!r}")
    return sha256


def _check_length(length: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise InvalidInput(f"expected a non-negative byte length, got {length!r}")


def _open_entry(path: Path) -> io.BufferedReader:
    return io.BufferedReader(_open_raw(path))


def _open_raw(path: str | Path) -> io.FileIO:
    # O_NOFOLLOW: an entry is a regular file we wrote, never a symlink to elsewhere.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    return io.FileIO(fd, "rb")


_HASH_CHUNK = 1024 * 1024  # bytes read per system call when re-hashing an entry


def _hash_entry(path: str | Path) -> str:
    """Hex sha256 of every byte of the entry, read to its end (the size was checked before).

    Raw reads into one 1 MiB buffer per thread, reused: no buffered-reader copy, no buffer
    allocated (and zeroed) per entry. ``update`` releases the GIL, so entries hashed on two
    threads run in parallel.
    """
    h = hashlib.sha256()
    buf = _hash_buffer()
    # O_NOFOLLOW: an entry is a regular file we wrote, never a symlink to elsewhere. Plain
    # descriptor reads straight into buf (no file object per entry), to the file's end.
    fd = os.open(path, _ENTRY_READ_FLAGS)
    try:
        while n := _read_into(fd, buf):
            h.update(buf[:n])
    finally:
        os.close(fd)
    return h.hexdigest()


def _read_into(fd: int, buf: memoryview) -> int:
    """Read from ``fd`` into ``buf``; the number of bytes read (0 at the end)."""
    if _READV is not None:
        return _READV(fd, (buf,))
    data = os.read(fd, len(buf))  # no readv (Windows): one copy more
    buf[: len(data)] = data
    return len(data)


_READV: Final[Callable[[int, Sequence[memoryview]], int] | None] = getattr(os, "readv", None)
_ENTRY_READ_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


_BUFFERS = threading.local()


def _hash_buffer() -> memoryview:
    """This thread's read buffer for re-hashing (allocated, and zeroed, once per thread)."""
    buf: memoryview | None = getattr(_BUFFERS, "view", None)
    if buf is None:
        buf = _BUFFERS.view = memoryview(bytearray(_HASH_CHUNK))
    return buf


def _entry_problem(path: str | Path, sha256: str, length: int | None) -> str | None:
    """``None`` if the entry is intact, ``"missing"``, or what is wrong with it."""
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return _MISSING
    except OSError as exc:
        raise CacheError(f"cannot inspect the cache entry {path}: {exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if length is not None and info.st_size != length:
        return length_problem(length, info.st_size)
    try:
        digest = _hash_entry(path)
    except FileNotFoundError:
        return _MISSING
    except OSError as exc:
        raise CacheError(f"cannot read the cache entry {path}: {exc}") from exc
    if digest == sha256:  # both lowercase hex (sha256 was checked by _check_digest)
        return None
    try:
        check_digest(f"cache entry {path}", sha256, digest)
    except HashMismatchError as exc:
        return exc.message
    return None
