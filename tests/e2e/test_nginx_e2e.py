"""The committed ``index/`` served by a real nginx on 127.0.0.1, loaded against ``keys/``.

FORMAT.md promises that any static web server can host an index. This runs Debian's nginx
(``scripts/ci_services.sh`` installs it) with a minimal generated configuration: one server
block with ``root <index>;`` on a free loopback port, every log, pid and temp file in the
test's temporary directory, no daemonising. The test skips only when there is no nginx
binary and it is not running in CI (``CI=true``: ``.ci/run`` installs nginx, so a missing
binary there is a failure). An installed nginx that rejects the configuration or cannot
start is always a failure, with the end of its error log: a skip would hide a broken
end-to-end test behind a green run.

The server block is docs/HOSTING.md's, with only its port and root replaced: the guide's
caching rules (``timestamp.json`` no-cache, everything else immutable) and its refusal to serve
anything that is not an index file are checked here. The committed index is served as checked
out (its ``sources/`` are not served), and verified against the committed ``keys/root.json``:
exactly what a deployment does.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelmesh_connectors import ConnectorRegistry
from modelmesh_connectors.index.trust import verify_anchor_root
from modelmesh_connectors.registry import build_registry

REPO = Path(__file__).resolve().parents[2]
HOSTING = REPO / "docs" / "HOSTING.md"
COMMITTED_INDEX = REPO / "index"
COMMITTED_ROOT = REPO / "keys" / "root.json"

STARTUP_TIMEOUT = 10.0  # seconds for nginx to accept connections
STOP_TIMEOUT = 10.0  # seconds for nginx to exit after SIGTERM (fast shutdown)
LOG_TIMEOUT = 2.0  # seconds for the access log to show a request already answered

# nginx's compile-time temp directories (/var/lib/nginx/...) may be unwritable for the user
# running the tests; each one the binary was built with is moved into the temp directory.
_TEMP_PATHS = {
    "client_body_temp_path": ("--http-client-body-temp-path", None),
    "proxy_temp_path": ("--http-proxy-temp-path", "--without-http_proxy_module"),
    "fastcgi_temp_path": ("--http-fastcgi-temp-path", "--without-http_fastcgi_module"),
    "uwsgi_temp_path": ("--http-uwsgi-temp-path", "--without-http_uwsgi_module"),
    "scgi_temp_path": ("--http-scgi-temp-path", "--without-http_scgi_module"),
}


@dataclass(frozen=True)
class ServedIndex:
    """An index directory, its trust root and the keys of its index role."""

    directory: Path
    trust_root: Path
    index_keyids: tuple[str, ...]


@dataclass(frozen=True)
class Nginx:
    """A running nginx serving one directory on 127.0.0.1."""

    port: int
    access_log: Path
    error_log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def requested_paths(self) -> list[str]:
        """Request paths from the access log (combined format: ``"GET /path HTTP/1.1"``)."""
        paths = []
        for line in self.access_log.read_text(encoding="utf-8").splitlines():
            request = line.split('"')[1]
            paths.append(request.split()[1])
        return paths

    def wait_for_paths(self, done: Callable[[list[str]], bool]) -> list[str]:
        """The access log's paths once ``done`` holds for them.

        nginx writes a line in its log phase, just after the response went out, so the
        client may finish first.
        """
        deadline = time.monotonic() + LOG_TIMEOUT
        paths = self.requested_paths()
        while not done(paths) and time.monotonic() < deadline:
            time.sleep(0.02)
            paths = self.requested_paths()
        return paths


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        if _in_ci():
            pytest.fail("nginx is not installed, but CI=true: .ci/run runs scripts/ci_services.sh")
        pytest.skip("nginx is not installed (scripts/ci_services.sh installs it)")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _nginx_conf(tmp: Path, root: Path, port: int, build_info: str) -> str:
    lines = [
        "worker_processes 1;",
        "daemon off;",
        f"pid {tmp / 'nginx.pid'};",
        f"error_log {tmp / 'error.log'} info;",
    ]
    if os.geteuid() == 0:
        # Workers would otherwise switch to 'nobody', who may not read the checkout.
        lines.append("user root;")
    lines += [
        "events { worker_connections 64; }",
        "http {",
        f"    access_log {tmp / 'access.log'};",
        "    default_type application/octet-stream;",
        "    types { application/json json; application/zip zip; }",
        "    server_tokens on;",
    ]
    for directive, (built_with, without) in _TEMP_PATHS.items():
        if built_with in build_info and (without is None or without not in build_info):
            lines.append(f"    {directive} {tmp / directive};")
    lines += ["    " + line for line in _guide_server_block(root, port).splitlines()]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _guide_server_block(root: Path, port: int) -> str:
    """docs/HOSTING.md's nginx server block, listening on ``port`` and serving ``root``."""
    text = HOSTING.read_text(encoding="utf-8")
    start = text.index("```nginx\n") + len("```nginx\n")
    block = text[start : text.index("```", start)]
    for old, new in (("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};"), ("root /srv/modelmesh-index;", f"root {root};")):
        assert old in block, f"docs/HOSTING.md's server block no longer says {old!r}"
        block = block.replace(old, new)
    return block


