"""Unit guards for the cheap paths of issue 14: a key's memory of valid signatures and the
flock-based sidecar lock. Each test fails if the shortcut ever answers differently from
the slow path it replaces."""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from modelmesh_connectors._internal.files import SidecarLock
from modelmesh_connectors.client.updater import _Memo
from modelmesh_connectors.errors import LockTimeoutError
from modelmesh_connectors.index.keys import SigningKey


def test_a_remembered_signature_vouches_only_for_its_exact_bytes() -> None:
    key = SigningKey.generate()
    public = key.public
    sig = key.sign(b"payload one")
    assert public.verify(sig, b"payload one")
    assert public.verify(sig, b"payload one")  # answered from memory
    assert not public.verify(sig, b"payload two")  # same signature, other bytes
    assert not public.verify(bytes(64), b"payload one")
    other = SigningKey.generate().public
    assert not other.verify(sig, b"payload one")  # memory is per key


def test_the_memory_is_bounded() -> None:
    key = SigningKey.generate()
    public = key.public
    for i in range(200):
        message = b"m%d" % i
        assert public.verify(key.sign(message), message)
    assert len(public._valid) <= 64


def _lock(path: Path, timeout: float = 5.0) -> SidecarLock:
    return SidecarLock(path, timeout=timeout, what="test lock", hint="wait")


def test_the_sidecar_lock_excludes_other_threads(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    inside: list[int] = []
    overlaps: list[int] = []

    def work() -> None:
        for _ in range(20):
            with _lock(path).held():
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.0005)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


def test_the_sidecar_lock_is_reentrant_in_one_thread(tmp_path: Path) -> None:
    lock = _lock(tmp_path / "x.lock", timeout=0.05)
    with lock.held(), lock.held():
        pass
    with lock.held():  # released after the outer block
        pass


def test_the_sidecar_lock_and_filelock_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with _lock(path).held(), pytest.raises(Timeout):
        FileLock(path, timeout=0).acquire()
    holder = FileLock(path, timeout=0)
    holder.acquire()
    try:
        with pytest.raises(LockTimeoutError), _lock(path, timeout=0.05).held():
            pass
    finally:
        holder.release()


def test_a_lock_taken_on_a_file_that_lost_its_name_is_taken_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between our open and our flock another holder may remove the file on release."""
    import fcntl

    path = tmp_path / "x.lock"
    real = fcntl.flock
    removed: list[bool] = []

    def flock(fd: int, op: int) -> None:
        if not removed:
            removed.append(True)
            os.unlink(path)  # our descriptor now names no file
        real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)  # the module files.py calls it through
    with _lock(path).held():
        assert path.exists()
        with pytest.raises(Timeout):  # held on the file the name points at now
            FileLock(path, timeout=0).acquire()


# -- temp files without tempfile; small-order keys without point arithmetic ------------------


def test_temp_files_are_private_exclusive_and_never_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelmesh_connectors._internal import files

    fd, first = files._create_temp(tmp_path, ".x.")
    os.close(fd)
    assert first.name.startswith(".x.") and first.suffix == ".tmp"
    assert (first.stat().st_mode & 0o777) == 0o600
    # A name that exists (planted or a collision) is never opened: the next random name is.
    fresh = b"\x01" * 12
    draws = iter([bytes(12), bytes(12), fresh])
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    planted = tmp_path / f".y.{bytes(12).hex()}.tmp"
    planted.symlink_to(tmp_path / "elsewhere")
    fd, second = files._create_temp(tmp_path, ".y.")
    os.close(fd)
    assert second.name == f".y.{fresh.hex()}.tmp"
    assert not (tmp_path / "elsewhere").exists()  # the symlink was not followed


def test_the_small_order_check_agrees_with_point_arithmetic() -> None:
    from modelmesh_connectors.index import keys

    p = keys._P

    def decode(raw: bytes) -> tuple[int, int] | None:  # RFC 8032 §5.1.3, the slow way
        enc = int.from_bytes(raw, "little")
        y, sign = (enc & ((1 << 255) - 1)) % p, enc >> 255
        x2 = (y * y - 1) * pow(keys._D * y * y + 1, p - 2, p) % p
        x = pow(x2, (p + 3) // 8, p)
        if (x * x - x2) % p:
            x = x * pow(2, (p - 1) // 4, p) % p
        if (x * x - x2) % p:
            return None
        return ((p - x) % p if x & 1 != sign else x), y

    def double(pt: tuple[int, int]) -> tuple[int, int]:
        x, y = pt
        t = keys._D * x * x * y * y % p
        return 2 * x * y * pow(1 + t, p - 2, p) % p, (y * y + x * x) * pow(1 - t, p - 2, p) % p

    def slow(raw: bytes) -> str | None:
        pt = decode(raw)
        if pt is None:
            return "not a point on the curve"
        for _ in range(3):
            pt = double(pt)
        return "a point of small order (8·P is the identity)" if pt == (0, 1) else None

    samples = [os.urandom(32) for _ in range(300)]
    for y in [*keys._SMALL_ORDER_Y, 2, p - 2, p, p + 1, 2**255 - 1]:
        samples += [(y | bit).to_bytes(32, "little") for bit in (0, 1 << 255) if y < 2**255]
    for raw in samples:
        keys.small_order_problem.cache_clear()
        assert keys.small_order_problem(raw) == slow(raw), raw.hex()


def test_the_node_memo_computes_each_key_once_and_forgets_failures() -> None:
    # One verified group/bin per prefix per run (the trust core accepts a bin only through
    # the group it verified last): eight threads asking at once compute it once; a stored
    # value (even None) is returned as stored; a failure is not remembered.
    memo: _Memo[object] = _Memo()
    calls: list[str] = []
    gate = threading.Barrier(8)

    def make() -> object:
        calls.append("made")
        time.sleep(0.05)
        return {"verified": True}

    def ask() -> object:
        gate.wait()
        return memo.get("ab", make)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: ask(), range(8)))
    assert calls == ["made"] and all(r is results[0] for r in results)
    assert memo.get("none", lambda: None) is None
    assert memo.get("none", lambda: "recomputed") is None

    def fail() -> object:
        raise ValueError("bad node")

    with pytest.raises(ValueError, match="bad node"):
        memo.get("cd", fail)
    assert memo.get("cd", lambda: "retried") == "retried"
