"""Signing keys chosen by reference: where the private key lives is the caller's choice.

Every command that signs takes a *key reference* (docs/PUBLISHING.md "Key references"):

==========================  ===================================================================
``file:PATH`` or ``PATH``   a PKCS#8 PEM file, encrypted or not (:mod:`keyfiles`: mode 0600,
                            passphrase from ``$MODELMESH_KEY_PASSPHRASE`` or a prompt)
``pkcs11:URI``              a key in a PKCS#11 token, RFC 7512 (:mod:`pkcs11_signer`)
``vault:[MOUNT/]KEY``       a Vault / OpenBao transit key (:mod:`vault_signer`)
``exec:PROGRAM [ARG…]``     an external program with a narrow contract (:mod:`exec_signer`)
==========================  ===================================================================

Whatever the kind, :func:`open_signer` returns a :class:`~modelmesh_connectors.index.keys.
SigningKey`, so the publisher functions take any of them; a key held outside this process is
wrapped by :meth:`SigningKey.from_signer`, which verifies every signature it returns against
the public key the signer declared before the signature is used.
"""

from __future__ import annotations

__all__ = [
    "SCHEMES",
    "close_signers",
    "open_signer",
    "open_signers",
    "reference_kind",
]

import contextlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from modelmesh_connectors.errors import SignerError
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.publish.keyfiles import read_signing_key

SCHEMES = ("file", "pkcs11", "vault", "exec")  # the reference kinds, in documentation order
_SCHEME_RE = re.compile(r"(file|pkcs11|vault|exec):")
_LOOKS_LIKE_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,}:")  # "C:" stays a path
_MAX_REFERENCE_LEN = 4096  # characters; a reference is a path, a URI or a short argv


def reference_kind(reference: str) -> str:
    """Tell which kind of key a reference names.

    Args:
        reference: A key reference (``file:``, ``pkcs11:``, ``vault:``, ``exec:`` or a path).

    Returns:
        One of :data:`SCHEMES`; a bare path is ``"file"``.
    """
    m = _SCHEME_RE.match(reference)
    return m.group(1) if m else "file"


def open_signer(
    reference: str,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: bool = True,
) -> SigningKey:
    """Open the signing key a reference names.

    Args:
        reference: ``file:PATH`` (or a bare path), ``pkcs11:…``, ``vault:…`` or ``exec:…``.
        environ: Environment to read PINs, Vault address/token and module paths from
            (default: ``os.environ``; a key file's passphrase always comes from
            ``os.environ``, see :func:`keyfiles.read_signing_key`).
        prompt: Whether a PIN or passphrase may be asked for on a terminal.

    Returns:
        A signing key; one held outside this process verifies each signature it returns.

    Raises:
        SignerError: The reference is malformed, or the key store cannot be reached, refuses,
            or holds no (or more than one) matching Ed25519 key.
        InvalidKeyError: A key file cannot be read or decrypted (``KeyFileError`` for I/O).
    """
    env = os.environ if environ is None else environ
    if not isinstance(reference, str) or not reference:
        raise SignerError(f"key reference: expected a non-empty string, got {reference!r:.80}")
    if len(reference) > _MAX_REFERENCE_LEN:
        raise SignerError(
            f"key reference: expected at most {_MAX_REFERENCE_LEN} characters, got {len(reference)}"
        )
    kind = reference_kind(reference)
    rest = reference[len(kind) + 1 :] if _SCHEME_RE.match(reference) else reference
    if kind == "file":
        path = Path(rest)
        if not rest:
            raise SignerError("key reference 'file:': expected a path after 'file:'")
        if (
            _LOOKS_LIKE_SCHEME_RE.match(reference)
            and not reference.startswith("file:")
            and not path.exists()
        ):
            raise SignerError(
                f"key reference {reference!r:.200}: not a key file, and "
                f"{reference.split(':', 1)[0]!r} is not a key kind",
                hint="use file:PATH, pkcs11:URI, vault:KEY or exec:PROGRAM",
            )
        # keyfiles reads $MODELMESH_KEY_PASSPHRASE itself (os.environ), as it always has.
        return read_signing_key(path, prompt=prompt)
    if kind == "pkcs11":
        from modelmesh_connectors.publish.pkcs11_signer import open_pkcs11

        return SigningKey.from_signer(open_pkcs11(reference, environ=env, prompt=prompt))
    if kind == "vault":
        from modelmesh_connectors.publish.vault_signer import open_vault

        return SigningKey.from_signer(open_vault(rest, environ=env))
    from modelmesh_connectors.publish.exec_signer import open_exec

    return SigningKey.from_signer(open_exec(rest))


def open_signers(
    references: Iterable[str],
    *,
    environ: Mapping[str, str] | None = None,
    prompt: bool = True,
) -> list[SigningKey]:
    """Open several references; when one fails, those already opened are closed.

    Args:
        references: Key references.
        environ: See :func:`open_signer`.
        prompt: See :func:`open_signer`.

    Returns:
        The signing keys, in order.

    Raises:
        SignerError, InvalidKeyError: As :func:`open_signer`.
    """
    opened: list[SigningKey] = []
    try:
        for reference in references:
            opened.append(open_signer(reference, environ=environ, prompt=prompt))
    except BaseException:
        close_signers(opened)
        raise
    return opened


def close_signers(keys: Sequence[SigningKey]) -> None:
    """Release what the signers behind ``keys`` hold (HSM sessions, HTTP connections).

    Args:
        keys: Signing keys from :func:`open_signer`; in-memory keys are skipped.
    """
    for key in keys:
        close = getattr(key.held_by, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()
