"""Ed25519 public and signing keys (pure: no file I/O).

A key is identified by its *key ID*: the lowercase hex SHA-256 of the raw 32-byte
Ed25519 public key (FORMAT.md §2). Deriving the ID from the key, instead of letting a
file name it, stops one key from being counted twice under two IDs.

File handling (permissions, passphrase prompts) lives in :mod:`keyfiles`. Keys held
elsewhere (an HSM, a Vault transit engine, an external program) implement :class:`Signer`
and are wrapped by :meth:`SigningKey.from_signer`, which verifies every signature they
return before it is used; the publisher only ever sees :class:`SigningKey` objects.
"""

from __future__ import annotations

__all__ = [
    "InvalidKeyError",
    "PublicKey",
    "Signer",
    "SigningKey",
    "is_encrypted_pem",
    "small_order_problem",
]

import functools
import hashlib
import re
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.errors import InvalidInput, SignerError

# ``cryptography.hazmat.primitives.serialization`` (PEM, with the SSH, EC, RSA and DSA
# modules it pulls in; ~20 M instructions of a client start) is imported only by the methods
# that read or write PEM: verifying a signature, which every client run does, needs only the
# Ed25519 key type.

_RAW_KEY_LEN = 32  # bytes of a raw Ed25519 public key
_SIGNATURE_LEN = 64  # bytes of an Ed25519 signature
_HEX_KEY_RE = re.compile(r"[0-9a-f]{64}")
_MAX_PEM_BYTES = 64 * 1024  # a PEM key is < 1 KiB; refuse to feed huge blobs to the parser
_MAX_REMEMBERED = 64  # valid signatures one key object remembers (see PublicKey._valid)


class InvalidKeyError(InvalidInput):
    """A public or private key is malformed, of the wrong type, or cannot be decrypted."""

    code = "input.key"


# Edwards25519 (RFC 8032 §5.1): -x^2 + y^2 = 1 + d x^2 y^2 over GF(p).
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_Y_MASK = (1 << 255) - 1  # the encoding's low 255 bits are y; the top bit is the sign of x
# The y coordinates of the 8 points of small order (8·P = O): the identity (y = 1), the point
# of order 2 (y = -1), the two of order 4 (y = 0) and the four of order 8 (y = ±y8). A point
# and its negation share y, so every small-order point, under either sign bit, has its y here;
# and since y is reduced mod p first, so does every non-canonical encoding (y + p < 2^255,
# i.e. y = 0 or 1 stored as p or p + 1). Comparing y against this set is the same test as
# decompressing the point and doubling it three times, without the 8 modular inversions.
_Y8 = 0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7
_SMALL_ORDER_Y = frozenset({1, _P - 1, 0, _Y8, _P - _Y8})


def _on_curve(y: int) -> bool:
    """Whether some x satisfies the curve equation for ``y`` (RFC 8032 §5.1.3 decoding)."""
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    # x = u v^3 (u v^7)^((p-5)/8) is a square root of u/v when one exists: one exponentiation.
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    vx2 = v * x * x % _P
    return vx2 == u or vx2 == (-u) % _P


# Remembered per encoding: the same few trusted keys are parsed again for every root and
# every run in a process (bounded; the answer is the arithmetic's).
@functools.lru_cache(maxsize=4096)
def small_order_problem(raw: bytes) -> str | None:
    """Why a raw Ed25519 public key is unusable as a trusted key, or None if it is usable.

    A key of small order (one of the 8 points P with 8·P = O, in any encoding) lets a
    "signature" verify for many messages on some implementations and on none on others:
    implementations disagree on them, so the format forbids them (FORMAT.md §2). An encoding
    that is no point on the curve is refused as well.

    Pure in ``raw``, so answers are remembered: a process that reads the same root again (every
    run of a long-lived client) does not redo the field arithmetic.

    Args:
        raw: The 32-byte encoding.

    Returns:
        A short reason, or None.
    """
    y = (int.from_bytes(raw, "little") & _Y_MASK) % _P
    if y in _SMALL_ORDER_Y:
        return "a point of small order (8·P is the identity)"
    if not _on_curve(y):
        return "not a point on the curve"
    return None


