"""Credentials for a private index: supported, scoped to their origin, and never leaked.

* The CLI runs in subprocesses (``install`` under a pseudo-terminal so the progress bar is
  drawn, ``load``, ``load --json``, ``load -v``, ``lock``, ``cache list``, and failing
  commands) against a loopback index that answers 401 without the right ``Authorization``.
  The secrets (URL user info, a bearer token from the environment, their encoded header
  forms) must appear in no output, no lock file, and no file name or file content below
  the cache directory.
* A redirect to another origin (another loopback port) never carries ``Authorization``;
  a same-origin redirect does. The server records the headers it received.
* A token configured for one mirror never reaches another mirror; a netrc entry goes to
  its host alone, and netrc's ``default`` entry to nobody.
"""

from __future__ import annotations

import base64
import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from modelmesh_connectors.client.credentials import Credentials, load_credentials
from modelmesh_connectors.client.fetch import DownloadConfig, HttpFetcher
from modelmesh_connectors.errors import (
    ConfigError,
    DownloadError,
    PolicyError,
)
from modelmesh_connectors.registry import build_registry
from tests.support.http_server import LoopbackServer, Reply
from tests.support.simulator import RepositorySimulator

USER, PASSWORD = "mesh-user", "pw-Secret-1a2b"
TOKEN_ENV, TOKEN = "MMC_TEST_INDEX_TOKEN", "tok-Secret-9z8y"
WRONG = "wrong-Secret-7c6d"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
BEARER = f"Bearer {TOKEN}"
# Every form a secret could take in a leak: as typed, and inside the header values.
SECRETS = [
    PASSWORD,
    TOKEN,
    WRONG,
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
    base64.b64encode(f"{USER}:{WRONG}".encode()).decode(),
]

FAST = DownloadConfig(connect_timeout=2, read_timeout=2, retries=0, trust_env=False)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path) as simulator:
        simulator.publish("acme-audit-log", "1.0.0")
        simulator.publish(
            "other-sink",
            "2.0.0",
            connectors=[("other.sink.v1", "observability", "other_sink.sink:Sink")],
        )
        simulator.server.authorize = lambda r: r.headers.get("authorization") in (BASIC, BEARER)
        yield simulator


# -- the CLI leaks nothing -----------------------------------------------------------------------


def _run(args: list[str], env: dict[str, str], *, tty: bool = False) -> tuple[int, str]:
    """Run the CLI; return the exit status and everything it printed (stdout + stderr)."""
    cmd = [sys.executable, "-m", "modelmesh_connectors", *args]
    if not tty:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout + done.stderr
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO once the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            cmd, env=env, stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120
        )
    finally:
        os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    return done.returncode, done.stdout + b"".join(chunks).decode(errors="replace")


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [s for s in SECRETS if s.encode() in data]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETRC", "MMC_TEST"))}
    env["HOME"] = str(tmp_path / "home")  # no ~/.netrc of the machine running the tests
    env[TOKEN_ENV] = TOKEN
    env.pop("MODELMESH_CONNECTORS_CACHE", None)
    return env


