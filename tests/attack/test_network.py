"""Slow and dead mirrors: every transfer ends in bounded time, and a dead mirror costs nothing.

Real loopback servers play the hostile mirror:

* a **drip** mirror sends the headers, then one body byte every 0.2 s — each byte arrives well
  inside the read timeout, so only a deadline over the whole transfer can stop it;
* a **header drip** mirror accepts and sends its status line and headers one byte at a time;
* a **stall** mirror accepts the connection and never sends a byte;
* a **dead** mirror is a closed port (connection refused).

With small configured deadlines (``timeouts: {transfer: …, min_rate: …, run: …}``) the hostile
mirror fails with :class:`TransferTimeoutError` (or :class:`UnreachableError`) and the next
mirror serves; alone, it fails the load in bounded time with the typed error. A dead first
mirror is passed over at once: no backoff sleep at all.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors.client.failover import Failover
from modelmesh_connectors.client.settings import DEFAULT_LIMITS
from modelmesh_connectors.errors import (
    DownloadError,
    TransferTimeoutError,
    UnreachableError,
)
from modelmesh_connectors.registry import build_registry
from tests.support.http_server import LoopbackServer, Reply
from tests.support.simulator import RepositorySimulator

PACKAGE = "acme-audit-log"
CONNECTOR = "acme.audit-log.v1"
DRIP = 0.2  # seconds between two bytes of a drip feed
# Deadlines of the tests: a metadata file or archive (a few KiB at 4 MiB/s) gets ~0.6 s, the
# first request (root/2.json, capped at 512 KiB) 0.6 s + 0.125 s.
MIN_RATE = 4 * 2**20  # bytes per second
FAST = {"connect": 2, "read": 5, "transfer": 0.6, "min_rate": "4MiB/s", "run": 60}
BOUND = 3.0  # seconds; every hostile case must end well within this (a drip takes minutes)


class RawServer:
    """A loopback TCP server that speaks just enough HTTP to be hostile.

    Args:
        mode: ``"stall"`` (accept, read the request, send nothing), ``"drip-headers"``
            (send the status line and headers one byte per ``DRIP``) or ``"drip-body"``
            (send headers at once, then the body one byte per ``DRIP``).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/"
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RawServer:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accept.join()
        for thread in self._threads:
            thread.join()
        self._sock.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            self.requests.append(request.split(b"\r\n", 1)[0])
            body = b"x" * 4096
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
            if self.mode == "stall":
                self._stop.wait(30)
                return
            if self.mode == "drip-headers":
                for i in range(len(head)):
                    if self._stop.wait(DRIP):
                        return
                    conn.sendall(head[i : i + 1])
                return
            conn.sendall(head)
            for i in range(len(body)):
                if self._stop.wait(DRIP):
                    return
                conn.sendall(body[i : i + 1])


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path) as simulator:
        simulator.publish(PACKAGE, "1.0.0")
        yield simulator


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every backoff sleep instead of sleeping: a dead mirror must cost none."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def _config(sim: RepositorySimulator, index: list[str], **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"index": index, "timeouts": dict(FAST), "retries": 2}
    settings.update(overrides)
    return sim.config([PACKAGE], **settings)


def _ids(registry: Any) -> set[str]:
    return {info.id for info in registry.list_connectors()}


def _closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def _cause_chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out:
        out.append(current)
        current = current.__cause__
    return out


# -- a hostile first mirror, a good second one ------------------------------------------------


@pytest.mark.parametrize("mode", ["stall", "drip-headers", "drip-body"])
def test_slow_first_mirror_fails_over_in_bounded_time(
    sim: RepositorySimulator, mode: str, sleeps: list[float]
) -> None:
    with RawServer(mode) as slow:
        started = time.monotonic()
        registry = build_registry(_config(sim, [slow.url, sim.url]))
        elapsed = time.monotonic() - started
        assert slow.requests, "the hostile mirror was never asked"
    assert CONNECTOR in _ids(registry)
    assert elapsed < BOUND, f"{mode}: took {elapsed:.1f} s"
    # The slow mirror is not retried while another mirror works, and nothing slept. (A
    # first contact asks for root/2.json and, overlapped, timestamp.json: each once.)
    assert len(slow.requests) == len(set(slow.requests))
    assert set(slow.requests) <= {b"GET /root/2.json HTTP/1.1", b"GET /timestamp.json HTTP/1.1"}
    assert sleeps == []