def is_encrypted_pem(data: bytes) -> bool:
    """Tell whether PEM bytes hold a passphrase-encrypted PKCS#8 private key.

    Args:
        data: PEM file contents.

    Returns:
        True when the PEM block is an encrypted PKCS#8 block.
    """
    return (b"-----BEGIN ENCRYPTED PRIVATE" + b" KEY-----") in data


class PublicKey(Frozen):
    """An Ed25519 public key.

    Args:
        raw: The raw 32-byte public key.

    Raises:
        InvalidKeyError: ``raw`` is not a valid 32-byte Ed25519 public key.
    """

    __slots__ = ("_key", "_keyid", "_valid", "raw")
    # Computed from ``raw``: left out of ==, hash and repr (as field(compare=False, ...) was).
    _hidden = frozenset({"_key", "_keyid", "_valid"})

    raw: bytes
    _key: Ed25519PublicKey
    # Signatures this key object already found valid: signature -> the exact signed bytes.
    # One run checks the same stored file more than once (the rollback reference before and
    # after the root walk; a fetched timestamp identical to the stored one), always with the
    # key objects of one verified root: a repeat is answered by comparing bytes, which gives
    # the same answer as Ed25519 would. Only valid results are kept; bounded.
    _valid: dict[bytes, bytes]
    _keyid: str

    def __init__(self, raw: bytes) -> None:
        object.__setattr__(self, "raw", raw)
        if not isinstance(self.raw, bytes) or len(self.raw) != _RAW_KEY_LEN:
            size = len(self.raw) if isinstance(self.raw, bytes) else type(self.raw).__name__
            raise InvalidKeyError(
                f"Ed25519 public key: expected {_RAW_KEY_LEN} raw bytes, got {size}"
            )
        problem = small_order_problem(self.raw)
        if problem is not None:
            raise InvalidKeyError(f"Ed25519 public key {self.raw.hex()} is invalid: {problem}")
        try:
            key = Ed25519PublicKey.from_public_bytes(self.raw)
        except (ValueError, UnsupportedAlgorithm) as e:
            raise InvalidKeyError(f"Ed25519 public key {self.raw.hex()} is invalid: {e}") from e
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_valid", {})
        # Computed once: verify_threshold compares it for every signature it counts.
        object.__setattr__(self, "_keyid", hashlib.sha256(self.raw).hexdigest())

    @property
    def keyid(self) -> str:
        """Lowercase hex SHA-256 of the raw public key."""
        return self._keyid

    @property
    def public_hex(self) -> str:
        """The raw public key as 64 lowercase hex characters (the form used in root.json)."""
        return self.raw.hex()

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Check an Ed25519 signature.

        Args:
            signature: The 64-byte signature.
            data: The exact signed bytes.

        Returns:
            True if the signature is valid for ``data``; False otherwise (never raises for a
            bad or malformed signature).
        """
        if not isinstance(signature, bytes) or len(signature) != _SIGNATURE_LEN:
            return False
        data = bytes(data)
        if self._valid.get(signature) == data:
            return True  # this key found exactly this signature over exactly these bytes valid
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            return False
        if len(self._valid) >= _MAX_REMEMBERED:
            self._valid.clear()
        self._valid[signature] = data
        return True

    def to_pem(self) -> bytes:
        """Serialise as a SubjectPublicKeyInfo PEM block.

        Returns:
            PEM bytes (``-----BEGIN PUBLIC KEY-----``).
        """
        from cryptography.hazmat.primitives import serialization

        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_hex(cls, text: str) -> PublicKey:
        """Parse the 64-lowercase-hex-character form used in root.json.

        Args:
            text: 64 lowercase hex characters.

        Returns:
            The public key.

        Raises:
            InvalidKeyError: ``text`` is not 64 lowercase hex characters or not a valid key.
        """
        # Exactly one spelling per key: upper case or whitespace would let two
        # root entries name the same key differently.
        if not isinstance(text, str) or not _HEX_KEY_RE.fullmatch(text):
            raise InvalidKeyError(
                f"Ed25519 public key: expected 64 lowercase hex characters, got {text!r:.80}"
            )
        return cls(bytes.fromhex(text))

    @classmethod
    def from_pem(cls, data: bytes) -> PublicKey:
        """Parse a SubjectPublicKeyInfo PEM public key.

        Args:
            data: PEM bytes.

        Returns:
            The public key.

        Raises:
            InvalidKeyError: Not a PEM public key, or not an Ed25519 key.
        """
        from cryptography.hazmat.primitives import serialization

        if len(data) > _MAX_PEM_BYTES:
            raise InvalidKeyError(
                f"public key PEM: expected at most {_MAX_PEM_BYTES} bytes, got {len(data)}"
            )
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise InvalidKeyError(f"public key PEM cannot be parsed: {e}") from e
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidKeyError(
                f"public key PEM: expected an Ed25519 key, got {type(key).__name__}"
            )
        return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


@runtime_checkable
class Signer(Protocol):
    """Anything that signs with one Ed25519 key: the interface the publisher relies on.

    :class:`SigningKey` is one; the key references of
    :mod:`modelmesh_connectors.publish.signers` (``pkcs11:``, ``vault:``, ``exec:``) are
    others. A signer's answer is not trusted: wrap it with :meth:`SigningKey.from_signer`,
    which checks each signature against :attr:`public` before anything uses it.
    """

    @property
    def public(self) -> PublicKey:
        """The public key the signer claims to sign with."""
        ...

    @property
    def keyid(self) -> str:
        """Key ID of :attr:`public`."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Return the Ed25519 signature over ``data`` (64 bytes)."""
        ...


