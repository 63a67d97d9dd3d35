"""``vault:`` key references: an Ed25519 key in a Vault or OpenBao transit engine.

Reference: ``vault:[MOUNT/]KEY[@VERSION]``, e.g. ``vault:transit/index`` or ``vault:index``
(mount ``transit``). The server address and token come from ``$VAULT_ADDR`` and
``$VAULT_TOKEN`` (``$VAULT_NAMESPACE`` and ``$VAULT_CACERT`` when set), as for the ``vault``
and ``bao`` commands; a token is never taken from the reference, where it would land in
shell history.

On open the key is read (``GET /v1/MOUNT/keys/KEY``): it must be of type ``ed25519``, and
the version signed with is pinned (the one given, else the latest), so a rotation of the
transit key while a command runs cannot switch keys between two signatures. Signing posts
the bytes to ``/v1/MOUNT/sign/KEY`` with that ``key_version``; the private key never leaves
the server. The token travels only over HTTPS, or over plain HTTP to a loopback address
(a dev server on this machine). Every signature is verified against the public key read on
open by :meth:`SigningKey.from_signer` before use.
"""

from __future__ import annotations

__all__ = [
    "ADDR_ENV",
    "TOKEN_ENV",
    "VaultSigner",
    "open_vault",
]

import base64
import binascii
import ipaddress
import json
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from modelmesh_connectors.errors import SignerError
from modelmesh_connectors.index.keys import InvalidKeyError, PublicKey

