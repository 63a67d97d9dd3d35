"""A loopback HTTP(S) server for tests: static files, scripted replies, fault injection.

:class:`LoopbackServer` runs a :class:`http.server.ThreadingHTTPServer` on
127.0.0.1 (or another loopback address) in a background thread. It never
resolves or contacts anything off the machine: binding skips the reverse DNS
lookup ``HTTPServer.server_bind`` would do.

What it serves, in order of precedence for a request path (query ignored):

1. a responder registered with :meth:`LoopbackServer.respond_with`
   (``Callable[[RecordedRequest], Reply]``);
2. a script registered with :meth:`LoopbackServer.script`: replies are used in
   order and the last one repeats forever;
3. an in-memory file added with :meth:`LoopbackServer.add_file`;
4. a file under the ``directory`` given to the constructor;
5. otherwise ``404``.

Every request is recorded (:class:`RecordedRequest`: method, target, headers,
and the sequence number of the TCP connection it arrived on, so tests can
prove retries *and* connection reuse). A :class:`Reply` describes the
response and any fault to inject: ``delay`` before the status line, a lying
``content_length``, ``chunked``/``close`` framing, ``truncate_at`` (graceful
close mid-body), ``reset_at`` (TCP RST mid-body), ``stall_at`` + ``stall``
(go silent mid-body), ``endless`` (stream forever until the client leaves), ``drip`` (one body byte
per interval). Set :attr:`LoopbackServer.authorize` to answer 401 to requests
it rejects (private-index tests).

Pass an :class:`ssl.SSLContext` (e.g. from ``trustme``) as ``ssl_context`` to
serve HTTPS; handshakes happen in the handler thread, so a client that
rejects the certificate never blocks the accept loop (failures are collected
in :attr:`LoopbackServer.errors`).

Usage::

    with LoopbackServer() as server:
        server.add_file("/timestamp.json", b"{...}")
        server.script("/flaky", Reply(status=503), Reply.ok(b"payload"))
        fetcher.fetch_bytes(server.url("/flaky"), max_length=100)
        assert server.request_count("/flaky") == 2
"""

from __future__ import annotations

__all__ = ["LoopbackServer", "RecordedRequest", "Reply", "Responder"]

import contextlib
import itertools
import selectors
import socket
import ssl
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

_ENDLESS_SAFETY_CAP = 1 << 30  # bytes; an endless body stops here even if nobody aborts it
_HANDLER_TIMEOUT = 10.0  # seconds a connection may sit idle before the server drops it


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it.

    Attributes:
        method: ``GET``, ``HEAD`` …
        target: The request target as sent, including any query string.
        path: ``target`` without the query string.
        headers: Request headers, names lower-cased.
        connection: Sequence number (1, 2, …) of the TCP connection the request
            arrived on; two requests with the same number shared a connection.
        tls: Whether the connection was TLS.
    """

    method: str
    target: str
    path: str
    headers: Mapping[str, str]
    connection: int
    tls: bool


@dataclass(frozen=True)
class Reply:
    """One scripted response, optionally with a fault.

    At most one of ``truncate_at``, ``reset_at`` and ``stall_at`` applies, in
    that order of precedence.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before sending the status line
    content_length: int | None = None  # announce this instead of len(body) ("length" framing)
    framing: Literal["length", "chunked", "close"] = "length"  # "close": no length, EOF ends it
    truncate_at: int | None = None  # send this many body bytes, then close the connection
    reset_at: int | None = None  # send this many body bytes, then abort with a TCP RST
    stall_at: int | None = None  # send this many body bytes, then go silent for `stall`
    stall: float = 0.0  # seconds of silence for stall_at (cut short when the server stops)
    endless: bool = False  # repeat `body` (or 64 KiB of "x") until the client goes away
    drip: float = 0.0  # seconds between body bytes: send the body one byte at a time
    close: bool = False  # send "Connection: close" and end the connection after this reply

    def __post_init__(self) -> None:
        if self.endless and self.framing == "length":
            raise ValueError("an endless body needs framing='chunked' or framing='close'")

    @classmethod
    def ok(cls, body: bytes, **kwargs: Any) -> Reply:
        """A 200 with ``body``; ``kwargs`` set any other field."""
        return cls(status=200, body=body, **kwargs)

    @classmethod
    def error(cls, status: int, **kwargs: Any) -> Reply:
        """An error status with a short text body."""
        body = kwargs.pop("body", f"status {status}\n".encode())
        return cls(status=status, body=body, **kwargs)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        """A redirect to ``location`` (absolute or relative)."""
        return cls(status=status, headers={"Location": location})


