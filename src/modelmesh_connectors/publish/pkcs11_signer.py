"""``pkcs11:`` key references: an Ed25519 key in a PKCS#11 token (HSM, smart card, SoftHSM).

The reference is an RFC 7512 URI, of which this subset is understood::

    pkcs11:token=<label>;object=<label>[;id=<%xx bytes>][;serial=…][;type=private]
           [?module-path=<path to the PKCS#11 library>][&pin-source=env:<VARIABLE>]

Values are percent-decoded. The token and the key must each be found exactly once: two
keys matching one reference would make "which key signed" depend on the token's order.
The library path comes from ``module-path`` or ``$MODELMESH_PKCS11_MODULE``; the user PIN
from the variable ``pin-source=env:NAME`` names, else ``$MODELMESH_PKCS11_PIN``, else a
prompt on a terminal. ``pin-value`` (a PIN inside the reference, so in shell history and
the process list) is refused.

The private key never leaves the token: signing uses ``CKM_EDDSA`` on the token, and the
public key is read from the token's public key object with the same label and ID. Every
signature is verified against that public key by :meth:`SigningKey.from_signer` before use.
"""

from __future__ import annotations

__all__ = [
    "MODULE_ENV",
    "PIN_ENV",
    "Pkcs11Signer",
    "Pkcs11Uri",
    "open_pkcs11",
    "parse_pkcs11_uri",
]

import getpass
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from modelmesh_connectors.errors import InvalidInput, SignerError
from modelmesh_connectors.index.keys import PublicKey