def test_dripping_timestamp_fails_over_to_the_second_mirror(sim: RepositorySimulator) -> None:
    with LoopbackServer(sim.dir) as drip:
        drip.script("/timestamp.json", Reply.ok(sim.read("timestamp.json"), drip=DRIP))
        started = time.monotonic()
        registry = build_registry(_config(sim, [drip.base_url + "/", sim.url]))
        elapsed = time.monotonic() - started
        assert drip.request_count("/timestamp.json") == 1
    assert CONNECTOR in _ids(registry)
    assert elapsed < BOUND


def test_dripping_archive_fails_over_to_the_second_mirror(sim: RepositorySimulator) -> None:
    release = sim.archives[(PACKAGE, "1.0.0")]
    rel = "/" + release.relative_to(sim.dir).as_posix()
    with LoopbackServer(sim.dir) as drip:
        drip.script(rel, Reply.ok(release.read_bytes(), drip=DRIP))
        started = time.monotonic()
        # The drip mirror serves the metadata, so its archive URL is tried first.
        registry = build_registry(_config(sim, [drip.base_url + "/", sim.url]))
        elapsed = time.monotonic() - started
        assert drip.request_count(rel) == 1
    assert CONNECTOR in _ids(registry)
    assert elapsed < BOUND
    assert sim.server.request_count(rel) == 1


# -- a hostile mirror alone: a typed error in bounded time ---------------------------------------


@pytest.mark.parametrize("mode", ["stall", "drip-headers", "drip-body"])
def test_slow_only_mirror_fails_typed_in_bounded_time(sim: RepositorySimulator, mode: str) -> None:
    with RawServer(mode) as slow:
        started = time.monotonic()
        with pytest.raises(DownloadError) as info:
            build_registry(_config(sim, [slow.url], retries=0))
        elapsed = time.monotonic() - started
    assert elapsed < BOUND
    [timeout] = [e for e in _cause_chain(info.value) if isinstance(e, TransferTimeoutError)]
    # The first request is root/2.json: 0.6 s + its 512 KiB cap at 4 MiB/s.
    assert timeout.url == slow.url + "root/2.json"
    assert timeout.deadline == pytest.approx(0.6 + DEFAULT_LIMITS.max_root_bytes / MIN_RATE)
    assert f"deadline of {timeout.deadline:.1f} s passed" in str(timeout)
    assert f"after {timeout.received} bytes" in str(timeout)
    if mode == "drip-body":
        assert timeout.received >= 1  # bytes did arrive; the deadline still ended it
    assert slow.url in str(info.value)


def test_dripping_signature_of_a_url_package_fails_typed(sim: RepositorySimulator) -> None:
    release = sim.archives[(PACKAGE, "1.0.0")]
    rel = "/" + release.relative_to(sim.dir).as_posix()
    with LoopbackServer(sim.dir) as drip:
        url = drip.url(rel)
        drip.script(rel + ".sig", Reply.ok((sim.dir / (rel[1:] + ".sig")).read_bytes(), drip=DRIP))
        started = time.monotonic()
        with pytest.raises(TransferTimeoutError) as info:
            build_registry(sim.config([url], timeouts=dict(FAST), retries=2, index=sim.url))
        elapsed = time.monotonic() - started
    assert elapsed < BOUND
    assert info.value.url == url + ".sig"
    assert info.value.received >= 1