class SigningKey:
    """An Ed25519 key that signs index files: in memory, or held by a :class:`Signer`.

    Build one with :meth:`generate` or :meth:`from_pem` (the private bytes never appear in
    ``repr`` and are only exported by :meth:`to_pem`), or wrap a key held elsewhere with
    :meth:`from_signer`.
    """

    __slots__ = ("_key", "_public", "_remote")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        """Wrap a cryptography private key.

        Args:
            key: The Ed25519 private key.

        Raises:
            TypeError: ``key`` is not an Ed25519 private key.
        """
        from cryptography.hazmat.primitives import serialization

        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError(f"expected Ed25519PrivateKey, got {type(key).__name__}")
        self._key: Ed25519PrivateKey | None = key
        self._remote: Signer | None = None
        self._public = PublicKey(
            key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    def __repr__(self) -> str:
        where = "" if self._remote is None else f", held by {self._remote!r}"
        return f"SigningKey(keyid={self.keyid[:16]}…{where})"

    @classmethod
    def from_signer(cls, signer: Signer) -> SigningKey:
        """Wrap a key held elsewhere; every signature it returns is verified before use.

        Args:
            signer: The signer (HSM, Vault, external program …).

        Returns:
            A signing key whose :meth:`sign` delegates to ``signer``.

        Raises:
            TypeError: ``signer`` does not declare a :class:`PublicKey`.
        """
        public = signer.public
        if not isinstance(public, PublicKey):
            raise TypeError(f"signer.public: expected PublicKey, got {type(public).__name__}")
        key = cls.__new__(cls)
        key._key = None
        key._remote = signer
        key._public = public
        return key

    @property
    def held_by(self) -> Signer | None:
        """The signer holding the private key, or None for a key in this process's memory."""
        return self._remote

    @classmethod
    def generate(cls) -> SigningKey:
        """Create a fresh random key.

        Returns:
            A new signing key.
        """
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None) -> SigningKey:
        """Load a PKCS#8 PEM private key, optionally passphrase-encrypted.

        Args:
            data: PEM bytes.
            passphrase: The passphrase for an encrypted PKCS#8 PEM block; None for a plain one.

        Returns:
            The signing key.

        Raises:
            InvalidKeyError: Malformed PEM, not Ed25519, wrong or missing passphrase, or a
                passphrase given for an unencrypted key.
        """
        from cryptography.hazmat.primitives import serialization

        if len(data) > _MAX_PEM_BYTES:
            raise InvalidKeyError(
                f"private key PEM: expected at most {_MAX_PEM_BYTES} bytes, got {len(data)}"
            )
        encrypted = is_encrypted_pem(data)
        if encrypted and not passphrase:
            raise InvalidKeyError(
                "private key PEM is encrypted but no passphrase was given",
                hint="set MODELMESH_KEY_PASSPHRASE or run in a terminal to be prompted",
            )
        if not encrypted and passphrase is not None:
            raise InvalidKeyError("private key PEM is not encrypted but a passphrase was given")
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            what = "wrong passphrase or malformed key" if encrypted else "malformed key"
            raise InvalidKeyError(f"private key PEM cannot be loaded ({what}): {e}") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidKeyError(
                f"private key PEM: expected an Ed25519 key, got {type(key).__name__}"
            )
        return cls(key)

    def to_pem(self, passphrase: bytes | None) -> bytes:
        """Export as PKCS#8 PEM.

        Args:
            passphrase: Encrypt with this passphrase (best available scheme); None for none.

        Returns:
            PEM bytes.

        Raises:
            InvalidKeyError: ``passphrase`` is empty, or the key is held by a signer (an HSM
                or Vault key never leaves it).
        """
        from cryptography.hazmat.primitives import serialization

        if self._key is None:
            raise InvalidKeyError(
                f"key {self.keyid} is held by {self._remote!r} and cannot be exported"
            )
        algorithm: serialization.KeySerializationEncryption
        if passphrase is None:
            algorithm = serialization.NoEncryption()
        elif not passphrase:
            raise InvalidKeyError("passphrase: expected a non-empty passphrase, got b''")
        else:
            algorithm = serialization.BestAvailableEncryption(passphrase)
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm
        )

    @property
    def public(self) -> PublicKey:
        """The matching public key."""
        return self._public

    @property
    def keyid(self) -> str:
        """Key ID of the matching public key."""
        return self._public.keyid

    def sign(self, data: bytes) -> bytes:
        """Sign bytes.

        Args:
            data: The exact bytes to sign.

        Returns:
            The 64-byte Ed25519 signature, verified with :attr:`public`.

        Raises:
            SignerError: The signer failed, or answered with bytes that are not a valid
                signature over ``data`` by :attr:`public` (another key's signature, or
                garbage).
        """
        if self._key is not None:
            return self._key.sign(data)
        if self._remote is None:  # pragma: no cover - both None only if built wrongly
            raise RuntimeError("SigningKey has neither a key nor a signer")
        signature = self._remote.sign(data)
        # A signer is outside this process: an HSM with the wrong object selected, a
        # Vault key rotated underneath, a program that prints junk. Nothing unverified
        # may end up in a signed file, where it would only fail later, on every client.
        if not isinstance(signature, bytes) or len(signature) != _SIGNATURE_LEN:
            got = len(signature) if isinstance(signature, bytes) else type(signature).__name__
            raise SignerError(
                f"signer {self._remote!r}: expected a {_SIGNATURE_LEN}-byte Ed25519 "
                f"signature, got {got}" + (" bytes" if isinstance(signature, bytes) else "")
            )
        if not self._public.verify(signature, data):
            raise SignerError(
                f"signer {self._remote!r}: expected a signature by key {self.keyid}, got one "
                "that does not verify with it (another key's signature, or garbage); "
                "it was not used",
                hint="check that the reference names the key whose public half the signer "
                "reports (token object, Vault key name and version, program arguments)",
            )
        return signature