def _wait_until_listening(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        # Our own process group (start_new_session): the master and its worker, nothing else.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def _run_nginx(root: Path, tmp: Path) -> Iterator[Nginx]:
    binary = _nginx_binary()
    info = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False)
    build_info = info.stdout + info.stderr
    tmp.mkdir(parents=True, exist_ok=True)
    last_log = ""
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = _free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(_nginx_conf(tmp, root, port, build_info), encoding="utf-8")
        command = [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            pytest.fail(f"nginx rejects the generated configuration:\n{checked.stderr}")
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            if _wait_until_listening(process, port):
                yield Nginx(port, tmp / "access.log", tmp / "error.log")
                return
        finally:
            _stop(process)
        last_log = (tmp / "error.log").read_text(encoding="utf-8", errors="replace")
        if "Address already in use" not in last_log:
            break
    pytest.fail(f"nginx is installed but cannot start; its error log ends with:\n{last_log[-2000:]}")


@pytest.fixture
def served_index() -> ServedIndex:
    for required in (COMMITTED_INDEX / "timestamp.json", COMMITTED_ROOT):
        assert required.is_file(), f"the committed index is incomplete: {required} is missing"
    root = verify_anchor_root(COMMITTED_ROOT.read_bytes(), str(COMMITTED_ROOT))
    return ServedIndex(COMMITTED_INDEX, COMMITTED_ROOT, tuple(root.index.keyids))


@pytest.fixture
def nginx(served_index: ServedIndex, tmp_path: Path) -> Iterator[Nginx]:
    with _run_nginx(served_index.directory, tmp_path / "nginx") as server:
        yield server


def _config(index: ServedIndex, nginx: Nginx, cache: Path, *packages: str) -> dict[str, object]:
    return {
        "packages": list(packages),
        "index": nginx.url,
        "trust_root": str(index.trust_root),
        "cache_dir": str(cache),
        "retries": 0,
        "timeouts": {"connect": 2, "read": 5},
    }


def _versions(registry: ConnectorRegistry) -> dict[str, str]:
    return {i.id: i.version for i in registry.list_connectors()}


def test_load_demo_packages_through_nginx(
    served_index: ServedIndex, nginx: Nginx, tmp_path: Path
) -> None:
    cfg = _config(
        served_index, nginx, tmp_path / "cache", "acme-audit-log", "modelmesh-echo-provider"
    )
    registry = build_registry(cfg)
    versions = _versions(registry)
    assert versions["acme.audit-log.v1"] == "1.1.0"  # 1.0.0 is yanked
    assert versions["demo.echo.v1"] == "1.0.0"
    for cid in ("acme.audit-log.v1", "demo.echo.v1"):
        origin = registry.origin(cid)
        assert origin.kind == "package"
        assert origin.signed_by == served_index.index_keyids
        assert nginx.url in origin.detail
    archives = (
        "archives/acme-audit-log/acme-audit-log-1.1.0.zip",
        "archives/modelmesh-echo-provider/modelmesh-echo-provider-1.0.0.zip",
    )
    paths = nginx.wait_for_paths(lambda seen: all("/" + a in seen for a in archives))
    assert "/timestamp.json" in paths
    for archive in archives:
        assert paths.count("/" + archive) == 1  # nginx, not some other server, served it
        data = (served_index.directory / archive).read_bytes()
        cached = tmp_path / "cache" / "archives" / "sha256"
        digest = hashlib.sha256(data).hexdigest()
        assert (cached / digest[:2] / digest).read_bytes() == data


def test_warm_refresh_and_yanked_pin_through_nginx(
    served_index: ServedIndex, nginx: Nginx, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    archive = "/archives/acme-audit-log/acme-audit-log-1.1.0.zip"
    build_registry(_config(served_index, nginx, cache, "acme-audit-log"))
    cold = len(nginx.wait_for_paths(lambda seen: archive in seen))
    # nginx's 404 for the next root version ends the root walk; only the timestamp follows.
    warm = {**_config(served_index, nginx, cache, "acme-audit-log"), "metadata_max_age": 0}
    assert _versions(build_registry(warm))["acme.audit-log.v1"] == "1.1.0"
    next_root = f"/root/{len(list((served_index.directory / 'root').glob('*.json'))) + 1}.json"
    paths = nginx.wait_for_paths(lambda seen: len(seen) >= cold + 2)
    assert sorted(paths[cold:]) == [next_root, "/timestamp.json"]
    with caplog.at_level(logging.WARNING):
        pinned = build_registry(_config(served_index, nginx, cache, "acme-audit-log==1.0.0"))
    assert _versions(pinned)["acme.audit-log.v1"] == "1.0.0"
    assert "yanked: superseded by 1.1.0" in caplog.text


# -- the harness itself: an nginx that cannot run is a failure, never a silent skip -------------


def _no_nginx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_nginx_fails_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    _no_nginx(monkeypatch)
    monkeypatch.setenv("CI", ci)
    # Catch a skip too: it must fail the assertion below, not pass as a skip.
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception), match="CI") as outcome:
        _nginx_binary()
    assert outcome.type is pytest.fail.Exception, outcome.value


