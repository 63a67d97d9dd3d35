"""The local-directory backend of the storage seam (:mod:`~modelmesh_connectors.publish.storage`).

The served tree holds index files only. The publisher's own files — the lock that makes
replace-if-unchanged atomic, and the temporary files every write goes through — live in a
*work directory* outside it (default: ``.<name>.publish/`` beside the index directory, on the
same file system so a rename stays atomic). A web server pointed at the index therefore never
serves a lock or a half-written file.

* create-if-absent: write a temp file, then ``link()`` it into place (never replaces, even in a
  race between processes); the new files are fsynced together by :meth:`LocalStorage.flush`,
  which the publish protocol calls before it swaps the timestamp (one round of concurrent
  fsyncs instead of two per file: a bulk publish of 1,000 packages writes 2,000 files);
* replace-if-unchanged: under the work directory's lock, compare the current file's SHA-256
  (its tag) and ``os.replace`` a temp file over it (readers see old or new bytes, never a mix);
* delete-if-unchanged: the same comparison under the lock, then ``unlink``.
"""

from __future__ import annotations

__all__ = ["LocalStorage", "default_work_dir"]

import contextlib
import errno
import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from filelock import FileLock, Timeout

from modelmesh_connectors._internal.files import fsync_directory, write_temp
from modelmesh_connectors.errors import StorageError
from modelmesh_connectors.publish.storage import Listed, Storage, Stored

_LOCK_TIMEOUT = 60.0  # seconds: a replace holds the lock for one small write
_MKDIR_RETRIES = 3  # a concurrent gc may remove an emptied directory between mkdir and link
_FSYNC_THREADS = 16  # concurrent fsyncs in flush(): the file system commits them together


def default_work_dir(directory: Path) -> Path:
    """``.<name>.publish`` beside ``directory`` (outside the served tree, same file system)."""
    absolute = directory.absolute()
    return absolute.parent / f".{absolute.name}.publish"