MODULE_ENV = "MODELMESH_PKCS11_MODULE"  # names the PKCS#11 library to load
PIN_ENV = "MODELMESH_PKCS11_PIN"  # names the variable holding the user PIN, not a secret
_PATH_ATTRS = frozenset({"token", "object", "id", "serial", "manufacturer", "model", "type"})
_QUERY_ATTRS = frozenset({"module-path", "pin-source"})
_ED25519_POINT_LEN = 32  # bytes of a raw Ed25519 public key
_PCT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a '%' not followed by two hex digits


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of a ``pkcs11:`` URI this signer uses.

    Args:
        token: Token label.
        object: Key label (``CKA_LABEL``).
        id: Key ID (``CKA_ID``) bytes.
        serial: Token serial number.
        manufacturer: Token manufacturer ID.
        model: Token model.
        module_path: Path of the PKCS#11 library.
        pin_env: Environment variable holding the user PIN.
    """

    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    module_path: str | None = None
    pin_env: str | None = None


class Pkcs11UriError(InvalidInput, SignerError):
    """A ``pkcs11:`` reference is not a URI of the understood subset."""

    code = "input.key-reference"


def _decode(value: str, attr: str) -> bytes:
    if _PCT_RE.search(value):
        raise Pkcs11UriError(f"pkcs11 URI attribute {attr!r}: '%' must start a %XX escape")
    return unquote_to_bytes(value)


def _text(value: bytes, attr: str) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Pkcs11UriError(f"pkcs11 URI attribute {attr!r}: expected UTF-8 text") from e
    if not text or not text.isprintable():
        raise Pkcs11UriError(f"pkcs11 URI attribute {attr!r}: expected printable text")
    return text


def parse_pkcs11_uri(text: str) -> Pkcs11Uri:
    """Parse the understood subset of an RFC 7512 ``pkcs11:`` URI.

    Args:
        text: The reference, starting with ``pkcs11:``.

    Returns:
        The parsed attributes.

    Raises:
        Pkcs11UriError: Not a ``pkcs11:`` URI, an unknown or repeated attribute, a PIN in
            the URI (``pin-value``), a ``type`` other than ``private``, or neither ``object``
            nor ``id`` given.
    """
    if not text.startswith("pkcs11:"):
        raise Pkcs11UriError(f"pkcs11 URI: expected 'pkcs11:…', got {text!r:.80}")
    path, _, query = text[len("pkcs11:") :].partition("?")
    values: dict[str, bytes] = {}
    for part, allowed, sep in ((path, _PATH_ATTRS, ";"), (query, _QUERY_ATTRS, "&")):
        if not part:
            continue
        for item in part.split(sep):
            name, eq, value = item.partition("=")
            if name == "pin-value":
                raise Pkcs11UriError(
                    "pkcs11 URI: a PIN inside the reference (pin-value) is refused: it would "
                    "land in shell history and the process list",
                    hint=f"set ${PIN_ENV}, or pin-source=env:NAME, or enter it at the prompt",
                )
            if not eq or name not in allowed:
                raise Pkcs11UriError(
                    f"pkcs11 URI: expected attributes {sorted(allowed)} in the "
                    f"{'path' if sep == ';' else 'query'}, got {item!r:.80}"
                )
            if name in values:
                raise Pkcs11UriError(f"pkcs11 URI: attribute {name!r} given twice")
            values[name] = _decode(value, name)
    if "type" in values and values["type"] != b"private":
        raise Pkcs11UriError(
            f"pkcs11 URI: expected type=private (a signing key), got {values['type']!r}"
        )
    if "object" not in values and "id" not in values:
        raise Pkcs11UriError(
            "pkcs11 URI: expected object=<label> or id=<%xx…> to name the key",
            hint="e.g. pkcs11:token=index;object=index-key",
        )
    pin_env = None
    if "pin-source" in values:
        source = _text(values["pin-source"], "pin-source")
        if not source.startswith("env:") or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", source[4:]):
            raise Pkcs11UriError(
                f"pkcs11 URI: expected pin-source=env:VARIABLE, got {source!r:.80}"
            )
        pin_env = source[4:]
    return Pkcs11Uri(
        token=_text(values["token"], "token") if "token" in values else None,
        object=_text(values["object"], "object") if "object" in values else None,
        id=values.get("id"),
        serial=_text(values["serial"], "serial") if "serial" in values else None,
        manufacturer=(
            _text(values["manufacturer"], "manufacturer") if "manufacturer" in values else None
        ),
        model=_text(values["model"], "model") if "model" in values else None,
        module_path=_text(values["module-path"], "module-path")
        if "module-path" in values
        else None,
        pin_env=pin_env,
    )


def _raw_point(point: bytes) -> bytes:
    """The raw key from ``CKA_EC_POINT``: a DER OCTET STRING (RFC 8410) or the bare bytes."""
    if len(point) == _ED25519_POINT_LEN:
        return point
    if len(point) == _ED25519_POINT_LEN + 2 and point[0] == 0x04 and point[1] == 32:
        return point[2:]
    raise SignerError(
        f"pkcs11: expected an Ed25519 public point (32 bytes, or a DER OCTET STRING of 32), "
        f"got {len(point)} bytes"
    )


class Pkcs11Signer:
    """An Ed25519 private key in a PKCS#11 token; signs with ``CKM_EDDSA``.

    Build one with :func:`open_pkcs11`. One logged-in session is kept until :meth:`close`.
    """

    def __init__(self, uri: Pkcs11Uri, *, module: str, pin: str) -> None:
        """Load the library, log in to the token and find the key pair.

        Args:
            uri: The parsed reference.
            module: Path of the PKCS#11 library.
            pin: The user PIN.

        Raises:
            SignerError: python-pkcs11 is missing, the library cannot be loaded, the token
                or key is not found exactly once, the PIN is wrong, or the key is not
                Ed25519.
        """
        try:
            import pkcs11
            from pkcs11 import Attribute, KeyType, ObjectClass
        except ImportError as e:
            raise SignerError(
                "pkcs11: the python-pkcs11 package is not installed",
                hint="pip install 'modelmesh-connectors[hsm]'",
            ) from e
        self._uri = uri
        self._lock = threading.Lock()
        self._session: Any = None
        what = self._describe()
        try:
            lib = pkcs11.lib(module)
            token_args: dict[str, Any] = {}
            if uri.token is not None:
                token_args["token_label"] = uri.token
            if uri.serial is not None:
                token_args["token_serial"] = uri.serial.encode()
            tokens = [
                t
                for t in lib.get_tokens(**token_args)
                if (uri.manufacturer is None or t.manufacturer_id == uri.manufacturer)
                and (uri.model is None or t.model == uri.model)
            ]
            if len(tokens) != 1:
                raise SignerError(
                    f"pkcs11 {what}: expected exactly one matching token in {module}, "
                    f"found {len(tokens)}"
                )
            session = tokens[0].open(user_pin=pin)
        except pkcs11.PinIncorrect as e:
            raise SignerError(f"pkcs11 {what}: the token refused the PIN") from e
        except pkcs11.PKCS11Error as e:
            raise SignerError(f"pkcs11 {what}: {type(e).__name__}: {e}") from e
        except OSError as e:  # the library file cannot be loaded
            raise SignerError(f"pkcs11: cannot load module {module}: {e}") from e
        try:
            selector: dict[Any, Any] = {}
            if uri.object is not None:
                selector[Attribute.LABEL] = uri.object
            if uri.id is not None:
                selector[Attribute.ID] = uri.id
            private = list(
                session.get_objects({**selector, Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            )
            public = list(
                session.get_objects({**selector, Attribute.CLASS: ObjectClass.PUBLIC_KEY})
            )
            if len(private) != 1 or len(public) != 1:
                raise SignerError(
                    f"pkcs11 {what}: expected exactly one private and one public key object, "
                    f"found {len(private)} and {len(public)}",
                    hint="name the key by object=<label> and/or id=<%xx…> so that one pair matches",
                )
            key = private[0]
            if not isinstance(key, pkcs11.SignMixin) or key.key_type != KeyType.EC_EDWARDS:
                got = getattr(key, "key_type", type(key).__name__)
                raise SignerError(
                    f"pkcs11 {what}: expected an Ed25519 (CKK_EC_EDWARDS) key, got {got!r}"
                )
            self._public = PublicKey(_raw_point(bytes(public[0][Attribute.EC_POINT])))
            self._private: pkcs11.SignMixin = key
        except pkcs11.PKCS11Error as e:
            session.close()
            raise SignerError(f"pkcs11 {what}: {type(e).__name__}: {e}") from e
        except BaseException:
            session.close()
            raise
        self._session = session

    def _describe(self) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (("token", self._uri.token), ("object", self._uri.object))
            if v is not None
        ]
        if self._uri.id is not None:
            parts.append(f"id={self._uri.id.hex()}")
        return "pkcs11:" + ";".join(parts)

    def __repr__(self) -> str:
        return self._describe()

    @property
    def public(self) -> PublicKey:
        """The public key read from the token."""
        return self._public

    @property
    def keyid(self) -> str:
        """Key ID of :attr:`public`."""
        return self._public.keyid

    def sign(self, data: bytes) -> bytes:
        """Sign on the token with ``CKM_EDDSA`` (pure Ed25519).

        Raises:
            SignerError: The session was closed or the token failed.
        """
        import pkcs11

        with self._lock:
            if self._session is None:
                raise SignerError(f"{self._describe()}: the signer was closed")
            try:
                return bytes(self._private.sign(data, mechanism=pkcs11.Mechanism.EDDSA))
            except pkcs11.PKCS11Error as e:
                raise SignerError(
                    f"{self._describe()}: signing failed: {type(e).__name__}: {e}"
                ) from e

    def close(self) -> None:
        """Log out and close the session (idempotent)."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()


