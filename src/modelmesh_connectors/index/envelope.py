"""DSSE v1 signed envelopes and the strict JSON wire encoding (FORMAT.md §2).

Every signed index file is an envelope ``{"payloadType", "payload", "signatures"}``. The
signature covers ``PAE(payloadType, payload)`` over the *exact* payload bytes, so there
is no canonicalisation step for an attacker to exploit, and the payload type is bound
into the signature, so a validly signed file of one kind is never accepted as another.

This module also owns the JSON codec every index file uses: parsing rejects duplicate
keys, floats, NaN, non-UTF-8 and over-deep nesting (parser-differential tricks), and
serialising is deterministic (compact, sorted keys, ASCII).
"""

from __future__ import annotations

__all__ = [
    "INDEX_TYPE",
    "MAX_ENVELOPE_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INTEGER",
    "MAX_SIGNATURES",
    "PAYLOAD_TYPES",
    "RELEASE_TYPE",
    "ROOT_TYPE",
    "TIMESTAMP_TYPE",
    "Envelope",
    "JSONFormatError",
    "Signature",
    "canonical_json",
    "pae",
    "parse_envelope",
    "sign",
    "strict_json",
    "verify_threshold",
]

import base64
import binascii
import json
import json.decoder
import json.scanner
import re
from collections.abc import Iterable, Mapping
from itertools import accumulate
from typing import Any

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.errors import InvalidInput, SignatureError
from modelmesh_connectors.index.keys import PublicKey, SigningKey

ROOT_TYPE = "application/vnd.modelmesh.root+json"
TIMESTAMP_TYPE = "application/vnd.modelmesh.timestamp+json"
INDEX_TYPE = "application/vnd.modelmesh.index+json"
RELEASE_TYPE = "application/vnd.modelmesh.release+json"
PAYLOAD_TYPES = frozenset({ROOT_TYPE, TIMESTAMP_TYPE, INDEX_TYPE, RELEASE_TYPE})

MAX_ENVELOPE_BYTES = 1024 * 1024  # bytes; the largest envelope (an index top) is ~40 KiB
MAX_SIGNATURES = 256  # entries; bounds the verification work an attacker can demand
MAX_JSON_INTEGER = 2**53 - 1  # the largest integer every JSON reader (JavaScript's too) keeps exact
MAX_JSON_DEPTH = 512  # nested arrays/objects; the index format needs 6
_MAX_PAYLOAD_TYPE_LEN = 128  # characters
_SIGNATURE_LEN = 64  # bytes of an Ed25519 signature
_KEYID_RE = re.compile(r"[0-9a-f]{64}")
_ENVELOPE_KEYS = frozenset({"payloadType", "payload", "signatures"})
_SIGNATURE_KEYS = frozenset({"keyid", "sig"})


class JSONFormatError(InvalidInput):
    """Bytes are not strict JSON (bad UTF-8, duplicate key, float, NaN, too deep)."""

    code = "input.json"


class _DuplicateKey(ValueError):
    """A JSON object repeats a key (found on the fast path, located afterwards)."""


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    # Two parsers may keep different copies of a duplicated key, and a reader of the file
    # sees the first while json keeps the last: refuse both. A dict built from the pairs
    # is shorter than the pairs exactly when a key repeats (compared in C, no Python loop).
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(f"duplicate key {key!r}")
            seen.add(key)
    return obj


