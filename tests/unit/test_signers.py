"""Key references, one seam at a time: parsing, the exec contract, the Vault client, and the
verification every signature from outside the process goes through.

The exec signer runs a real program (tests/support/exec_signer_program.py) in every mode the
contract must survive; the Vault client talks to a small stub HTTP server on 127.0.0.1 (the
real OpenBao is in tests/e2e/test_keystores_e2e.py); PKCS#11 URIs are parsed here and used
against a real SoftHSM token end to end.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors.errors import SignerError
from modelmesh_connectors.index.envelope import RELEASE_TYPE, sign
from modelmesh_connectors.index.keys import InvalidKeyError, PublicKey, Signer, SigningKey
from modelmesh_connectors.publish.exec_signer import open_exec
from modelmesh_connectors.publish.keyfiles import write_signing_key
from modelmesh_connectors.publish.pkcs11_signer import Pkcs11UriError, parse_pkcs11_uri
from modelmesh_connectors.publish.signers import open_signer, reference_kind
from modelmesh_connectors.publish.vault_signer import VaultSigner, open_vault

PROGRAM = Path(__file__).parents[1] / "support" / "exec_signer_program.py"


@pytest.fixture
def pem(tmp_path: Path) -> tuple[Path, SigningKey]:
    key = SigningKey.generate()
    path = tmp_path / "k.pem"
    write_signing_key(path, key, None)
    return path, key


def prog(mode: str, *args: object) -> str:
    return f"{sys.executable} {PROGRAM} {mode} " + " ".join(map(str, args))


# -- the verification in front of every outside signer -----------------------------------


class _Fixed:
    """A signer that declares one key and answers with whatever it is given."""

    def __init__(self, public: PublicKey, answer: Any) -> None:
        self.public, self.answer = public, answer

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def sign(self, data: bytes) -> bytes:
        return self.answer(data) if callable(self.answer) else self.answer

    def __repr__(self) -> str:
        return "fixed"


def test_a_signer_with_another_keys_signature_or_garbage_is_a_typed_error() -> None:
    mine, other = SigningKey.generate(), SigningKey.generate()
    assert isinstance(_Fixed(mine.public, b""), Signer)
    good = SigningKey.from_signer(_Fixed(mine.public, mine.sign))
    assert good.public.verify(good.sign(b"x"), b"x")
    for answer, match in [
        (other.sign, "does not verify"),  # another key's valid signature
        (os.urandom(64), "does not verify"),  # garbage of the right size
        (b"\0" * 63, "expected a 64-byte"),
        ("a string", "expected a 64-byte"),
    ]:
        key = SigningKey.from_signer(_Fixed(mine.public, answer))
        with pytest.raises(SignerError, match=match):
            key.sign(b"x")
        # ... and nothing signed by it reaches an envelope.
        with pytest.raises(SignerError):
            sign(RELEASE_TYPE, b"{}", [key])
    with pytest.raises(InvalidKeyError, match="cannot be exported"):
        good.to_pem(None)


# -- reference kinds ------------------------------------------------------------------------


def test_reference_kinds_and_bare_paths(pem: tuple[Path, SigningKey], tmp_path: Path) -> None:
    path, key = pem
    assert [reference_kind(r) for r in ("pkcs11:x", "vault:k", "exec:p", "file:x", "/x", "C:x")] == [
        "pkcs11", "vault", "exec", "file", "file", "file"
    ]
    assert open_signer(str(path)).keyid == key.keyid
    assert open_signer(f"file:{path}").keyid == key.keyid
    with pytest.raises(SignerError, match="not a key kind"):
        open_signer("valut:index")  # a typo is not read as a relative path silently
    for bad in ("", "file:", "x" * 5000):
        with pytest.raises(SignerError):
            open_signer(bad)


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("pkcs11:token=a;object=k;pin-value=1234", "pin-value"),
        ("pkcs11:token=a?pin-value=1234&object=k", "pin-value"),
        ("pkcs11:token=a", "object=<label> or id"),
        ("pkcs11:token=a;object=k;slot-id=1", "expected attributes"),
        ("pkcs11:token=a;object=k;object=j", "given twice"),
        ("pkcs11:token=a;object=k;type=public", "type=private"),
        ("pkcs11:token=a;object=k%zz", "%XX"),
        ("pkcs11:object=k?pin-source=file:/etc/pin", "env:VARIABLE"),
        ("pkcs11:object=k?module-path", "expected attributes"),
    ],
)
def test_pkcs11_uri_subset_refusals(uri: str, match: str) -> None:
    with pytest.raises(Pkcs11UriError, match=match):
        parse_pkcs11_uri(uri)


def test_pkcs11_uri_parsing() -> None:
    u = parse_pkcs11_uri(
        "pkcs11:token=My%20Token;object=index;id=%01%02;type=private"
        "?module-path=/usr/lib/x.so&pin-source=env:HSM_PIN"
    )
    assert (u.token, u.object, u.id, u.module_path, u.pin_env) == (
        "My Token", "index", b"\x01\x02", "/usr/lib/x.so", "HSM_PIN"
    )


def test_pkcs11_needs_a_module_and_a_pin_without_a_terminal() -> None:
    with pytest.raises(SignerError, match="no PKCS#11 library"):
        open_signer("pkcs11:token=t;object=k", environ={}, prompt=False)
    with pytest.raises(SignerError, match=r"no PIN \(\$MODELMESH_PKCS11_PIN"):
        open_signer("pkcs11:token=t;object=k?module-path=/nonexistent.so", environ={}, prompt=False)
    with pytest.raises(SignerError, match="cannot load module|PKCS11|expected exactly one"):
        open_signer(
            "pkcs11:token=t;object=k?module-path=/nonexistent.so",
            environ={"MODELMESH_PKCS11_PIN": "1"},
            prompt=False,
        )


# -- exec: the contract ----------------------------------------------------------------------


def test_exec_signer_follows_the_contract_without_a_shell(
    pem: tuple[Path, SigningKey], tmp_path: Path
) -> None:
    path, key = pem
    out = tmp_path / "argv.json"
    # Characters a shell would act on reach the program as plain arguments.
    ref = f"exec:{prog('argv', path, out)} 'semi;colon' '$(touch {tmp_path}/pwned)' '*'"
    signer = open_signer(ref)
    assert signer.keyid == key.keyid
    payload = os.urandom(200_000)  # larger than a pipe buffer
    assert signer.sign(payload) == key.sign(payload)
    argv = json.loads(out.read_text())
    assert argv[-4:] == ["semi;colon", f"$(touch {tmp_path}/pwned)", "*", "sign"]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        ("garbage", "does not verify"),
        ("junk", "expected one base64 Ed25519 signature"),
        ("fail", "exited with status 3; standard error: hsm: token not present"),
        ("flood", "wrote more than 4096 bytes to standard output"),
    ],
)
def test_exec_signer_refuses_bad_programs(pem: tuple[Path, SigningKey], mode: str, match: str) -> None:
    path, _ = pem
    key = open_signer(f"exec:{prog(mode, path)}")
    with pytest.raises(SignerError, match=match):
        key.sign(b"payload")


def test_exec_signer_timeout_kills_the_program(pem: tuple[Path, SigningKey]) -> None:
    path, _ = pem
    # A short timeout: the program sleeps far longer, so any bound shows the kill.
    key = SigningKey.from_signer(open_exec(prog("sleep", path), timeout=0.5))
    started = time.monotonic()
    with pytest.raises(SignerError, match=r"did not finish within 0\.5 s"):
        key.sign(b"payload")
    assert time.monotonic() - started < 10


def test_exec_reference_errors(tmp_path: Path) -> None:
    with pytest.raises(SignerError, match="not an executable file"):
        open_signer(f"exec:{tmp_path}/missing")
    with pytest.raises(SignerError, match="No closing quotation"):
        open_signer("exec:prog 'unterminated")
    with pytest.raises(SignerError, match="expected a program"):
        open_signer("exec:   ")
    script = tmp_path / "nokey.sh"
    script.write_text("#!/bin/sh\necho not-a-key\n")
    script.chmod(0o755)
    with pytest.raises(SignerError, match="expected 64 lowercase hex characters or a PEM"):
        open_signer(f"exec:{script}")


# -- vault: the client against a stub server -----------------------------------------------


class _Vault(BaseHTTPRequestHandler):
    keys: dict[int, SigningKey]
    sign_with: SigningKey | None = None  # None: the requested version's key
    requests: list[tuple[str, str, dict[str, Any]]]

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, obj: object) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        type(self).requests.append(("GET", self.path, dict(self.headers)))
        if self.headers.get("X-Vault-Token") != "s3cret":
            return self._answer(403, {"errors": ["permission denied"]})
        keys = {str(v): {"public_key": base64.b64encode(k.public.raw).decode()} for v, k in self.keys.items()}
        self._answer(200, {"data": {"type": "ed25519", "keys": keys, "latest_version": max(self.keys)}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(("POST", self.path, body))
        version = body["key_version"]
        key = self.sign_with or self.keys[version]
        sig = key.sign(base64.b64decode(body["input"]))
        self._answer(200, {"data": {"signature": f"vault:v{version}:{base64.b64encode(sig).decode()}"}})


@pytest.fixture
def vault() -> Iterator[tuple[str, type[_Vault]]]:
    handler = type("H", (_Vault,), {"keys": {1: SigningKey.generate(), 2: SigningKey.generate()}, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_vault_signer_pins_the_version_and_verifies(vault: tuple[str, type[_Vault]]) -> None:
    addr, handler = vault
    env = {"VAULT_ADDR": addr, "VAULT_TOKEN": "s3cret"}
    key = SigningKey.from_signer(open_vault("transit/idx", environ=env))
    assert key.keyid == handler.keys[2].keyid  # latest
    assert key.public.verify(key.sign(b"abc"), b"abc")
    assert handler.requests[-1][1] == "/v1/transit/sign/idx" and handler.requests[-1][2]["key_version"] == 2
    pinned = SigningKey.from_signer(open_vault("transit/idx@1", environ=env))
    assert pinned.keyid == handler.keys[1].keyid
    pinned.sign(b"abc")
    assert handler.requests[-1][2]["key_version"] == 1
    # The server answers with another key's signature: refused.
    handler.sign_with = SigningKey.generate()
    with pytest.raises(SignerError, match="does not verify"):
        key.sign(b"abc")
    assert "s3cret" not in repr(key)


def test_vault_signer_refusals(vault: tuple[str, type[_Vault]]) -> None:
    addr, _ = vault
    with pytest.raises(SignerError, match="answered 403: permission denied"):
        open_vault("idx", environ={"VAULT_ADDR": addr, "VAULT_TOKEN": "wrong"})
    with pytest.raises(SignerError, match=r"\$VAULT_TOKEN not set"):
        open_vault("idx", environ={"VAULT_ADDR": addr})
    with pytest.raises(SignerError, match="expected key version 7"):
        open_vault("idx@7", environ={"VAULT_ADDR": addr, "VAULT_TOKEN": "s3cret"})
    with pytest.raises(SignerError, match="clear text"):
        VaultSigner(address="http://vault.example:8200", token="t", mount="transit", key="k")
    with pytest.raises(SignerError, match="expected vault:"):
        open_vault("../sys/x", environ={"VAULT_ADDR": addr, "VAULT_TOKEN": "s3cret"})
    with pytest.raises(SignerError, match="cannot reach"):
        open_vault("idx", environ={"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t"})


def test_every_signing_command_takes_an_exec_reference(tmp_path: Path) -> None:
    """The matrix row for ``exec:``: root sign, init, publish (index and release key), yank,
    timestamp, refresh, resign, submit, ingest — through the CLI's own argument handling."""
    from modelmesh_connectors.cli import main
    from modelmesh_connectors.publish.keyfiles import write_public_key
    from tests.support.packages import make_zip

    refs: dict[str, str] = {}
    for role in ("root", "index", "timestamp", "acme"):
        key = SigningKey.generate()
        write_signing_key(tmp_path / f"{role}.pem", key, None)
        write_public_key(tmp_path / f"{role}.pub.pem", key.public)
        refs[role] = f"exec:{prog('file', tmp_path / f'{role}.pem')}"
    index, root, inbox = tmp_path / "index", tmp_path / "root.json", tmp_path / "inbox"
    signers = ["--index-key", refs["index"], "--timestamp-key", refs["timestamp"]]
    steps = [
        ["root", "init", "--root-key", refs["root"], "--index-key", refs["index"], "--timestamp-key",
         refs["timestamp"], "--publisher", f"acme:acme:{tmp_path / 'acme.pub.pem'}", "-o", str(root)],
        ["root", "sign", str(root), "--key", refs["root"]],
        ["init", "--index", str(index), "--root", str(root), *signers],
        ["publish", str(make_zip(tmp_path / "p1", "acme-audit", "1.0.0")), "--index", str(index), *signers,
         "--release-key", refs["acme"]],
        ["yank", "acme-audit", "1.0.0", "--reason", "r", "--index", str(index), *signers],
        ["timestamp", "--index", str(index), "--timestamp-key", refs["timestamp"]],
        ["refresh", "--index", str(index), *signers],
        ["resign", "--index", str(index), "--release-key", refs["acme"], *signers],
        ["submit", str(make_zip(tmp_path / "p2", "acme-audit", "2.0.0")), "--inbox", str(inbox),
         "--publisher", "acme", "--release-key", refs["acme"], "--root", str(root)],
        ["ingest", "--index", str(index), "--inbox", str(inbox), *signers],
    ]
    for step in steps:
        assert main(step) == 0, step
    assert len(list((inbox / "accepted" / "acme").iterdir())) == 1