def _pin(uri: Pkcs11Uri, environ: Mapping[str, str], prompt: bool, what: str) -> str:
    name = uri.pin_env or PIN_ENV
    pin = environ.get(name)
    if not pin and prompt and sys.stdin is not None and sys.stdin.isatty():
        pin = getpass.getpass(f"PIN for {what}: ")
    if not pin:
        raise SignerError(
            f"{what}: no PIN (${name} is not set and there is no terminal to ask on)",
            hint=f"set ${name} from your secret store",
        )
    return pin


def open_pkcs11(reference: str, *, environ: Mapping[str, str], prompt: bool = True) -> Pkcs11Signer:
    """Open the key a ``pkcs11:`` reference names.

    Args:
        reference: The ``pkcs11:`` URI.
        environ: Where ``$MODELMESH_PKCS11_MODULE`` and the PIN variable are read.
        prompt: Whether the PIN may be asked for on a terminal.

    Returns:
        The signer (the caller wraps it with ``SigningKey.from_signer``).

    Raises:
        SignerError: Bad URI, no module path, no PIN, or the token refuses (see
            :class:`Pkcs11Signer`).
    """
    uri = parse_pkcs11_uri(reference)
    module = uri.module_path or environ.get(MODULE_ENV)
    if not module:
        raise SignerError(
            f"{reference.split('?')[0]}: no PKCS#11 library given",
            hint=f"add ?module-path=/path/to/lib.so or set ${MODULE_ENV}",
        )
    pin = _pin(uri, environ, prompt, reference.split("?")[0])
    return Pkcs11Signer(uri, module=module, pin=pin)