def test_cli_never_prints_or_stores_a_credential(sim: RepositorySimulator, tmp_path: Path) -> None:
    port = sim.server.port
    with_user = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/"
    other = sim.archives[("other-sink", "2.0.0")].relative_to(sim.dir).as_posix()
    base = {"trust_root": str(sim.trust_root), "cache_dir": str(sim.cache), "retries": 0}
    userinfo_cfg = tmp_path / "userinfo" / "mesh.yaml"
    token_cfg = tmp_path / "token" / "mesh.yaml"
    wrong_cfg = tmp_path / "wrong" / "mesh.yaml"
    for path, connectors in [
        (
            userinfo_cfg,
            {"index": with_user, "packages": ["acme-audit-log", with_user + other], **base},
        ),
        (
            token_cfg,
            {
                "index": f"http://127.0.0.1:{port}/",
                "auth": {f"http://127.0.0.1:{port}": {"token_env": TOKEN_ENV}},
                "packages": ["acme-audit-log", f"http://127.0.0.1:{port}/{other}"],
                **base,
            },
        ),
        (
            wrong_cfg,
            {
                "index": f"http://{USER}:{WRONG}@127.0.0.1:{port}/",
                "packages": ["acme-audit-log"],
                **{**base, "cache_dir": str(tmp_path / "wrong-cache")},
            },
        ),
    ]:
        path.parent.mkdir(parents=True)
        path.write_text(yaml.safe_dump({"connectors": connectors}))
    env = _env(tmp_path)
    runs: list[tuple[list[str], bool, int]] = [
        (["install", "acme-audit-log", with_user + other, "--config", str(userinfo_cfg)], True, 0),
        (["load", "--config", str(userinfo_cfg)], False, 0),
        (["load", "--config", str(userinfo_cfg), "--json"], False, 0),
        (["-v", "load", "--config", str(userinfo_cfg)], False, 0),
        (["lock", "--config", str(userinfo_cfg)], False, 0),
        (["cache", "list", "--config", str(userinfo_cfg)], False, 0),
        (["install", with_user + "missing-1.0.0.zip", "--config", str(userinfo_cfg)], False, 4),  # ExitCode.TRUST: no signature
        (["install", "--index", with_user + "nope/", "--config", str(userinfo_cfg), "x"], False, 6),  # ExitCode.RESOLUTION
        (["load", "--config", str(token_cfg), "--json"], False, 0),
        (["-v", "lock", "--config", str(token_cfg)], False, 0),
        (["install", "other-sink", "--config", str(token_cfg)], True, 0),
        (["load", "--config", str(wrong_cfg)], False, 5),  # ExitCode.NETWORK: 401
        (["-v", "load", "--config", str(wrong_cfg)], False, 5),
    ]
    outputs: list[str] = []
    for args, tty, expected in runs:
        status, output = _run(args, env, tty=tty)
        assert status == expected, f"{args}: exit {status}\n{output}"
        assert _leaks(output) == [], f"{args} printed a secret:\n{output}"
        outputs.append(output)
    # The runs did what they claim: credentials were sent, progress drawn, origins shown.
    assert "[" in outputs[0] and "100%" in outputs[0]  # the progress bar on the terminal
    assert f"http://***@127.0.0.1:{port}/" in outputs[1]  # the origin, redacted
    assert "401" in outputs[11]
    auth_seen = {r.headers.get("authorization") for r in sim.server.requests}
    assert {BASIC, BEARER} <= auth_seen
    # Lock files, and every name and byte below the caches.
    for lock in (userinfo_cfg.parent / "connectors.lock", token_cfg.parent / "connectors.lock"):
        text = lock.read_text()
        assert _leaks(text) == [], text
        assert f"http://***@127.0.0.1:{port}/{other}" in text or "127.0.0.1" in text
    for root in (sim.cache, tmp_path / "wrong-cache"):
        files = list(root.rglob("*"))
        assert files
        for path in files:
            assert _leaks(str(path.relative_to(root))) == [], path
            if path.is_file():
                assert _leaks(path.read_bytes()) == [], path


# -- redirects and mirrors ----------------------------------------------------------------------


def test_cross_origin_redirect_drops_authorization() -> None:
    with LoopbackServer() as home, LoopbackServer() as elsewhere:
        elsewhere.add_file("/file", b"payload")
        home.add_file("/same-target", b"payload")
        home.script("/cross", Reply.redirect(elsewhere.url("/file")))
        home.script("/same", Reply.redirect("/same-target"))
        # A Location carrying user info must not become a credential either.
        home.script(
            "/cross-userinfo",
            Reply.redirect(f"http://evil:{PASSWORD}@127.0.0.1:{elsewhere.port}/file"),
        )
        creds = Credentials({f"http://127.0.0.1:{home.port}": BEARER})
        with HttpFetcher(FAST, credentials=creds) as fetcher:
            assert fetcher.fetch_bytes(home.url("/cross"), max_length=100) == b"payload"
            assert fetcher.fetch_bytes(home.url("/same"), max_length=100) == b"payload"
            assert fetcher.fetch_bytes(home.url("/cross-userinfo"), max_length=100) == b"payload"
        with HttpFetcher(FAST) as fetcher:
            url = f"http://{USER}:{PASSWORD}@127.0.0.1:{home.port}/cross"
            assert fetcher.fetch_bytes(url, max_length=100) == b"payload"
        # Another origin on the same host: only the port differs.
        elsewhere_auth = [r.headers.get("authorization") for r in elsewhere.requests]
        assert elsewhere_auth == [None, None, None]
        home_auth = [r.headers.get("authorization") for r in home.requests]
        assert home_auth == [BEARER, BEARER, BEARER, BEARER, BASIC]


