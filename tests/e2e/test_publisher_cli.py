"""The publisher CLI end to end: keys, multi-party roots, publishing, auditing and serving.

Every command runs through ``modelmesh_connectors.cli.main`` (in-process, fast); the
console script runs in a subprocess where only a real process can show the behaviour: a
non-interactive standard input, the printed URL of ``serve --port 0``, exit statuses.
A module-scoped index is built once through the CLI and copied by tests that change it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import urllib.request
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors.cli import build_parser, main
from modelmesh_connectors.publish.audit import audit_directory
from modelmesh_connectors.publish.keyfiles import read_public_key
from tests.support.http_server import LoopbackServer
from tests.support.packages import OBSERVABILITY_SOURCE, make_package

CLI = Path(sys.executable).with_name("modelmesh-connectors")
PASSPHRASE_ENV = "MODELMESH_KEY_PASSPHRASE"
PASSPHRASE = "correct horse battery staple"
ROOT_KEYS = ("root-1", "root-2", "root-3")


@dataclass(frozen=True)
class Result:
    """One CLI run."""

    status: int
    out: str
    err: str


def cli(*args: object) -> Result:
    """Run ``main`` in-process, capturing what it prints."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main([str(a) for a in args])
    return Result(status, out.getvalue(), err.getvalue())


def ok(*args: object) -> Result:
    """Run ``main`` and require success."""
    result = cli(*args)
    assert result.status == 0, result
    assert result.err == "", result
    return result


def failed(*args: object) -> Result:
    """Run ``main`` and require a clean failure: an error status of the table (not usage),
    one error line, no traceback."""
    result = cli(*args)
    assert result.status not in (0, 2) and result.status <= 10, result
    assert result.err.startswith("error: "), result
    assert "Traceback" not in result.err
    return result


def script_env(**extra: str) -> dict[str, str]:
    """The environment for the console script, without any passphrase."""
    env = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV}
    env.update(extra)
    return env