def test_run_deadline_bounds_the_whole_load(sim: RepositorySimulator) -> None:
    # Per-transfer allowance is generous (30 s); the whole run may take 1 s.
    timeouts = {**FAST, "transfer": 30, "run": 1}
    with RawServer("drip-body") as slow:
        started = time.monotonic()
        with pytest.raises(DownloadError) as info:
            build_registry(sim.config([PACKAGE], index=[slow.url], timeouts=timeouts, retries=3))
        elapsed = time.monotonic() - started
    assert elapsed < BOUND
    [timeout] = [e for e in _cause_chain(info.value) if isinstance(e, TransferTimeoutError)]
    assert timeout.run
    assert "run deadline of 1.0 s passed" in str(timeout)


# -- dead mirrors ------------------------------------------------------------------------------


def test_dead_first_mirror_costs_nothing(sim: RepositorySimulator, sleeps: list[float]) -> None:
    dead = _closed_port_url()
    # Warm nothing; measure a baseline load against the good mirror alone first.
    started = time.monotonic()
    build_registry(_config(sim, [sim.url], cache_dir=str(sim.tmp / "baseline")))
    baseline = time.monotonic() - started
    started = time.monotonic()
    registry = build_registry(_config(sim, [dead, sim.url], retries=3))
    elapsed = time.monotonic() - started
    assert CONNECTOR in _ids(registry)
    # No backoff at all (one backoff would be >= 0.25 s), and no measurable extra time.
    assert sleeps == []
    assert elapsed < baseline + 0.25, f"dead mirror cost {elapsed - baseline:.2f} s"


def test_all_mirrors_dead_retries_go_round_the_list(
    sim: RepositorySimulator, sleeps: list[float]
) -> None:
    dead = [_closed_port_url(), _closed_port_url()]
    with pytest.raises(DownloadError) as info:
        build_registry(_config(sim, dead, retries=2))
    # One backoff per extra round over the whole list, not per URL.
    assert len(sleeps) == 2
    assert all(0.25 <= s <= 1.0 for s in sleeps)
    assert any(isinstance(e, UnreachableError) for e in _cause_chain(info.value))
    for url in dead:
        assert url in str(info.value)


def test_failover_rounds_offer_only_mirrors_that_may_recover() -> None:
    waited: list[float] = []
    rounds = Failover(retries=3, backoff_base=0.5, backoff_max=10.0, sleep=waited.append).start()
    seen: list[str] = []
    for mirror in rounds.over(["dead", "bad", "slow"]):
        seen.append(mirror)
        if mirror == "dead":
            rounds.failed(mirror, UnreachableError("refused"))
        elif mirror == "bad":
            rounds.failed(mirror, DownloadError("HTTP 403"))  # retrying cannot help
        else:
            rounds.failed(mirror, TransferTimeoutError("drip"))
    assert seen == ["dead", "bad", "slow"] + ["dead", "slow"] * 3
    assert len(waited) == 3
    assert waited[0] <= 0.5 and waited[1] <= 1.0 and waited[2] <= 2.0


def test_failover_stops_when_the_run_deadline_passed() -> None:
    waited: list[float] = []
    rounds = Failover(retries=5, sleep=waited.append).start()
    seen = []
    for mirror in rounds.over(["a", "b"]):
        seen.append(mirror)
        rounds.failed(mirror, TransferTimeoutError("late", run=True))
    assert seen == ["a", "b"]
    assert waited == []


def test_server_errors_still_retry_with_retry_after(
    sim: RepositorySimulator, sleeps: list[float]
) -> None:
    # 503 + Retry-After on the only mirror: retried against the same URL after the wait.
    sim.server.script(
        "/timestamp.json",
        Reply.error(503, headers={"Retry-After": "1"}),
        Reply.ok(sim.read("timestamp.json")),
    )
    # The transfer allowance (10 s) leaves room for the 1 s wait.
    registry = build_registry(_config(sim, [sim.url], timeouts={**FAST, "transfer": 10}))
    assert CONNECTOR in _ids(registry)
    assert sleeps == [1.0]