def _corrupt_timestamp(sim: RepositorySimulator) -> Reply:
    data = bytearray(sim.read("timestamp.json"))
    data[-10] ^= 1
    return Reply.ok(bytes(data))


def test_token_goes_to_its_mirror_only(
    sim: RepositorySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.server.authorize = None  # the second mirror is public
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with LoopbackServer(sim.dir) as private:
        private.authorize = lambda r: r.headers.get("authorization") == BEARER
        private.script("/timestamp.json", _corrupt_timestamp(sim))  # fails: next mirror
        registry = build_registry(
            sim.config(
                ["acme-audit-log"],
                index=[private.base_url + "/", sim.url],
                auth={private.base_url: {"token_env": TOKEN_ENV}},
            )
        )
        assert private.requests
        assert all(r.headers.get("authorization") == BEARER for r in private.requests)
    assert "acme.audit-log.v1" in {i.id for i in registry.list_connectors()}
    assert sim.server.requests
    assert all("authorization" not in r.headers for r in sim.server.requests)


def test_netrc_entry_goes_to_its_host_only_and_default_to_nobody(
    sim: RepositorySimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.server.authorize = None
    netrc = tmp_path / "netrc"
    netrc.write_text(
        f"machine localhost login {USER} password {PASSWORD}\n"
        f"default login anyone password {WRONG}\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with LoopbackServer(sim.dir) as private:
        private.authorize = lambda r: r.headers.get("authorization") == BASIC
        private.script("/timestamp.json", _corrupt_timestamp(sim))
        build_registry(
            sim.config(["acme-audit-log"], index=[private.url("/", host="localhost"), sim.url])
        )
        assert private.requests
        assert all(r.headers.get("authorization") == BASIC for r in private.requests)
    # 127.0.0.1 is another host: neither the localhost entry nor "default" goes there.
    assert sim.server.requests
    assert all("authorization" not in r.headers for r in sim.server.requests)


def test_netrc_can_be_turned_off(
    sim: RepositorySimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    monkeypatch.setenv("NETRC", str(netrc))
    with pytest.raises(DownloadError, match="401"):
        build_registry(sim.config(["acme-audit-log"], netrc=False))
    assert all("authorization" not in r.headers for r in sim.server.requests)
    build_registry(sim.config(["acme-audit-log"]))  # default: netrc is used
    assert sim.server.requests[-1].headers.get("authorization") == BASIC


# -- units of the credential rules ---------------------------------------------------------------


def test_credentials_never_go_over_plain_http_to_another_host() -> None:
    creds = Credentials({"http://mirror.example.com:80": BEARER})
    with pytest.raises(PolicyError, match="plain http") as info:
        creds.header_for("http://mirror.example.com/index/")
    assert TOKEN not in str(info.value)
    # https and loopback http are fine; other origins get nothing.
    https = Credentials({"https://mirror.example.com:443": BEARER})
    assert https.header_for("https://mirror.example.com/x") == BEARER
    assert https.header_for("https://mirror.example.com:8443/x") is None
    assert https.header_for("http://mirror.example.com/x") is None
    assert https.header_for("https://other.example.com/x") is None


def test_credentials_repr_shows_no_secret() -> None:
    creds = Credentials({"https://a.example:443": BEARER}, {"a.example": (USER, PASSWORD)})
    assert _leaks(repr(creds)) == []
    assert "a.example" in repr(creds)


def test_missing_token_variable_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        load_credentials({"https://a.example:443": TOKEN_ENV}, netrc_file=False, environ={})


def test_malformed_netrc_error_quotes_no_content(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine a.example login u password {PASSWORD} bogus {TOKEN}\n")
    with pytest.raises(ConfigError) as info:
        load_credentials({}, netrc_file=netrc)
    assert _leaks(str(info.value)) == []
    assert str(netrc) in str(info.value)