Responder = Callable[[RecordedRequest], Reply]


class LoopbackServer:
    """An HTTP(S) server on a loopback address, running in a background thread.

    Args:
        directory: Serve files below this directory (after scripts and
            in-memory files). ``None`` serves nothing from disk.
        ssl_context: Server-side TLS context; ``None`` serves plain HTTP.
        host: The loopback address to bind (``127.0.0.1`` or ``::1``).
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.directory = directory.resolve() if directory is not None else None
        self.ssl_context = ssl_context
        self.host = host
        self.errors: list[BaseException] = []  # exceptions from handler threads (TLS failures …)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._files: dict[str, bytes] = {}
        self._scripts: dict[str, deque[Reply]] = {}
        self._responders: dict[str, Responder] = {}
        # When set, a request it rejects is answered 401 (after being recorded).
        self.authorize: Callable[[RecordedRequest], bool] | None = None
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        """Bind an ephemeral port and start serving. Returns ``self``."""
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_until_woken,
            name=f"loopback-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and join every handler thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.wake()  # the accept loop ends at once (no poll interval to wait out)
        if self._thread is not None:
            self._thread.join()
        server.cut_connections()
        server.server_close()  # joins the handler threads

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def scheme(self) -> str:
        """``https`` with a TLS context, else ``http``."""
        return "https" if self.ssl_context is not None else "http"

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` without a trailing slash."""
        return self.origin(self.host)

    def origin(self, host: str) -> str:
        """``scheme://host:port`` for another name of this server (e.g. ``localhost``)."""
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{self.port}"

    def url(self, path: str, *, host: str | None = None) -> str:
        """The absolute URL of ``path`` (which should start with ``/``)."""
        return self.origin(host or self.host) + path

    # -- content -----------------------------------------------------------------

    def add_file(self, path: str, data: bytes) -> None:
        """Serve ``data`` with 200 at ``path``."""
        with self._lock:
            self._files[path] = data

    def remove_file(self, path: str) -> None:
        """Stop serving an in-memory file (later requests get 404)."""
        with self._lock:
            self._files.pop(path, None)

    def script(self, path: str, *replies: Reply) -> None:
        """Answer requests for ``path`` with ``replies`` in order; the last one repeats."""
        if not replies:
            raise ValueError("script() needs at least one reply")
        with self._lock:
            self._scripts[path] = deque(replies)

    def respond_with(self, path: str, responder: Responder) -> None:
        """Answer every request for ``path`` with ``responder(request)``."""
        with self._lock:
            self._responders[path] = responder

    def clear_content(self) -> None:
        """Forget every file, script and responder (the directory stays)."""
        with self._lock:
            self._files.clear()
            self._scripts.clear()
            self._responders.clear()

    # -- recorded requests -------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path (query ignored) is ``path``."""
        return [r for r in self.requests if r.path == path]

    def request_count(self, path: str | None = None) -> int:
        """How many requests arrived (for ``path``, or in total)."""
        return len(self.requests if path is None else self.requests_for(path))

    def connections_used(self, path: str | None = None) -> set[int]:
        """The distinct connection numbers the (matching) requests arrived on."""
        chosen = self.requests if path is None else self.requests_for(path)
        return {r.connection for r in chosen}

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    # -- used by the handler -----------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _reply_for(self, request: RecordedRequest) -> Reply:
        if self.authorize is not None and not self.authorize(request):
            return Reply.error(401, headers={"WWW-Authenticate": 'Basic realm="index"'})
        with self._lock:
            responder = self._responders.get(request.path)
            queue = self._scripts.get(request.path)
            data = self._files.get(request.path)
            if responder is None and queue is not None:
                return queue.popleft() if len(queue) > 1 else queue[0]
        if responder is not None:
            return responder(request)
        if data is None:
            data = self._read_from_directory(request.path)
        if data is None:
            return Reply.error(404)
        return Reply.ok(data, headers={"Content-Type": "application/octet-stream"})

    def _read_from_directory(self, path: str) -> bytes | None:
        if self.directory is None:
            return None
        parts = [p for p in unquote(path).split("/") if p]
        if any(p in (".", "..") or "\\" in p for p in parts):
            return None
        candidate = self.directory.joinpath(*parts).resolve()
        if not candidate.is_relative_to(self.directory) or not candidate.is_file():
            return None
        return candidate.read_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True  # server_close() joins the handler threads

    def __init__(self, owner: LoopbackServer) -> None:
        self.owner = owner
        self.address_family = socket.AF_INET6 if ":" in owner.host else socket.AF_INET
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()
        self._connection_numbers = itertools.count(1)
        self._woken = False
        self._wake_r, self._wake_w = socket.socketpair()
        super().__init__((owner.host, 0), _Handler)

    def serve_until_woken(self) -> None:
        """Accept connections until :meth:`wake` (``serve_forever`` polls; this never waits)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._woken:
                for key, _ in selector.select():
                    if key.fileobj is self and not self._woken:
                        self.handle_request()  # ready: accepts without waiting

    def wake(self) -> None:
        """End :meth:`serve_until_woken` (callable from any thread)."""
        self._woken = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(): a DNS lookup.
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name = self.owner.host
        self.server_port = int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        if self.owner.ssl_context is not None:
            sock = self.owner.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        with self._live_lock:
            self._live.add(sock)
        return sock, address

    def next_connection_number(self) -> int:
        return next(self._connection_numbers)

    def shutdown_request(self, request: Any) -> None:
        with self._live_lock:
            self._live.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self._live_lock:
            live = list(self._live)
        for sock in live:
            # socket.socket.shutdown on the raw descriptor wakes a blocked read
            # in the handler thread, for TLS sockets too.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if error is not None:
            self.owner.errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
    timeout = _HANDLER_TIMEOUT
    server: _Server

    def setup(self) -> None:
        self.connection_number = self.server.next_connection_number()
        self.request.settimeout(self.timeout)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log."""

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, *, head: bool) -> None:
        owner = self.server.owner
        request = RecordedRequest(
            method=self.command,
            target=self.path,
            path=urlsplit(self.path).path,
            headers={k.lower(): v for k, v in self.headers.items()},
            connection=self.connection_number,
            tls=isinstance(self.request, ssl.SSLSocket),
        )
        owner._record(request)
        reply = owner._reply_for(request)
        stopping = owner._stopping
        if reply.delay and stopping.wait(reply.delay):
            self.close_connection = True
            return
        try:
            self._send_head(reply)
            if not head:
                self._send_body(reply, stopping)
        except (OSError, ValueError):
            # The client went away (reset, timeout, aborted at its cap).
            self.close_connection = True

    def _send_head(self, reply: Reply) -> None:
        self.send_response(reply.status)
        names = {name.lower() for name in reply.headers}
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.framing == "length" and "content-length" not in names:
            length = reply.content_length if reply.content_length is not None else len(reply.body)
            self.send_header("Content-Length", str(length))
        elif reply.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        if reply.framing == "close" or reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _send_body(self, reply: Reply, stopping: threading.Event) -> None:
        chunked = reply.framing == "chunked"

        def send(data: bytes) -> None:
            if not data:
                return
            if chunked:
                data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
            self.wfile.write(data)

        if reply.endless:
            piece = reply.body or b"x" * 65536
            sent = 0
            while not stopping.is_set() and sent < _ENDLESS_SAFETY_CAP:
                send(piece)
                sent += len(piece)
            self.close_connection = True
            return
        body = reply.body
        if reply.truncate_at is not None:
            send(body[: reply.truncate_at])
            self.close_connection = True
            return
        if reply.reset_at is not None:
            send(body[: reply.reset_at])
            self._abort_with_reset()
            return
        if reply.stall_at is not None:
            send(body[: reply.stall_at])
            stopping.wait(reply.stall)
            self.close_connection = True
            return
        if reply.drip:
            # Slow drip: each byte arrives well within any read timeout.
            for i in range(len(body)):
                if stopping.wait(reply.drip):
                    break
                send(body[i : i + 1])
                self.wfile.flush()
            self.close_connection = True
            return
        send(body)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _abort_with_reset(self) -> None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST.
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.request.close()
        self.rfile.close()  # drops the last reference: the real close happens now