def _key_start(text: str, colon: int) -> int:
    """Offset of the opening quote of the key that ends before ``colon``."""
    end = len(text[:colon].rstrip(" \t\r\n")) - 1  # the key's closing quote
    start = text.rfind('"', 0, end)
    while start > 0:
        backslashes = start - len(text[:start].rstrip("\\"))
        if backslashes % 2 == 0:  # not an escaped quote inside the key
            break
        start = text.rfind('"', 0, start)
    return start


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _locate_duplicate(text: str) -> str | None:
    """Name the first duplicated key and both its lines, by parsing ``text`` again.

    Only run after the fast C parser found a duplicate: this pure-Python pass records where
    each value of each object starts, and so where the colon after each key is.
    """

    class _Found(Exception):
        def __init__(self, message: str) -> None:
            self.message = message

    def parse_object(
        s_and_end: tuple[str, int],
        strict: bool,
        scan_once: Any,
        object_hook: Any,
        object_pairs_hook: Any,
        memo: Any,
    ) -> Any:
        starts: list[int] = []  # offset of each value of this object, in order

        def scan_value(s: str, idx: int) -> Any:
            starts.append(idx)
            return scan_once(s, idx)

        def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            s = s_and_end[0]
            first: dict[str, int] = {}
            for (key, _), start in zip(pairs, starts, strict=True):
                # Only whitespace lies between the key, ':' and the value.
                colon = _key_start(s, s.rfind(":", 0, start))
                if key in first:
                    (line, col), (line1, col1) = _line_col(s, colon), _line_col(s, first[key])
                    where = f"; columns {col} and {col1}" if line == line1 else ""
                    raise _Found(
                        f"duplicate key {key!r} at line {line} (first at line {line1}){where}"
                    )
                first[key] = colon
            return dict(pairs)

        # typeshed does not declare the pure-Python parser pieces used here.
        return json.decoder.JSONObject(  # type: ignore[attr-defined]
            s_and_end, strict, scan_value, object_hook, pairs_hook, memo
        )

    decoder = json.JSONDecoder()
    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    try:
        decoder.decode(text)
    except _Found as found:
        return found.message
    except (ValueError, RecursionError):
        return None
    return None


def _bounded_int(text: str) -> int:
    value = int(text)
    # A JavaScript client reads numbers as IEEE doubles: beyond 2^53-1 two integers can
    # be one number there, so both clients refuse them (FORMAT.md §2).
    if abs(value) > MAX_JSON_INTEGER:
        raise ValueError(f"integer beyond ±(2^53-1): {text[:40]}")
    return value


_ESCAPE_PAIR_RE = re.compile(rb"\\.", re.DOTALL)  # a backslash and the byte it escapes
# Every byte but brackets, braces and quotes (no byte of a multi-byte UTF-8 sequence is
# ASCII, so deleting these never splits a structural character).
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _too_deep(data: bytes) -> bool:
    """Whether the containers of valid JSON ``data`` nest deeper than MAX_JSON_DEPTH.

    Every level of nesting opens one ``{`` or ``[`` outside a string. Counting openers (in C,
    strings included, which only over-counts) bounds the depth from above, so a text with at
    most MAX_JSON_DEPTH of them, every metadata file but the largest, needs nothing more.
    Otherwise the depth is the running bracket balance once the strings are cut out, all of
    it C work (byte deletion, split, join, accumulate) rather than a walk of the parsed value.
    """
    skeleton = data.translate(None, _NOT_STRUCTURE)  # only [ ] { } " are left
    if skeleton.count(b"{") + skeleton.count(b"[") <= MAX_JSON_DEPTH:
        return False
    # Without its escape pairs (backslash and the next byte), every quote of valid JSON
    # opens or closes a string: the pieces between them alternate outside, inside.
    if b"\\" in data:
        skeleton = _ESCAPE_PAIR_RE.sub(b"", data).translate(None, _NOT_STRUCTURE)
    outside = b"".join(skeleton.split(b'"')[::2])
    return max(accumulate(map(_BRACKET_STEP.__getitem__, outside)), default=0) > MAX_JSON_DEPTH


def _reject_float(text: str) -> Any:
    raise ValueError(f"floating-point number {text} (the format uses integers only)")


def _reject_constant(text: str) -> Any:
    raise ValueError(f"non-standard constant {text}")


# One decoder for every document: json.loads with hooks builds a new one per call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates,
    parse_float=_reject_float,
    parse_int=_bounded_int,
    parse_constant=_reject_constant,
)