def run_script(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with a non-interactive standard input."""
    return subprocess.run(
        [str(CLI), *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env if env is not None else script_env(),
        timeout=60,
        check=False,
    )


def flip(path: Path, offset: int) -> None:
    """Flip the low bit of one byte."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def signature_offset(envelope: bytes) -> int:
    """An offset inside the first signature's base64 value, away from its padding bits."""
    start = envelope.index(b'"sig":"') + len(b'"sig":"')
    return start + 20


def pack(base: Path, name: str, version: str, **kwargs: object) -> Path:
    """``make_package`` then ``pack`` through the CLI; returns the archive."""
    source = make_package(base / "src" / version, name, version, **kwargs)  # type: ignore[arg-type]
    dist = base / "dist"
    # A trailing separator means a directory, created when missing (else a file "dist").
    out = ok("pack", source, "-o", f"{dist}{os.sep}").out
    archive = Path(out.split()[0])
    assert archive == dist / f"{name}-{version}.zip"
    return archive


# -- the shared index, built through the CLI ---------------------------------------------------


@dataclass(frozen=True)
class Site:
    """An index published with the CLI: 2-of-3 root, one index key, one timestamp key."""

    base: Path
    index: Path
    root: Path  # the signed root version 1: the clients' trusted root

    def key(self, name: str) -> Path:
        return self.base / "keys" / f"{name}.pem"

    def pub(self, name: str) -> Path:
        return self.base / "keys" / f"{name}.pub.pem"

    def signers(self) -> list[object]:
        return ["--index-key", self.key("index"), "--timestamp-key", self.key("timestamp")]

    def copy(self, target: Path) -> Path:
        shutil.copytree(self.index, target)
        return target


def build_site(base: Path) -> Site:
    (base / "keys").mkdir(parents=True)
    site = Site(base, base / "index", base / "root.json")
    for name in (*ROOT_KEYS, "index", "timestamp"):
        out = ok("keygen", site.key(name)).out
        assert f"key id {read_public_key(site.pub(name)).keyid}" in out
    out = ok(
        "root", "init",
        *[a for k in ROOT_KEYS for a in ("--root-key", site.pub(k))], "--root-threshold", 2,
        "--index-key", site.pub("index"), "--timestamp-key", site.pub("timestamp"),
        "--expires", "400d", "-o", site.root,
    ).out
    assert "staged root version 1" in out
    assert ok("root", "sign", site.root, "--key", site.key("root-1")).out.endswith(": 1 signature(s)\n")
    assert ok("root", "sign", site.root, "--key", site.key("root-2")).out.endswith(": 2 signature(s)\n")
    ok("init", "--index", site.index, "--root", site.root, *site.signers())
    assert (site.index / "root" / "1.json").read_bytes() == site.root.read_bytes()
    for version in ("1.0.0", "1.1.0"):
        archive = pack(base, "acme-audit-log", version)
        out = ok("publish", archive, "--index", site.index, *site.signers()).out
        assert out.startswith(f"published acme-audit-log {version} sha256=")
        assert (site.index / "archives" / "acme-audit-log" / archive.name).read_bytes() == archive.read_bytes()
    out = ok("yank", "acme-audit-log", "1.0.0", "--reason", "broken redaction", "--index", site.index, *site.signers()).out
    assert out == "yanked acme-audit-log 1.0.0: broken redaction\n"
    # init (1), two publishes (2, 3), yank (4); then timestamp: 5; refresh: 6.
    assert ok("timestamp", "--index", site.index, "--timestamp-key", site.key("timestamp"), "--expires", "3d").out.startswith("timestamp version 5, expires ")
    assert ok("refresh", "--index", site.index, *site.signers()).out.startswith("index top version 5, expires ")
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_site(tmp_path_factory.mktemp("site"))


def findings(site: Site, index: Path | str) -> dict[str, Any]:
    """``verify --json`` of ``index`` against the site's trusted root."""
    result = cli("verify", index, "--root", site.root, "--json")
    report: dict[str, Any] = json.loads(result.out)
    assert result.status == (0 if report["ok"] else 4)  # ExitCode.TRUST
    return report


def audit_path(site: Site, prefix: str) -> str:
    """The index-relative path of the file a clean audit finding starting with ``prefix`` names."""
    report = audit_directory(site.index, trusted_root=site.root.read_bytes())
    return next(f.path for f in report.findings if f.message.startswith(prefix))


# -- keys ------------------------------------------------------------------------------------


def test_keygen_modes_encryption_and_no_passphrase_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal: no prompt possible
    keys = {name: tmp_path / f"{name}.pem" for name in ("root-1", "root-2", "root-3", "index", "timestamp")}
    for name in ("root-1", "root-2", "index", "timestamp"):
        ok("keygen", keys[name])
    # --encrypt takes the passphrase from the environment only.
    failed("keygen", keys["root-3"], "--encrypt")
    assert not keys["root-3"].exists()
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    out = ok("keygen", keys["root-3"], "--encrypt").out
    assert PASSPHRASE not in out
    for path in keys.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        public = path.with_name(path.name.removesuffix(".pem") + ".pub.pem")
        assert stat.S_IMODE(public.stat().st_mode) & 0o022 == 0
        read_public_key(public)
    encrypted = keys["root-3"].read_bytes()
    assert (b"BEGIN ENCRYPTED PRIVATE" + b" KEY") in encrypted
    assert PASSPHRASE.encode() not in encrypted
    assert (b"BEGIN PRIVATE" + b" KEY") in keys["root-1"].read_bytes()

    # An existing key is never overwritten (nor its public half).
    before = keys["index"].read_bytes(), (tmp_path / "index.pub.pem").read_bytes()
    assert "refusing to overwrite" in failed("keygen", keys["index"]).err
    assert (keys["index"].read_bytes(), (tmp_path / "index.pub.pem").read_bytes()) == before
    (tmp_path / "other.pub.pem").write_bytes(b"planted")
    assert "refusing to overwrite" in failed("keygen", tmp_path / "other.pem").err
    assert not (tmp_path / "other.pem").exists()  # no private key without its public half

    # No command takes a passphrase (or any secret) as an argument.
    for flag in ("--passphrase", "--password", "--pass"):
        with pytest.raises(SystemExit) as exc:
            main(["keygen", str(tmp_path / "new.pem"), "--encrypt", flag, PASSPHRASE])
        assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["keygen", str(tmp_path / "new.pem"), PASSPHRASE])
    assert exc.value.code == 2
    assert not (tmp_path / "new.pem").exists()
    options = _all_options(build_parser())
    assert "--encrypt" in options
    assert not [o for o in options if re.search("pass|secret|pin", o)]

    # The encrypted key signs with the passphrase from the environment ...
    staged = tmp_path / "staged.json"
    ok(
        "root", "init", *[a for k in ROOT_KEYS for a in ("--root-key", tmp_path / f"{k}.pub.pem")],
        "--root-threshold", 2, "--index-key", tmp_path / "index.pub.pem",
        "--timestamp-key", tmp_path / "timestamp.pub.pem", "-o", staged,
    )
    ok("root", "sign", staged, "--key", keys["root-3"])
    signed_once = staged.read_bytes()
    # ... and without it, on a non-terminal, fails with a clear message and no change.
    monkeypatch.delenv(PASSPHRASE_ENV)
    result = failed("root", "sign", staged, "--key", keys["root-3"])
    assert "is encrypted, but no passphrase was found" in result.err
    assert f"hint: set {PASSPHRASE_ENV}" in result.err
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    failed("root", "sign", staged, "--key", keys["root-3"])
    assert staged.read_bytes() == signed_once
    # The unencrypted root-1 adds the second signature: the root is complete and usable.
    assert ok("root", "sign", staged, "--key", keys["root-1"]).out.endswith("2 signature(s)\n")
    ok("init", "--index", tmp_path / "index", "--root", staged, "--index-key", keys["index"], "--timestamp-key", keys["timestamp"])


