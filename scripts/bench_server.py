"""The benchmark's one static file server: several directories under URL prefixes, on 127.0.0.1.

Both clients in ``bench.py`` read from the same :class:`StaticServer`, so neither side gets a
faster server. It speaks HTTP/1.1 with keep-alive, sets ``TCP_NODELAY`` on every accepted
socket (without it a keep-alive response whose headers and body leave in two segments can wait
~40 ms for the peer's delayed ACK), sends ``Content-Length`` on every response, and sends file
bodies with ``sendfile`` so the server costs as little CPU as possible. It counts the body bytes
of every response, so a scenario can report exactly how many bytes a client fetched.

With ``delay`` set, every counted response waits that long before its status line is sent:
the round trip a client sees from a distant CDN (20 ms in the round-trip scenario). The wait
happens in the request's own handler thread, so concurrent requests wait concurrently, as they
would on a real network; the stats path is never delayed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

__all__ = ["ServedBytes", "ServerProcess", "StaticServer"]

_STATS_PATH = "/__bench_stats__"  # answered with "<requests> <body_bytes>", never counted

_HANDLER_TIMEOUT = 30.0  # seconds an idle keep-alive connection is kept before the server drops it
_JOIN_TIMEOUT = 10.0  # seconds to wait for the accept loop to stop


@dataclass(frozen=True)
class ServedBytes:
    """What the server sent between two :meth:`StaticServer.counter` readings.

    Attributes:
        requests: Responses sent (any status).
        body_bytes: Response body bytes sent or being sent (headers not counted).
    """

    requests: int
    body_bytes: int

    def __sub__(self, other: ServedBytes) -> ServedBytes:
        return ServedBytes(self.requests - other.requests, self.body_bytes - other.body_bytes)


class StaticServer:
    """Serve directories read-only under URL prefixes from a background thread.

    Args:
        mounts: URL prefix (``"/ours/"``) → directory. A request path is served from the
            directory of the longest matching prefix; anything else is a 404.
        delay: Seconds every counted response waits before it is sent (0: none).
    """

    def __init__(self, mounts: Mapping[str, Path], *, delay: float = 0.0) -> None:
        if not 0 <= delay <= 10:
            raise ValueError(f"delay must be between 0 and 10 seconds, got {delay}")
        self.delay = delay
        for prefix in mounts:
            if not (prefix.startswith("/") and prefix.endswith("/")):
                raise ValueError(f"mount prefix must start and end with '/', got {prefix!r}")
        self._mounts = sorted(
            ((p, d.resolve()) for p, d in mounts.items()), key=lambda item: -len(item[0])
        )
        self._lock = threading.Lock()
        self._requests = 0
        self._body_bytes = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind an ephemeral port on 127.0.0.1 and start serving. Returns ``self``."""
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="bench-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut idle keep-alive connections and join the accept loop."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.cut_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses and counters ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (which starts with ``/``)."""
        return self.base_url + path

    def counter(self) -> ServedBytes:
        """Responses and body bytes sent so far (subtract two readings for one interval)."""
        with self._lock:
            return ServedBytes(self._requests, self._body_bytes)

    # -- used by the handler ---------------------------------------------------------------------

    def _count(self, body_bytes: int) -> None:
        with self._lock:
            self._requests += 1
            self._body_bytes += body_bytes

    def _file_for(self, target: str) -> Path | None:
        path = unquote(urlsplit(target).path)
        for prefix, directory in self._mounts:
            if not path.startswith(prefix):
                continue
            parts = [p for p in path[len(prefix) :].split("/") if p]
            if not parts or any(p in (".", "..") or "\\" in p for p in parts):
                return None
            candidate = directory.joinpath(*parts)
            return candidate if candidate.is_file() else None
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() cuts the connections instead of waiting out idle ones

    def __init__(self, owner: StaticServer) -> None:
        self.owner = owner
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(): a DNS lookup, off loopback.
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name = "127.0.0.1"
        self.server_port = int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        with self._live_lock:
            self._live.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._live_lock:
            self._live.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self._live_lock:
            live = list(self._live)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-response are normal here; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = _HANDLER_TIMEOUT
    server: _Server

    def setup(self) -> None:
        # Without TCP_NODELAY a keep-alive reply sent as two segments stalls ~40 ms (Nagle
        # waiting for the client's delayed ACK).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log."""

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path == _STATS_PATH:
            counted = owner.counter()
            body = f"{counted.requests} {counted.body_bytes}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if owner.delay:
            time.sleep(owner.delay)
        path = owner._file_for(self.path)
        if path is None:
            self._send_small(404, b"not found\n")
            return
        try:
            with path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                # Counted before sending: a client may read the last byte before this thread
                # runs again, and a reading taken right after the client returns must see it.
                owner._count(size)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                if size:
                    self.request.sendfile(handle, 0, size)
        except OSError:
            self.close_connection = True  # the client went away mid-body

    def _send_small(self, status: int, body: bytes) -> None:
        self.server.owner._count(len(body))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ServerProcess:
    """The same server, run in its own process (as a real server is never inside the client).

    With the server in the clients' process, every request also costs the client the
    server's Python work under the same GIL, which distorts per-request costs. The interface
    matches :class:`StaticServer`; counters are read over a special path that is not counted.

    Args:
        mounts: URL prefix → directory, as for :class:`StaticServer`.
        delay: Seconds every counted response waits, as for :class:`StaticServer`.
    """

    def __init__(self, mounts: Mapping[str, Path], *, delay: float = 0.0) -> None:
        self._mounts = dict(mounts)
        self._delay = delay
        self._process: subprocess.Popen[str] | None = None
        self._base = ""

    def start(self) -> Self:
        """Start the child process and wait until it listens. Returns ``self``."""
        args = [sys.executable, str(Path(__file__).resolve())]
        for prefix, directory in self._mounts.items():
            args += ["--mount", f"{prefix}={Path(directory).resolve()}"]
        if self._delay:
            args += ["--delay", repr(self._delay)]
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"bench server did not start: {line!r}")
        self._base = line
        return self

    def stop(self) -> None:
        """Terminate the child and wait for it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=_JOIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        if not self._base:
            raise RuntimeError("server not started")
        return self._base

    def url(self, path: str) -> str:
        """The absolute URL of ``path``."""
        return self.base_url + path

    def counter(self) -> ServedBytes:
        """Responses and body bytes the child has sent so far."""
        with urllib.request.urlopen(self.base_url + _STATS_PATH, timeout=10) as response:
            requests, body = response.read().decode().split()
        return ServedBytes(int(requests), int(body))


def _main() -> int:
    parser = argparse.ArgumentParser(description="serve directories for bench.py on 127.0.0.1")
    parser.add_argument("--mount", action="append", default=[], metavar="PREFIX=DIR")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each response")
    args = parser.parse_args()
    mounts = {}
    for item in args.mount:
        prefix, _, directory = item.partition("=")
        mounts[prefix] = Path(directory)
    server = StaticServer(mounts, delay=args.delay).start()
    print(server.base_url, flush=True)

    def stop(*_: object) -> None:
        server.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        signal.pause()


if __name__ == "__main__":
    raise SystemExit(_main())