def strict_json(data: bytes) -> Any:
    """Parse strict UTF-8 JSON.

    Args:
        data: The bytes to parse.

    Returns:
        The parsed value (dicts, lists, str, int, bool, None).

    Raises:
        JSONFormatError: Not UTF-8, not JSON, a duplicate object key, a float, NaN or
            Infinity, an integer beyond ±(2^53-1), or nesting deeper than 512.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JSONFormatError(f"expected UTF-8 JSON, got invalid UTF-8: {e}") from e
    try:
        value = _DECODER.decode(text)
    except RecursionError as e:
        raise JSONFormatError("expected JSON, got nesting too deep to parse") from e
    except _DuplicateKey as e:
        located = _locate_duplicate(text) or str(e)
        raise JSONFormatError(f"expected strict JSON, got: {located}") from e
    except ValueError as e:  # includes JSONDecodeError and the int digit limit
        raise JSONFormatError(f"expected strict JSON, got: {e}") from e
    if _too_deep(data):
        raise JSONFormatError(f"expected JSON nested at most {MAX_JSON_DEPTH} deep, got deeper")
    return value


def canonical_json(obj: Any) -> bytes:
    """Serialise deterministically: compact separators, sorted keys, ASCII only.

    Args:
        obj: JSON-compatible value (no floats).

    Returns:
        The UTF-8 (ASCII) bytes.

    Raises:
        TypeError: ``obj`` holds a value JSON cannot represent.
        ValueError: ``obj`` holds NaN or Infinity.
    """
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding.

    Args:
        payload_type: The envelope's payload type.
        payload: The exact payload bytes.

    Returns:
        ``b"DSSEv1 " + len(t) + b" " + t + b" " + len(b) + b" " + b``, lengths in ASCII decimal.
    """
    t = payload_type.encode("utf-8")
    # Lengths make the encoding injective: no (type, payload) pair can be re-split
    # into another pair with the same signed bytes.
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise SignatureError(f"{what}: expected a base64 string, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as e:
        raise SignatureError(
            f"{what}: expected standard padded base64, got invalid data: {e}"
        ) from e
    # One encoding per byte string: non-zero padding bits would let the same
    # signature be spelled in several ways.
    if _b64encode(raw) != text:
        raise SignatureError(f"{what}: expected canonical base64, got a non-canonical encoding")
    return raw


class Signature(Frozen):
    """One signature entry of an envelope.

    Args:
        keyid: Key ID of the signing key (64 lowercase hex).
        sig: The raw 64-byte Ed25519 signature.
    """

    __slots__ = ("keyid", "sig")

    keyid: str
    sig: bytes

    def __init__(self, keyid: str, sig: bytes) -> None:
        object.__setattr__(self, "keyid", keyid)
        object.__setattr__(self, "sig", sig)


class Envelope(Frozen):
    """A parsed DSSE envelope. Its payload is *not* trusted until :func:`verify_threshold`.

    Args:
        payload_type: The ``payloadType`` string.
        payload: The exact payload bytes.
        signatures: Signature entries in file order.
    """

    __slots__ = ("payload", "payload_type", "signatures")

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def __init__(
        self,
        payload_type: str,
        payload: bytes,
        signatures: tuple[Signature, ...] = (),
    ) -> None:
        object.__setattr__(self, "payload_type", payload_type)
        object.__setattr__(self, "payload", payload)
        object.__setattr__(self, "signatures", signatures)

    def pae(self) -> bytes:
        """Return the bytes the signatures cover."""
        return pae(self.payload_type, self.payload)

    def to_json_obj(self) -> dict[str, Any]:
        """Return the envelope as a JSON-compatible dict (as embedded in bin nodes)."""
        return {
            "payloadType": self.payload_type,
            "payload": _b64encode(self.payload),
            "signatures": [{"keyid": s.keyid, "sig": _b64encode(s.sig)} for s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        """Serialise deterministically (see :func:`canonical_json`)."""
        return canonical_json(self.to_json_obj())

    def with_signature(self, key: SigningKey) -> Envelope:
        """Return a copy signed additionally by ``key``.

        An existing signature by the same key is replaced. Signatures are kept sorted by
        key ID so that the serialisation does not depend on signing order.

        Args:
            key: The signing key.

        Returns:
            The new envelope.
        """
        new = Signature(key.keyid, key.sign(self.pae()))
        others = [s for s in self.signatures if s.keyid != key.keyid]
        return Envelope(
            self.payload_type,
            self.payload,
            tuple(sorted([*others, new], key=lambda s: s.keyid)),
        )


def sign(payload_type: str, payload: bytes, keys: Iterable[SigningKey]) -> Envelope:
    """Build an envelope signed by every key in ``keys``.

    Args:
        payload_type: One of the ``*_TYPE`` constants.
        payload: The exact payload bytes.
        keys: Signing keys; a key given twice signs once.

    Returns:
        The signed envelope (signatures sorted by key ID).
    """
    env = Envelope(payload_type, payload, ())
    for key in keys:
        env = env.with_signature(key)
    return env


def parse_envelope(data: bytes | Mapping[str, Any]) -> Envelope:
    """Parse an envelope strictly, without verifying any signature.

    Args:
        data: The file bytes, or an already parsed JSON object (an envelope embedded in a
            bin node).

    Returns:
        The envelope.

    Raises:
        SignatureError: Too large, not strict JSON, keys other than exactly
            ``payloadType``/``payload``/``signatures``, bad base64, a signature that is not
            64 bytes, a key ID that is not 64 lowercase hex, or too many signatures.
    """
    obj: Any
    if isinstance(data, bytes | bytearray):
        if len(data) > MAX_ENVELOPE_BYTES:
            raise SignatureError(
                f"envelope: expected at most {MAX_ENVELOPE_BYTES} bytes, got {len(data)}"
            )
        try:
            obj = strict_json(bytes(data))
        except JSONFormatError as e:
            raise SignatureError(f"envelope: {e.message}") from e
    else:
        obj = data
    if not isinstance(obj, Mapping):
        raise SignatureError(f"envelope: expected a JSON object, got {type(obj).__name__}")
    keys = set(obj)
    if keys != _ENVELOPE_KEYS:
        raise SignatureError(
            f"envelope: expected exactly the keys {sorted(_ENVELOPE_KEYS)}, "
            f"got {sorted(map(str, keys))}"
        )
    payload_type = obj["payloadType"]
    if (
        not isinstance(payload_type, str)
        or not payload_type
        or len(payload_type) > _MAX_PAYLOAD_TYPE_LEN
    ):
        raise SignatureError(
            f"envelope: expected payloadType to be a non-empty string of at most "
            f"{_MAX_PAYLOAD_TYPE_LEN} characters, got {payload_type!r:.80}"
        )
    payload = _b64decode(obj["payload"], "envelope payload")
    raw_sigs = obj["signatures"]
    if not isinstance(raw_sigs, list):
        raise SignatureError(
            f"envelope: expected signatures to be a list, got {type(raw_sigs).__name__}"
        )
    if len(raw_sigs) > MAX_SIGNATURES:
        raise SignatureError(
            f"envelope: expected at most {MAX_SIGNATURES} signatures, got {len(raw_sigs)}"
        )
    sigs: list[Signature] = []
    for i, entry in enumerate(raw_sigs):
        if not isinstance(entry, Mapping) or set(entry) != _SIGNATURE_KEYS:
            got = sorted(map(str, entry)) if isinstance(entry, Mapping) else type(entry).__name__
            raise SignatureError(
                f"envelope signature {i}: expected an object with keys ['keyid', 'sig'], got {got}"
            )
        keyid = entry["keyid"]
        if not isinstance(keyid, str) or not _KEYID_RE.fullmatch(keyid):
            raise SignatureError(
                f"envelope signature {i}: expected keyid of 64 lowercase hex, got {keyid!r:.80}"
            )
        sig = _b64decode(entry["sig"], f"envelope signature {i}")
        if len(sig) != _SIGNATURE_LEN:
            raise SignatureError(
                f"envelope signature {i}: expected a {_SIGNATURE_LEN}-byte Ed25519 signature, "
                f"got {len(sig)} bytes"
            )
        sigs.append(Signature(keyid, sig))
    return Envelope(payload_type, payload, tuple(sigs))


def verify_threshold(
    envelope: Envelope,
    *,
    expected_type: str,
    keys: Mapping[str, PublicKey],
    keyids: Iterable[str],
    threshold: int,
    what: str,
    role: str | None = None,
    roles: Mapping[str, Iterable[str]] | None = None,
    listed_by: str = "the root",
) -> frozenset[str]:
    """Check that a threshold of distinct trusted keys signed the envelope.

    The payload type is checked first, before any signature work. Duplicate signatures by
    one key count once; signatures by keys outside ``keyids`` and invalid signatures are
    ignored (they do not fail the file on their own).

    Args:
        envelope: The parsed envelope.
        expected_type: The only acceptable ``payloadType``.
        keys: Public keys by key ID (e.g. ``root.keys``).
        keyids: The key IDs of the role whose signatures count.
        threshold: How many distinct valid signatures are needed (at least 1).
        what: Names the file in error messages, e.g. ``"timestamp.json"``.
        role: Names the role whose keys count (``"the timestamp role"``), for the message.
        roles: Every role and publisher of the root by name (``"the index role"``,
            ``"publisher acme"``) with its key IDs: the message says which of them lists
            each key that signed, so a file signed with the wrong role's key says so.
        listed_by: Names the root in the message (``"root v1"``).

    Returns:
        The key IDs with a valid signature (at least ``threshold`` of them).

    Raises:
        SignatureError: Wrong payload type, or fewer than ``threshold`` valid signatures.
        ValueError: ``threshold`` is less than 1 (a zero threshold would accept anything).
    """
    if threshold < 1:
        raise ValueError(f"{what}: threshold must be at least 1, got {threshold}")
    # Type first: a validly signed file of another kind (a timestamp offered as root)
    # must never reach signature counting or parsing.
    if envelope.payload_type != expected_type:
        raise SignatureError(
            f"{what}: expected payload type {expected_type!r}, got {envelope.payload_type!r}"
        )
    trusted = frozenset(keyids)
    signed = envelope.pae()
    valid: set[str] = set()
    for entry in envelope.signatures:
        if entry.keyid in valid or entry.keyid not in trusted:
            continue
        key = keys.get(entry.keyid)
        # The ID must be the key's own hash, so a key stored under two IDs counts once.
        if key is None or key.keyid != entry.keyid:
            continue
        if key.verify(entry.sig, signed):
            valid.add(entry.keyid)
    if len(valid) < threshold:
        raise SignatureError(
            f"{what}: expected signatures by at least {threshold} distinct trusted key(s), "
            f"got {len(valid)} valid"
            + _who_signed(envelope, trusted, valid, role, roles or {}, listed_by)
        )
    return frozenset(valid)


def _short(keyid: str) -> str:
    return keyid[:8] + "…"


def _who_signed(
    envelope: Envelope,
    trusted: frozenset[str],
    valid: set[str],
    role: str | None,
    roles: Mapping[str, Iterable[str]],
    listed_by: str,
) -> str:
    """``; signed by 5ca5…, which root v1 lists for the index role; the timestamp role's
    keys are 9f01…`` — which keys signed, where the root lists them, and which keys count."""
    seen: list[str] = []
    parts: list[str] = []
    for entry in envelope.signatures:
        if entry.keyid in seen or entry.keyid in valid:
            continue
        seen.append(entry.keyid)
        if entry.keyid in trusted:
            parts.append(f"{_short(entry.keyid)} (a key of this role, but it does not verify)")
            continue
        listed = [name for name, ids in roles.items() if entry.keyid in set(ids)]
        if listed:
            parts.append(
                f"{_short(entry.keyid)}, which {listed_by} lists for {' and '.join(listed)}"
            )
        else:
            parts.append(f"{_short(entry.keyid)}, which {listed_by} does not list")
    signed = "; signed by " + "; ".join(parts) if parts else "; it carries no other signature"
    wanted = ", ".join(_short(k) for k in sorted(trusted)) or "none"
    whose = f"{role}'s keys" if role else "the keys that count"
    return f"{signed}; {whose} are {wanted}"