def _all_options(parser: object) -> set[str]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    options: set[str] = set()
    for action in parser._actions:
        options.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options |= _all_options(sub)
    return options


def test_console_script_keygen_and_encrypted_key_without_a_terminal(tmp_path: Path) -> None:
    key = tmp_path / "ts.pem"
    made = run_script("keygen", key, "--encrypt", env=script_env(**{PASSPHRASE_ENV: PASSPHRASE}))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert PASSPHRASE not in made.stdout + made.stderr
    assert b"ENCRYPTED" in key.read_bytes()
    # Without the variable and with stdin not a terminal: no prompt, a clear error.
    staged = tmp_path / "staged.json"
    ok(
        "root", "init", "--root-key", tmp_path / "ts.pub.pem", "--index-key", tmp_path / "ts.pub.pem",
        "--timestamp-key", tmp_path / "ts.pub.pem", "--allow-shared-keys", "-o", staged,
    )
    refused = run_script("root", "sign", staged, "--key", key)
    assert refused.returncode == 3  # ExitCode.CONFIG: a key file it cannot use
    assert refused.stderr.splitlines() == [
        f"error: key file {key} is encrypted, but no passphrase was found (${PASSPHRASE_ENV}, no terminal)",
        f"hint: set {PASSPHRASE_ENV} or run in a terminal",
    ]
    signed = run_script("root", "sign", staged, "--key", key, env=script_env(**{PASSPHRASE_ENV: PASSPHRASE}))
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.endswith("1 signature(s)\n")


# -- publishing and verifying ------------------------------------------------------------------


def test_published_index_verifies_text_and_json(site: Site) -> None:
    text = ok("verify", site.index, "--root", site.root).out.splitlines()
    assert all(line.startswith("ok    ") for line in text[:-1])
    assert re.fullmatch(r"verified: \d+ checks, 0 error\(s\)", text[-1])
    report = findings(site, site.index)
    assert report["ok"] is True
    assert report["errors"] == 0
    paths = {f["path"] for f in report["findings"]}
    for version in ("1.0.0", "1.1.0"):
        archive = f"archives/acme-audit-log/acme-audit-log-{version}.zip"
        assert {archive, f"{archive}.sig"} <= paths
    messages = [f["message"] for f in report["findings"]]
    assert any("release acme-audit-log 1.0.0" in m and "(yanked: broken redaction)" in m for m in messages)
    assert any(m.startswith("timestamp version 6 ") for m in messages)
    assert report["checked"] == len(text) - 1


