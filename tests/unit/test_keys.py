"""Keys and key files: IDs, strict parsing, PEM round trips, file permissions."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelmesh_connectors.errors import InvalidInput
from modelmesh_connectors.index.keys import (
    InvalidKeyError,
    PublicKey,
    SigningKey,
    is_encrypted_pem,
    small_order_problem,
)
from modelmesh_connectors.publish.keyfiles import (
    KeyFileError,
    read_public_key,
    read_signing_key,
    write_public_key,
    write_signing_key,
)

# -- keys ----------------------------------------------------------------------


def test_keyid_is_sha256_of_raw_public_key() -> None:
    key = SigningKey.generate()
    assert key.keyid == hashlib.sha256(key.public.raw).hexdigest()
    assert key.public.keyid == key.keyid
    assert key.public.public_hex == key.public.raw.hex()
    assert len(key.public.raw) == 32


def test_sign_and_verify() -> None:
    key = SigningKey.generate()
    sig = key.sign(b"data")
    assert len(sig) == 64
    assert key.public.verify(sig, b"data")
    assert not key.public.verify(sig, b"other")
    assert not SigningKey.generate().public.verify(sig, b"data")


@pytest.mark.parametrize("bad", [b"", b"\x00" * 63, b"\x00" * 65, b"\xff" * 64])
def test_verify_never_raises_for_bad_signature(bad: bytes) -> None:
    assert SigningKey.generate().public.verify(bad, b"data") is False


def test_from_hex_round_trip() -> None:
    pub = SigningKey.generate().public
    assert PublicKey.from_hex(pub.public_hex) == pub


@pytest.mark.parametrize(
    "text",
    ["", "00" * 31, "00" * 33, "zz" * 32, " " + "00" * 32],
)
def test_from_hex_rejects_malformed(text: str) -> None:
    with pytest.raises(InvalidKeyError, match="64 lowercase hex"):
        PublicKey.from_hex(text)


def test_from_hex_rejects_upper_case() -> None:
    # One spelling per key: otherwise one key could appear twice in a root.
    pub = SigningKey.generate().public
    with pytest.raises(InvalidKeyError):
        PublicKey.from_hex(pub.public_hex.upper())


def test_public_key_rejects_wrong_length() -> None:
    with pytest.raises(InvalidKeyError, match="expected 32 raw bytes, got 31"):
        PublicKey(b"\x00" * 31)
    assert issubclass(InvalidKeyError, InvalidInput)
    assert issubclass(InvalidKeyError, ValueError)


def test_public_pem_round_trip() -> None:
    pub = SigningKey.generate().public
    assert PublicKey.from_pem(pub.to_pem()) == pub


def test_public_pem_rejects_other_key_type() -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidKeyError, match="expected an Ed25519 key"):
        PublicKey.from_pem(pem)


def test_public_pem_rejects_garbage() -> None:
    with pytest.raises(InvalidKeyError, match="cannot be parsed") as info:
        PublicKey.from_pem(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    assert info.value.__cause__ is not None


def test_private_pem_round_trip_plain() -> None:
    key = SigningKey.generate()
    pem = key.to_pem(None)
    assert not is_encrypted_pem(pem)
    assert SigningKey.from_pem(pem, None).keyid == key.keyid


def test_private_pem_round_trip_encrypted() -> None:
    key = SigningKey.generate()
    pem = key.to_pem(b"correct horse")
    assert is_encrypted_pem(pem)
    assert (b"PRIVATE" + b" KEY-----") in pem
    assert SigningKey.from_pem(pem, b"correct horse").keyid == key.keyid


def test_private_pem_wrong_passphrase() -> None:
    pem = SigningKey.generate().to_pem(b"right")
    with pytest.raises(InvalidKeyError, match="wrong passphrase"):
        SigningKey.from_pem(pem, b"wrong")


def test_private_pem_missing_passphrase() -> None:
    pem = SigningKey.generate().to_pem(b"right")
    with pytest.raises(InvalidKeyError, match="encrypted but no passphrase") as info:
        SigningKey.from_pem(pem, None)
    assert info.value.hint is not None


def test_private_pem_passphrase_for_plain_key() -> None:
    pem = SigningKey.generate().to_pem(None)
    with pytest.raises(InvalidKeyError, match="not encrypted"):
        SigningKey.from_pem(pem, b"pass")


def test_private_pem_other_key_type() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidKeyError, match="expected an Ed25519 key"):
        SigningKey.from_pem(pem, None)


def test_private_pem_garbage() -> None:
    with pytest.raises(InvalidKeyError, match="malformed key"):
        SigningKey.from_pem(b"-----BEGIN PRIVATE" + b" KEY-----\nAAAA\n-----END PRIVATE" + b" KEY-----\n", None)


def test_empty_passphrase_refused() -> None:
    with pytest.raises(InvalidKeyError, match="non-empty"):
        SigningKey.generate().to_pem(b"")


def test_repr_does_not_leak_private_key() -> None:
    key = SigningKey.generate()
    pem = key.to_pem(None)
    assert key.keyid[:16] in repr(key)
    body = b"".join(pem.splitlines()[1:-1]).decode()
    assert body not in repr(key)


# -- key files -------------------------------------------------------------------


def test_write_signing_key_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    key = SigningKey.generate()
    write_signing_key(path, key, None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_signing_key(path, passphrase_env=None, prompt=False).keyid == key.keyid


def test_write_signing_key_refuses_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"precious")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_signing_key(path, SigningKey.generate(), None)
    assert path.read_bytes() == b"precious"


def test_write_signing_key_refuses_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "k.pem"
    link.symlink_to(target)
    with pytest.raises(KeyFileError):
        write_signing_key(link, SigningKey.generate(), None)
    assert not target.exists()


def test_write_public_key_and_read(tmp_path: Path) -> None:
    pub = SigningKey.generate().public
    write_public_key(tmp_path / "k.pub.pem", pub)
    assert read_public_key(tmp_path / "k.pub.pem") == pub


def test_read_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot be read"):
        read_public_key(tmp_path / "missing.pem")


def test_read_public_key_from_private_file_fails(tmp_path: Path) -> None:
    write_signing_key(tmp_path / "k.pem", SigningKey.generate(), None)
    with pytest.raises(InvalidKeyError, match=r"k\.pem"):
        read_public_key(tmp_path / "k.pem")


def test_read_encrypted_key_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey.generate()
    write_signing_key(tmp_path / "k.pem", key, b"s3cret")
    monkeypatch.setenv("MY_PASS", "s3cret")
    assert read_signing_key(tmp_path / "k.pem", passphrase_env="MY_PASS").keyid == key.keyid


def test_read_encrypted_key_without_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_signing_key(tmp_path / "k.pem", SigningKey.generate(), b"s3cret")
    monkeypatch.delenv("MODELMESH_KEY_PASSPHRASE", raising=False)
    with pytest.raises(InvalidKeyError, match="no passphrase was found") as info:
        read_signing_key(tmp_path / "k.pem", prompt=False)
    assert "MODELMESH_KEY_PASSPHRASE" in (info.value.hint or "")


def test_read_encrypted_key_wrong_env_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_signing_key(tmp_path / "k.pem", SigningKey.generate(), b"s3cret")
    monkeypatch.setenv("MODELMESH_KEY_PASSPHRASE", "nope")
    with pytest.raises(InvalidKeyError, match="wrong passphrase"):
        read_signing_key(tmp_path / "k.pem")


def test_read_encrypted_key_prompts_on_tty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey.generate()
    write_signing_key(tmp_path / "k.pem", key, b"typed")
    monkeypatch.delenv("MODELMESH_KEY_PASSPHRASE", raising=False)
    prompts: list[str] = []

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return "typed"

    monkeypatch.setattr("modelmesh_connectors.publish.keyfiles.getpass.getpass", getpass)
    assert read_signing_key(tmp_path / "k.pem").keyid == key.keyid
    assert len(prompts) == 1
    assert "k.pem" in prompts[0]


def test_read_plain_key_never_prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_signing_key(tmp_path / "k.pem", SigningKey.generate(), None)
    monkeypatch.setenv("MODELMESH_KEY_PASSPHRASE", "ignored")

    def no_prompt(prompt: str) -> str:
        raise AssertionError("must not prompt for a plain key")

    monkeypatch.setattr("modelmesh_connectors.publish.keyfiles.getpass.getpass", no_prompt)
    read_signing_key(tmp_path / "k.pem")


def test_oversized_key_file(tmp_path: Path) -> None:
    path = tmp_path / "big.pem"
    path.write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(KeyFileError, match="at most"):
        read_public_key(path)


def test_umask_cannot_widen_mode(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_signing_key(tmp_path / "k.pem", SigningKey.generate(), None)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600


# -- small-order keys (FORMAT.md §2) ---------------------------------------------

# The 8 points of small order, canonical encodings (identity, order 2, two of order 4 —
# y = 0 with either sign bit — and four of order 8), then non-canonical ones (y ≥ p).
SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1: identity
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p: order 4
    "0100000000000000000000000000000000000000000000000000000000000080",  # x = 0, sign 1
]


@pytest.mark.parametrize("hex_key", SMALL_ORDER)
def test_small_order_keys_are_refused(hex_key: str) -> None:
    assert small_order_problem(bytes.fromhex(hex_key)) is not None
    with pytest.raises(InvalidKeyError, match="small order") as info:
        PublicKey.from_hex(hex_key)
    assert info.value.code == "input.key"


def test_an_encoding_off_the_curve_is_refused() -> None:
    # y = 2 has no x on edwards25519.
    off = (2).to_bytes(32, "little")
    with pytest.raises(InvalidKeyError, match="not a point on the curve"):
        PublicKey(off)


def test_generated_keys_are_never_refused() -> None:
    for _ in range(50):
        raw = SigningKey.generate().public.raw
        assert small_order_problem(raw) is None
