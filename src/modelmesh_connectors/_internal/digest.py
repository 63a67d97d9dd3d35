"""The one digest check: hash while streaming, compare once, one message format.

Every place that checks bytes against a pinned sha256 and length (the archive cache, the
metadata store, the trust core's pins, the loader's ``#sha256=`` pins, local signed zips)
goes through :class:`Hasher` or :func:`check_bytes`, so a mismatch always reads::

    sha256 mismatch for <what>: expected <hex>, got <hex>
    length mismatch for <what>: expected <n> bytes, got <m>

(pip's ``utils/hashes.py`` habit: one checker, thin adapters, expected vs got.) Pure: no I/O,
no clock, so the trust core may use it too.
"""

from __future__ import annotations

import hashlib
import hmac

from modelmesh_connectors.errors import HashMismatchError, LengthMismatchError

__all__ = [
    "Hasher",
    "check_bytes",
    "check_digest",
    "check_length",
    "length_problem",
    "sha256_hex",
]


def sha256_hex(data: bytes) -> str:
    """The lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def length_problem(expected: int, got: int | str) -> str:
    """``expected <n> bytes, got <m>`` — the shared wording, for logs of a miss."""
    return f"expected {expected} bytes, got {got}"


def check_length(what: str, expected: int, got: int | str, *, hint: str | None = None) -> None:
    """Raise unless ``got`` equals ``expected``.

    Args:
        what: Names the file in the message (``acme-audit 1.2.0``, ``timestamp.json``).
        expected: The pinned length in bytes.
        got: The measured length, or a description such as ``"more than 10"``.
        hint: Added to the error when the user can act.

    Raises:
        LengthMismatchError: ``length mismatch for <what>: expected <n> bytes, got <m>``.
    """
    if got != expected:
        raise LengthMismatchError(
            f"length mismatch for {what}: {length_problem(expected, got)}", hint=hint
        )


def check_digest(what: str, expected: str, got: str, *, hint: str | None = None) -> None:
    """Raise unless the hex digests are equal (case-insensitive, constant time).

    Raises:
        HashMismatchError: ``sha256 mismatch for <what>: expected <hex>, got <hex>``.
    """
    if not hmac.compare_digest(got.lower(), expected.lower()):
        raise HashMismatchError(
            f"sha256 mismatch for {what}: expected {expected}, got {got}", hint=hint
        )


def check_bytes(
    data: bytes, *, sha256: str, length: int | None, what: str, hint: str | None = None
) -> None:
    """Check bytes against a pinned length (first: cheap) and sha256.

    Args:
        data: The received bytes.
        sha256: The pinned lowercase hex sha256.
        length: The pinned length in bytes, or ``None`` when only the hash is pinned.
        what: Names the file in the message.
        hint: Added to the error when the user can act.

    Raises:
        LengthMismatchError: The size differs.
        HashMismatchError: The SHA-256 differs.
    """
    if length is not None:
        check_length(what, length, len(data), hint=hint)
    check_digest(what, sha256, sha256_hex(data), hint=hint)


class Hasher:
    """Hashes and counts a stream chunk by chunk; refuses to pass the pinned length.

    Args:
        sha256: The pinned lowercase hex sha256.
        length: The pinned length in bytes.
        what: Names the stream in messages.
    """

    def __init__(self, *, sha256: str, length: int, what: str) -> None:
        self.sha256 = sha256
        self.length = length
        self.what = what
        self._hash = hashlib.sha256()
        self.count = 0

    def update(self, data: bytes) -> None:
        """Add the next chunk.

        Raises:
            LengthMismatchError: The stream went past the pinned length (stops an endless
                or oversized download before it fills the disk); the chunk is not counted.
        """
        if self.count + len(data) > self.length:
            raise LengthMismatchError(
                f"length mismatch for {self.what}: expected {self.length} bytes, got more "
                f"({self.count + len(data)} so far); aborted"
            )
        self._hash.update(data)
        self.count += len(data)

    def reset(self) -> None:
        """Start over from byte 0 (a retried download)."""
        self._hash = hashlib.sha256()
        self.count = 0

    def hexdigest(self) -> str:
        """The hex sha256 of what was added so far."""
        return self._hash.hexdigest()

    def check(self, *, hint: str | None = None) -> None:
        """Raise unless exactly the pinned bytes were added.

        Raises:
            LengthMismatchError: Fewer bytes than pinned.
            HashMismatchError: The SHA-256 differs.
        """
        check_length(self.what, self.length, self.count, hint=hint)
        check_digest(self.what, self.sha256, self.hexdigest(), hint=hint)