def test_publishing_a_published_version_again_is_refused(site: Site, tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in site.index.rglob("*") if p.is_file()}
    same = site.base / "dist" / "acme-audit-log-1.1.0.zip"
    result = failed("publish", same, "--index", site.index, *site.signers())
    assert "acme-audit-log 1.1.0 is already published" in result.err
    assert "hint: bump the version" in result.err
    # Other bytes under the same version: refused just the same.
    modules = {
        "acme_audit_log/__init__.py": '"""Other bytes."""\n',
        "acme_audit_log/sink.py": OBSERVABILITY_SOURCE,
    }
    other = pack(tmp_path, "acme-audit-log", "1.1.0", modules=modules)
    assert other.read_bytes() != same.read_bytes()
    failed("publish", other, "--index", site.index, *site.signers())
    # Yanking twice is refused too; nothing in the index changed.
    assert "already yanked" in failed("yank", "acme-audit-log", "1.0.0", "--reason", "again", "--index", site.index, *site.signers()).err
    assert {p: p.read_bytes() for p in site.index.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("kind", ["timestamp", "index top", "bin node", "archive", "sig"])
def test_verify_names_a_file_with_one_flipped_byte(site: Site, tmp_path: Path, kind: str) -> None:
    index = site.copy(tmp_path / "index")
    rel = {
        "timestamp": "timestamp.json",
        "index top": audit_path(site, "index top version"),
        "bin node": audit_path(site, "bin "),
        "archive": "archives/acme-audit-log/acme-audit-log-1.1.0.zip",
        "sig": "archives/acme-audit-log/acme-audit-log-1.1.0.zip.sig",
    }[kind]
    target = index / rel
    data = target.read_bytes()
    signed = kind in ("timestamp", "index top")
    flip(target, signature_offset(data) if signed else len(data) // 2)
    result = cli("verify", index, "--root", site.root)
    assert result.status == 4  # ExitCode.TRUST
    assert any(line.startswith(f"ERROR {rel}: ") for line in result.out.splitlines()), result.out
    assert re.search(r"FAILED: \d+ checks, [1-9]\d* error\(s\)$", result.out.strip())
    report = findings(site, index)
    assert report["ok"] is False
    errors = [f for f in report["findings"] if not f["ok"]]
    assert {f["path"] for f in errors} == {rel}, errors


def test_verify_over_http(site: Site, tmp_path: Path) -> None:
    local = findings(site, site.index)
    with LoopbackServer(site.index) as server:
        remote = findings(site, server.base_url + "/")
        assert ok("verify", server.base_url, "--root", site.root).out.endswith("0 error(s)\n")
    assert remote == local
    broken = site.copy(tmp_path / "index")
    flip(broken / "archives/acme-audit-log/acme-audit-log-1.0.0.zip", 100)
    with LoopbackServer(broken) as server:
        result = cli("verify", server.base_url, "--root", site.root)
    assert result.status == 4
    assert "ERROR archives/acme-audit-log/acme-audit-log-1.0.0.zip: " in result.out


def test_verify_against_another_trusted_root_fails(site: Site, tmp_path: Path) -> None:
    ok("keygen", tmp_path / "k.pem")
    pub, other = tmp_path / "k.pub.pem", tmp_path / "root.json"
    ok("root", "init", "--root-key", pub, "--index-key", pub, "--timestamp-key", pub, "--allow-shared-keys", "-o", other)
    ok("root", "sign", other, "--key", tmp_path / "k.pem")
    result = cli("verify", site.index, "--root", other)
    assert result.status == 4
    assert "ERROR root/1.json: expected the trusted root's payload, got a different root" in result.out


def test_serve_console_script_on_a_free_port(site: Site, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with log.open("w") as errors, subprocess.Popen(
        [str(CLI), "serve", str(site.index), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=script_env(),
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            match = re.search(r"at (http://127\.0\.0\.1:(\d+)/) ", first)
            assert match, (first, log.read_text())
            url, port = match.group(1), int(match.group(2))
            assert port != 0
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(url + "timestamp.json", timeout=10) as response:
                assert response.read() == (site.index / "timestamp.json").read_bytes()
            # The served directory is a complete index: the audit over HTTP passes.
            assert ok("verify", url, "--root", site.root).out.endswith("0 error(s)\n")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert "GET /timestamp.json" in log.read_text()


def test_serve_refuses_bad_arguments(tmp_path: Path) -> None:
    assert "not a directory" in failed("serve", tmp_path / "missing").err
    assert "--port" in failed("serve", tmp_path, "--port", 70000).err


# -- namespace publishers ------------------------------------------------------------------------


def test_namespace_publisher_signs_its_own_namespace_only(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("root", "index", "timestamp", "acme"):
        ok("keygen", keys / f"{name}.pem")
    acme_id = read_public_key(keys / "acme.pub.pem").keyid
    staged = tmp_path / "root.json"
    ok(
        "root", "init", "--root-key", keys / "root.pub.pem", "--index-key", keys / "index.pub.pem",
        "--timestamp-key", keys / "timestamp.pub.pem", "--publisher", f"acme:acme:{keys / 'acme.pub.pem'}",
        "-o", staged,
    )
    ok("root", "sign", staged, "--key", keys / "root.pem")
    index = tmp_path / "index"
    signers = ["--index-key", keys / "index.pem", "--timestamp-key", keys / "timestamp.pem"]
    ok("init", "--index", index, "--root", staged, *signers)

    archive = pack(tmp_path, "acme-audit-log", "1.0.0")
    ok("publish", archive, "--index", index, *signers, "--release-key", keys / "acme.pem")
    sig = json.loads((index / "archives/acme-audit-log/acme-audit-log-1.0.0.zip.sig").read_bytes())
    assert [s["keyid"] for s in sig["signatures"]] == [acme_id]

    # A connector outside the acme namespace: refused before anything is written.
    before = (index / "timestamp.json").read_bytes()
    foreign = pack(tmp_path, "other-sink", "1.0.0", connectors=[("other.sink.v1", "observability", "other_sink.sink:Sink")])
    result = failed("publish", foreign, "--index", index, *signers, "--release-key", keys / "acme.pem")
    assert "other.sink.v1" in result.err or "namespace" in result.err
    assert (index / "timestamp.json").read_bytes() == before
    assert not (index / "archives" / "other-sink").exists()
    # The index key may sign anything.
    ok("publish", foreign, "--index", index, *signers)

    report = json.loads(cli("verify", index, "--root", staged, "--json").out)
    assert report["ok"] is True
    payload = json.loads(base64.b64decode(json.loads(staged.read_bytes())["payload"]))
    assert payload["publishers"] == [{"name": "acme", "keyids": [acme_id], "threshold": 1, "namespaces": ["acme"]}]

    for spec in ("acme:acme", "acme::x.pem", f"acme:acme:{keys / 'missing.pem'}"):
        failed("root", "init", "--root-key", keys / "root.pub.pem", "--index-key", keys / "index.pub.pem",
               "--timestamp-key", keys / "timestamp.pub.pem", "--publisher", spec, "-o", tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


# -- root rotation -------------------------------------------------------------------------------


def test_root_rotation_through_the_cli(site: Site, tmp_path: Path) -> None:
    index = site.copy(tmp_path / "index")
    ok("keygen", tmp_path / "timestamp-2.pem")
    staged = tmp_path / "root-2.json"
    ok(
        "root", "rotate", "--index", index, "--root-threshold", 3,
        "--timestamp-key", tmp_path / "timestamp-2.pub.pem", "--expires", "300d", "-o", staged,
    )
    assert "refusing to overwrite" in failed("root", "rotate", "--index", index, "-o", staged).err
    # Two signatures meet root 1's threshold (2) but not root 2's own (3).
    ok("root", "sign", staged, "--key", site.key("root-1"))
    ok("root", "sign", staged, "--key", site.key("root-2"))
    failed("root", "publish", staged, "--index", index)
    assert not (index / "root" / "2.json").exists()
    ok("root", "sign", staged, "--key", site.key("root-3"))
    out = ok("root", "publish", staged, "--index", index).out
    assert out.startswith("published root version 2\n")
    assert "run 'refresh' (or 'timestamp') with the new keys" in out
    # The old timestamp key is revoked: the audit fails until the timestamp is re-signed.
    assert cli("verify", index, "--root", site.root).status == 4
    failed("timestamp", "--index", index, "--timestamp-key", site.key("timestamp"))
    ok("timestamp", "--index", index, "--timestamp-key", tmp_path / "timestamp-2.pem")
    report = findings(site, index)  # still trusting root version 1: the chain is walked
    assert report["ok"] is True, report
    messages = [f["message"] for f in report["findings"]]
    assert "root version 2 is signed by root 1's and its own root keys" in messages
    # Publishing keeps working with the unchanged index key and the new timestamp key.
    archive = pack(tmp_path, "acme-audit-log", "2.0.0")
    ok("publish", archive, "--index", index, "--index-key", site.key("index"), "--timestamp-key", tmp_path / "timestamp-2.pem")
    assert findings(site, index)["ok"] is True


def test_index_and_publisher_key_rotation_through_the_cli(tmp_path: Path) -> None:
    """Root 2 replaces the index key and acme's key: 'refresh' re-signs the index role's
    releases and refuses acme's until 'resign' re-signs them with acme's new key."""
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("root", "index", "timestamp", "acme", "index-2", "acme-2"):
        ok("keygen", keys / f"{name}.pem")
    staged = tmp_path / "root.json"
    ok(
        "root", "init", "--root-key", keys / "root.pub.pem", "--index-key", keys / "index.pub.pem",
        "--timestamp-key", keys / "timestamp.pub.pem", "--publisher", f"acme:acme:{keys / 'acme.pub.pem'}",
        "-o", staged,
    )
    ok("root", "sign", staged, "--key", keys / "root.pem")
    index = tmp_path / "index"
    old_signers = ["--index-key", keys / "index.pem", "--timestamp-key", keys / "timestamp.pem"]
    new_signers = ["--index-key", keys / "index-2.pem", "--timestamp-key", keys / "timestamp.pem"]
    ok("init", "--index", index, "--root", staged, *old_signers)
    ok("publish", pack(tmp_path, "acme-audit-log", "1.0.0"), "--index", index, *old_signers, "--release-key", keys / "acme.pem")
    foreign = pack(tmp_path, "other-sink", "1.0.0", connectors=[("other.sink.v1", "observability", "other_sink.sink:Sink")])
    ok("publish", foreign, "--index", index, *old_signers)
    acme_sig = index / "archives/acme-audit-log/acme-audit-log-1.0.0.zip.sig"
    other_sig = index / "archives/other-sink/other-sink-1.0.0.zip.sig"
    before = {p: p.read_bytes() for p in (acme_sig, other_sig)}

    staged_2 = tmp_path / "root-2.json"
    ok(
        "root", "rotate", "--index", index, "--index-key", keys / "index-2.pub.pem",
        "--publisher", f"acme:acme:{keys / 'acme-2.pub.pem'}", "-o", staged_2,
    )
    ok("root", "sign", staged_2, "--key", keys / "root.pem")
    assert "run 'refresh'" in ok("root", "publish", staged_2, "--index", index).out
    assert cli("verify", index, "--root", staged).status == 4

    # The index key may not re-sign acme's release: refused, named, nothing written.
    timestamp = (index / "timestamp.json").read_bytes()
    err = failed("refresh", "--index", index, *new_signers).err
    assert "acme-audit-log 1.0.0 (publisher 'acme' of root 1)" in err
    assert "hint: " in err and "resign" in err
    assert (index / "timestamp.json").read_bytes() == timestamp
    # acme's revoked key cannot re-sign it either.
    failed("resign", "acme-audit-log", "--index", index, *new_signers, "--release-key", keys / "acme.pem")

    out = ok("resign", "acme-audit-log", "--index", index, *new_signers, "--release-key", keys / "acme-2.pem").out
    assert "re-signed acme-audit-log 1.0.0 (archives/acme-audit-log/acme-audit-log-1.0.0.zip.sig)" in out
    assert "re-signed other-sink 1.0.0" in out  # the index role's release, with index-2
    sig_ids = {p: [s["keyid"] for s in json.loads(p.read_bytes())["signatures"]] for p in before}
    assert sig_ids == {
        acme_sig: [read_public_key(keys / "acme-2.pub.pem").keyid],
        other_sig: [read_public_key(keys / "index-2.pub.pem").keyid],
    }
    report = json.loads(cli("verify", index, "--root", staged, "--json").out)
    assert report["ok"] is True, report
    assert {p.name for p in before if p.read_bytes() != before[p]} == {acme_sig.name, other_sig.name}
    assert ok("resign", "--index", index, *new_signers, "--release-key", keys / "acme-2.pem").out == (
        "nothing to re-sign: every release verifies under the current root\n"
    )
    ok("refresh", "--index", index, *new_signers)
    assert json.loads(cli("verify", index, "--root", staged, "--json").out)["ok"] is True


def test_refresh_re_signs_releases_after_an_index_key_rotation(site: Site, tmp_path: Path) -> None:
    index = site.copy(tmp_path / "index")
    ok("keygen", tmp_path / "index-2.pem")
    staged = tmp_path / "root-2.json"
    ok("root", "rotate", "--index", index, "--index-key", tmp_path / "index-2.pub.pem", "-o", staged)
    for key in ROOT_KEYS[:2]:
        ok("root", "sign", staged, "--key", site.key(key))
    ok("root", "publish", staged, "--index", index)
    sigs = sorted((index / "archives").rglob("*.zip.sig"))
    before = [p.read_bytes() for p in sigs]
    assert cli("verify", index, "--root", site.root).status == 4
    ok("refresh", "--index", index, "--index-key", tmp_path / "index-2.pem", "--timestamp-key", site.key("timestamp"))
    report = findings(site, index)
    assert report["ok"] is True, report
    new_id = read_public_key(tmp_path / "index-2.pub.pem").keyid
    for path, old in zip(sigs, before, strict=True):
        assert path.read_bytes() != old
        assert [s["keyid"] for s in json.loads(path.read_bytes())["signatures"]] == [new_id]
    assert len(sigs) == 2  # 1.0.0 (yanked) and 1.1.0


# -- errors --------------------------------------------------------------------------------------


def test_errors_are_one_line_not_tracebacks(site: Site, tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    assert f"root file {missing}: cannot read" in failed("init", "--index", tmp_path / "i", "--root", missing, *site.signers()).err
    assert f"trusted root {missing}: cannot read" in failed("verify", site.index, "--root", missing).err
    assert "not a file" in failed("publish", tmp_path / "none.zip", "--index", site.index, *site.signers()).err
    err = failed("timestamp", "--index", site.index, "--timestamp-key", site.key("timestamp"), "--expires", "7x").err
    assert err.startswith("error: --expires: expected a duration")
    err = failed("refresh", "--index", site.index, *site.signers(), "--index-expires=-1d").err
    assert err.startswith("error: --index-expires: expected a duration")
    # A zero lifetime would publish an expired timestamp: the library's check refuses it.
    assert "expired" in failed("timestamp", "--index", site.index, "--timestamp-key", site.key("timestamp"), "--expires", "0s").err
    # The wrong key for a role: refused by the library's own trust checks.
    assert "timestamp" in failed("timestamp", "--index", site.index, "--timestamp-key", site.key("index")).err
    failed("init", "--index", site.index, "--root", site.root, *site.signers())  # an index exists
    assert "refusing to overwrite" in failed(
        "root", "init", "--root-key", site.pub("root-1"), "--index-key", site.pub("index"),
        "--timestamp-key", site.pub("timestamp"), "-o", site.root,
    ).err
    assert (site.index / "root" / "1.json").read_bytes() == site.root.read_bytes()


@pytest.fixture(autouse=True)
def _no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test depends on a passphrase from the developer's environment."""
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


# -- publisher footguns (in a real process: exit status, stderr, file modes) ---------------------


def test_console_script_root_sign_refuses_a_key_that_is_not_a_root_key(site: Site, tmp_path: Path) -> None:
    staged = tmp_path / "staged.json"
    ok(
        "root", "init", *[a for k in ROOT_KEYS for a in ("--root-key", site.pub(k))],
        "--index-key", site.pub("index"), "--timestamp-key", site.pub("timestamp"), "-o", staged,
    )
    before = staged.read_bytes()
    refused = run_script("root", "sign", staged, "--key", site.key("index"))
    assert refused.returncode == 9, refused
    index_id = read_public_key(site.pub("index")).keyid
    [error, hint] = refused.stderr.splitlines()
    assert error.startswith(f"error: staged root {staged}: expected a root key, got key {index_id} (root keys of root 1: ")
    for name in ROOT_KEYS:
        assert read_public_key(site.pub(name)).keyid in error
    assert hint.startswith("hint: ")
    assert staged.read_bytes() == before  # no stray signature written
    assert run_script("root", "sign", staged, "--key", site.key("root-3")).returncode == 0


def test_console_script_root_sign_rotation_with_a_retiring_key(site: Site, tmp_path: Path) -> None:
    index = site.copy(tmp_path / "index")
    for name in ("new-1", "new-2"):
        ok("keygen", tmp_path / f"{name}.pem")
    staged = tmp_path / "root-2.json"
    ok("root", "rotate", "--index", index, "--root-key", tmp_path / "new-1.pub.pem",
       "--root-key", tmp_path / "new-2.pub.pem", "--root-threshold", 2, "-o", staged)
    # root-1 is in root 1 only: refused without --index (hint names it), accepted with it.
    refused = run_script("root", "sign", staged, "--key", site.key("root-1"))
    assert refused.returncode == 9 and "--index DIR" in refused.stderr
    for key in (site.key("root-1"), site.key("root-2")):
        assert run_script("root", "sign", staged, "--key", key, "--index", index).returncode == 0
    for key in (tmp_path / "new-1.pem", tmp_path / "new-2.pem"):
        ok("root", "sign", staged, "--key", key)
    assert ok("root", "publish", staged, "--index", index).out.startswith("published root version 2")


def test_console_script_refuses_shared_role_keys_unless_allowed(site: Site, tmp_path: Path) -> None:
    staged = tmp_path / "staged.json"
    args = [
        "root", "init", "--root-key", site.pub("root-1"), "--index-key", site.pub("timestamp"),
        "--timestamp-key", site.pub("timestamp"), "-o", staged,
    ]
    refused = run_script(*args)
    assert refused.returncode == 9
    ts_id = read_public_key(site.pub("timestamp")).keyid
    assert f"key {ts_id} is in index and timestamp" in refused.stderr
    assert "--allow-shared-keys" in refused.stderr
    assert not staged.exists()
    made = run_script(*args, "--allow-shared-keys")
    assert made.returncode == 0, made.stderr
    # A rotation that gives the index role a root key: refused the same way.
    index = site.copy(tmp_path / "index")
    refused = run_script("root", "rotate", "--index", index, "--index-key", site.pub("root-1"), "-o", tmp_path / "r2.json")
    assert refused.returncode == 9
    assert f"key {read_public_key(site.pub('root-1')).keyid} is in root and index" in refused.stderr
    assert not (tmp_path / "r2.json").exists()


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("mode", [0o640, 0o604], ids=oct)
def test_console_script_refuses_a_private_key_others_can_read(site: Site, tmp_path: Path, mode: int) -> None:
    index = site.copy(tmp_path / "index")
    key = tmp_path / "timestamp.pem"
    shutil.copyfile(site.key("timestamp"), key)
    key.chmod(mode)
    before = (index / "timestamp.json").read_bytes()
    refused = run_script("timestamp", "--index", index, "--timestamp-key", key)
    assert refused.returncode == 3
    assert refused.stderr.splitlines() == [
        f"error: key file {key}: expected permissions 0600 (owner only), got {mode:04o}: a private "
        "key that group or others can access is refused",
        f"hint: run 'chmod 600 {key}' (and consider the key exposed if others could read it)",
    ]
    assert (index / "timestamp.json").read_bytes() == before
    key.chmod(0o600)
    assert run_script("timestamp", "--index", index, "--timestamp-key", key).returncode == 0


def test_console_script_verify_warns_of_stray_signatures_and_orphans(site: Site, tmp_path: Path) -> None:
    from modelmesh_connectors.index.envelope import (
        TIMESTAMP_TYPE,
        parse_envelope,
        sign,
    )
    from modelmesh_connectors.publish.keyfiles import read_signing_key

    index = site.copy(tmp_path / "index")
    clean = run_script("verify", index, "--root", site.root)
    assert clean.returncode == 0 and "WARN" not in clean.stdout
    assert clean.stdout.rstrip().endswith(" 0 error(s)")
    env = parse_envelope((index / "timestamp.json").read_bytes())
    stray = read_signing_key(site.key("root-1"))  # a real key, of the wrong role
    signers = [read_signing_key(site.key("timestamp")), stray]
    (index / "timestamp.json").write_bytes(sign(TIMESTAMP_TYPE, env.payload, signers).to_bytes())
    (index / "archives" / "acme-audit-log" / "acme-audit-log-9.0.0.zip").write_bytes(b"planted")

    text = run_script("verify", index, "--root", site.root)
    assert text.returncode == 0, text  # warnings do not fail the audit
    warned = [line for line in text.stdout.splitlines() if line.startswith("WARN ")]
    assert warned == [
        f"WARN  timestamp.json: stray signature by key {stray.keyid}: expected a key of the "
        f"timestamp role ({signers[0].keyid}); it counts for nothing",
        "WARN  archives/acme-audit-log/acme-audit-log-9.0.0.zip: orphan: nothing the current "
        "timestamp pins refers to this file (left by an interrupted publish, misplaced, or planted?)",
    ]
    assert re.search(r"^verified: \d+ checks, 0 error\(s\), 2 warning\(s\); 1 orphan\(s\) \('gc' removes them\)$", text.stdout.splitlines()[-1])

    as_json = run_script("verify", index, "--root", site.root, "--json")
    assert as_json.returncode == 0
    report = json.loads(as_json.stdout)
    assert (report["ok"], report["errors"], report["warnings"]) == (True, 0, 2)
    levels = {f["path"]: f["level"] for f in report["findings"] if f["level"] != "ok"}
    assert levels == {"timestamp.json": "warning", "archives/acme-audit-log/acme-audit-log-9.0.0.zip": "warning"}
    # An error still fails, and its level says so.
    flip(index / "archives/acme-audit-log/acme-audit-log-1.1.0.zip", 100)
    broken = json.loads(run_script("verify", index, "--root", site.root, "--json").stdout)
    assert broken["ok"] is False
    assert {f["level"] for f in broken["findings"] if not f["ok"]} == {"error"}