class LocalStorage(Storage):
    """An index in a local directory.

    Args:
        directory: The served index directory.
        work_dir: Where the lock and temporary files go (default: :func:`default_work_dir`);
            must be on the same file system as ``directory`` and outside it.
        durable: fsync every file and directory entry (off only for throwaway indexes in
            benchmarks: a crash could then lose a file the timestamp names).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        work_dir: str | os.PathLike[str] | None = None,
        durable: bool = True,
    ) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.work_dir = Path(work_dir) if work_dir is not None else default_work_dir(self.directory)
        self.durable = durable
        base = self.directory.absolute()
        if self.work_dir.absolute().is_relative_to(base):
            raise StorageError(
                f"index {directory}: work directory {self.work_dir} is inside the served tree",
                hint="choose a work directory beside the index, not in it",
            )
        self._lock = FileLock(str(self.work_dir / "lock"), timeout=_LOCK_TIMEOUT)
        self._unsynced: list[Path] = []  # created, not yet fsynced (see flush)

    @property
    def location(self) -> str:
        return str(self.directory)

    # -- helpers -----------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("..", ".", "") for p in parts):
            raise StorageError(f"index {self.directory}: {key!r} is not an index-relative path")
        return self.directory.joinpath(*parts)

    def _fail(self, key: str, what: str, e: OSError) -> StorageError:
        return StorageError(f"index {self.directory}: cannot {what} {key}: {e.strerror or e}")

    def _require_directory(self) -> None:
        if not self.directory.is_dir():
            raise StorageError(f"index {self.directory}: not a directory")

    def _temp(self, key: str, data: bytes, *, durable: bool) -> Path:
        name = PurePosixPath(key).name
        return write_temp(self.work_dir / "tmp" / name, data, durable=durable)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            with self._lock:
                yield
        except Timeout as e:
            raise StorageError(
                f"index {self.directory}: another publisher held {self._lock.lock_file} for "
                f"over {_LOCK_TIMEOUT:.0f} s",
                hint=f"if no publisher is running, delete {self._lock.lock_file}",
            ) from e
        except OSError as e:
            raise StorageError(
                f"index {self.directory}: cannot lock {self.work_dir}: {e.strerror or e}"
            ) from e

    def _read_unlocked(self, key: str) -> Stored | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as e:
            raise self._fail(key, "read", e) from e
        return Stored(data, hashlib.sha256(data).hexdigest())

    # -- primitives --------------------------------------------------------------------

    def read(self, key: str) -> Stored | None:
        self.reads += 1
        self._require_directory()
        return self._read_unlocked(key)

    def create(self, key: str, data: bytes) -> bool:
        self.writes += 1
        self._require_directory()
        target = self._path(key)
        try:
            tmp = self._temp(key, data, durable=False)  # fsynced in flush()
        except OSError as e:
            raise self._fail(key, "write", e) from e
        try:
            for attempt in range(_MKDIR_RETRIES):
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    # link() refuses to replace an existing file: create-if-absent even
                    # between processes, with no lock.
                    os.link(tmp, target)
                    break
                except FileExistsError:
                    return False
                except FileNotFoundError:
                    if attempt == _MKDIR_RETRIES - 1:
                        raise
            if self.durable:
                self._unsynced.append(target)
            return True
        except OSError as e:
            if e.errno == errno.EEXIST:
                return False
            raise self._fail(key, "create", e) from e
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def replace(self, key: str, data: bytes, tag: str | None) -> str | None:
        self.writes += 1
        self._require_directory()
        target = self._path(key)
        with self._locked():
            current = self._read_unlocked(key)
            if (current.tag if current is not None else None) != tag:
                return None
            try:
                tmp = self._temp(key, data, durable=self.durable)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, target)
                except BaseException:
                    with contextlib.suppress(OSError):
                        tmp.unlink()
                    raise
                if self.durable:
                    fsync_directory(target.parent)
            except OSError as e:
                raise self._fail(key, "write", e) from e
        return hashlib.sha256(data).hexdigest()

    def flush(self) -> None:
        pending, self._unsynced = self._unsynced, []
        if not pending:
            return
        directories = sorted({p.parent for p in pending})

        def sync(path: Path) -> None:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        try:
            with ThreadPoolExecutor(max_workers=_FSYNC_THREADS) as pool:
                list(pool.map(sync, pending))
                # Then the directory entries the links added.
                list(pool.map(fsync_directory, directories))
        except OSError as e:
            raise StorageError(
                f"index {self.directory}: cannot make new files durable: {e.strerror or e}"
            ) from e

    def list(self, prefix: str = "") -> Iterator[Listed]:
        self.reads += 1
        self._require_directory()
        top = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._path(top) if top else self.directory
        for dirpath, _dirnames, filenames in os.walk(start):
            for name in filenames:
                path = Path(dirpath) / name
                key = path.relative_to(self.directory).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    mtime = path.lstat().st_mtime
                except FileNotFoundError:
                    continue  # deleted while listing
                yield Listed(key, datetime.fromtimestamp(mtime, UTC), None)

    def delete(self, key: str, tag: str) -> bool:
        self.writes += 1
        self._require_directory()
        target = self._path(key)
        with self._locked():
            current = self._read_unlocked(key)
            if current is None or current.tag != tag:
                return False
            try:
                target.unlink()
            except FileNotFoundError:
                return False
            except OSError as e:
                raise self._fail(key, "delete", e) from e
            if self.durable:
                fsync_directory(target.parent)
            # Leave no empty archive directory behind (a concurrent create re-makes it).
            parent = target.parent
            while parent != self.directory:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
        return True

    def _probe_storage(self) -> Storage:
        self._require_directory()
        # The probe never touches the served tree: it runs in the work directory, with the
        # same implementation.
        probe = type(self)(
            self.work_dir / "probe", work_dir=self.work_dir / "probe-work", durable=False
        )
        probe.directory.mkdir(parents=True, exist_ok=True)
        return probe