ADDR_ENV = "VAULT_ADDR"
TOKEN_ENV = "VAULT_TOKEN"  # noqa: S105 - names the variable, holds no secret
_NAMESPACE_ENV = "VAULT_NAMESPACE"
_CACERT_ENV = "VAULT_CACERT"
_TIMEOUT = 15.0  # seconds per request to the Vault server
_MAX_RESPONSE_BYTES = 256 * 1024  # a key read or a signature is < 4 KiB
_REFERENCE_RE = re.compile(
    r"(?:(?P<mount>[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(?:/[A-Za-z0-9][A-Za-z0-9_.-]{0,127})*)/)?"
    r"(?P<key>[A-Za-z0-9][A-Za-z0-9_.-]{0,127})(?:@(?P<version>[1-9][0-9]{0,8}))?"
)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class VaultSigner:
    """An Ed25519 transit key on a Vault-compatible server. Build one with :func:`open_vault`."""

    def __init__(
        self,
        *,
        address: str,
        token: str,
        mount: str,
        key: str,
        version: int | None = None,
        namespace: str | None = None,
        cacert: str | None = None,
    ) -> None:
        """Read the key and pin its version.

        Args:
            address: Server URL (``https://…``, or ``http://`` to a loopback address).
            token: The Vault token (sent as ``X-Vault-Token``; never shown).
            mount: Transit mount path.
            key: Transit key name.
            version: Key version to sign with (default: the latest).
            namespace: Vault namespace (Enterprise), if any.
            cacert: CA bundle to verify the server with.

        Raises:
            SignerError: Bad address, server unreachable or refusing, not an ed25519 key,
                or the version does not exist.
        """
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SignerError(f"${ADDR_ENV}: expected an http(s) URL, got {address!r:.80}")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise SignerError(f"${ADDR_ENV}: expected scheme://host[:port][/path] only")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise SignerError(
                f"${ADDR_ENV}: plain http to {parts.hostname} would send the Vault token in "
                "clear text; expected https (http only to a loopback address)"
            )
        self._what = f"vault:{mount}/{key}"
        self._mount, self._key = mount, key
        self._lock = threading.Lock()
        headers = {"X-Vault-Token": token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        self._client: httpx.Client | None = httpx.Client(
            base_url=address.rstrip("/") + "/v1/",
            headers=headers,
            timeout=_TIMEOUT,
            verify=cacert if cacert else True,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment sees the token
        )
        try:
            data = self._call("GET", f"{quote(mount)}/keys/{quote(key)}")
            if data.get("type") != "ed25519":
                raise SignerError(
                    f"{self._what}: expected a transit key of type 'ed25519', got "
                    f"{data.get('type')!r}"
                )
            versions = data.get("keys")
            latest = data.get("latest_version")
            chosen = version if version is not None else latest
            entry = versions.get(str(chosen)) if isinstance(versions, dict) else None
            if not isinstance(chosen, int) or not isinstance(entry, dict):
                raise SignerError(
                    f"{self._what}: expected key version {chosen} to exist, got versions "
                    f"{sorted(versions) if isinstance(versions, dict) else versions!r:.80}"
                )
            self._version = chosen
            self._public = PublicKey(self._b64(entry.get("public_key"), "public_key"))
        except InvalidKeyError as e:
            self.close()
            raise SignerError(f"{self._what}: public key: {e.message}") from e
        except BaseException:
            self.close()
            raise

    def _b64(self, text: object, what: str) -> bytes:
        if not isinstance(text, str):
            raise SignerError(f"{self._what}: expected {what} as base64 text, got {text!r:.80}")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as e:
            raise SignerError(f"{self._what}: {what} is not base64: {e}") from e

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        client = self._client
        if client is None:
            raise SignerError(f"{self._what}: the signer was closed")
        try:
            with client.stream(method, path, json=body) as response:
                raw = b""
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > _MAX_RESPONSE_BYTES:
                        raise SignerError(
                            f"{self._what}: expected a response of at most "
                            f"{_MAX_RESPONSE_BYTES} bytes, got more"
                        )
                status = response.status_code
        except httpx.HTTPError as e:
            raise SignerError(
                f"{self._what}: cannot reach the Vault server: {type(e).__name__}: {e}"
            ) from e
        try:
            obj = json.loads(raw) if raw else {}
        except ValueError:
            obj = None
        if status != 200:
            errors = obj.get("errors") if isinstance(obj, dict) else None
            detail = "; ".join(map(str, errors))[:300] if isinstance(errors, list) else ""
            raise SignerError(
                f"{self._what}: {method} {path}: the server answered {status}"
                + (f": {detail}" if detail else ""),
                hint="check $VAULT_ADDR, $VAULT_TOKEN (and its policy allows transit "
                "read and sign on this key)"
                if status in (403, 404)
                else None,
            )
        data = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(data, dict):
            raise SignerError(f"{self._what}: expected a JSON object with 'data', got {raw!r:.80}")
        return data

    def __repr__(self) -> str:
        return f"{self._what}@{getattr(self, '_version', '?')}"

    @property
    def public(self) -> PublicKey:
        """The public key of the pinned version."""
        return self._public

    @property
    def keyid(self) -> str:
        """Key ID of :attr:`public`."""
        return self._public.keyid

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with the pinned key version on the server.

        Raises:
            SignerError: The server failed or answered with an unexpected form.
        """
        with self._lock:
            answer = self._call(
                "POST",
                f"{quote(self._mount)}/sign/{quote(self._key)}",
                {"input": base64.b64encode(data).decode("ascii"), "key_version": self._version},
            )
        text = answer.get("signature")
        prefix = f"vault:v{self._version}:"
        if not isinstance(text, str) or not text.startswith(prefix):
            raise SignerError(
                f"{self._what}: expected a signature starting {prefix!r}, got {text!r:.40}"
            )
        return self._b64(text[len(prefix) :], "signature")

    def close(self) -> None:
        """Close the HTTP connection pool (idempotent)."""
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()


def open_vault(reference: str, *, environ: Mapping[str, str]) -> VaultSigner:
    """Open the transit key a ``vault:`` reference names (the part after ``vault:``).

    Args:
        reference: ``[MOUNT/]KEY[@VERSION]``.
        environ: Where ``$VAULT_ADDR``, ``$VAULT_TOKEN`` and friends are read.

    Returns:
        The signer.

    Raises:
        SignerError: A malformed reference, no address or token, or see
            :class:`VaultSigner`.
    """
    m = _REFERENCE_RE.fullmatch(reference)
    if m is None:
        raise SignerError(
            f"key reference 'vault:{reference:.80}': expected vault:[MOUNT/]KEY[@VERSION]"
        )
    address = environ.get(ADDR_ENV)
    token = environ.get(TOKEN_ENV)
    if not address or not token:
        missing = " and ".join(
            f"${n}" for n, v in ((ADDR_ENV, address), (TOKEN_ENV, token)) if not v
        )
        raise SignerError(
            f"vault:{reference}: {missing} not set",
            hint="export VAULT_ADDR and VAULT_TOKEN (from your CI's secret store)",
        )
    return VaultSigner(
        address=address,
        token=token,
        mount=m.group("mount") or "transit",
        key=m.group("key"),
        version=int(m.group("version")) if m.group("version") else None,
        namespace=environ.get(_NAMESPACE_ENV) or None,
        cacert=environ.get(_CACERT_ENV) or None,
    )