def test_missing_nginx_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_nginx(monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        _nginx_binary()


def test_installed_nginx_that_cannot_start_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "bin" / "nginx"
    fake.parent.mkdir()
    # Answers -V and -t like nginx, then exits at once when asked to serve.
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *-V*|*" -t"*) exit 0;; esac\n'
        'for a in "$@"; do last="$a"; done\n'
        'echo "[emerg] cannot start (test double)" >> "$last"\n'
        "exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name: str(fake))
    # Catch a skip too: it must fail the assertion below, not pass as a skip.
    outcomes = (pytest.fail.Exception, pytest.skip.Exception)
    with pytest.raises(outcomes, match="cannot start") as outcome, _run_nginx(tmp_path, tmp_path):
        pass
    assert outcome.type is pytest.fail.Exception, outcome.value


def test_the_guide_caching_rules(served_index: ServedIndex, nginx: Nginx) -> None:
    import httpx

    timestamp = httpx.get(nginx.url + "timestamp.json")
    assert timestamp.status_code == 200
    assert timestamp.headers["cache-control"] == "no-cache"
    assert timestamp.content == (served_index.directory / "timestamp.json").read_bytes()
    for rel in ("root/1.json", "archives/acme-audit-log/acme-audit-log-1.1.0.zip"):
        response = httpx.get(nginx.url + rel)
        assert response.status_code == 200, rel
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    # Only index files are served (the checkout's sources/ are not).
    assert httpx.get(nginx.url + "sources/").status_code == 404
