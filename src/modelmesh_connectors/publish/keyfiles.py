"""Reading and writing key files: the thin file I/O around :mod:`keys`.

Private keys are written with mode 0600 by an exclusive create, so a key never exists,
even for a moment, with wider permissions, and an existing key (or a symlink planted
where the key should go) is never overwritten. A private key file that group or others
may access is refused when read, as ssh does. Passphrases come from an environment
variable or an interactive prompt, never from a command-line argument, where they would
leak into shell history and ``ps`` output.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_PASSPHRASE_ENV",
    "KeyFileError",
    "read_public_key",
    "read_signing_key",
    "write_public_key",
    "write_signing_key",
]

import contextlib
import getpass
import os
import stat
import sys
from pathlib import Path

from modelmesh_connectors.index.keys import (
    InvalidKeyError,
    PublicKey,
    SigningKey,
    is_encrypted_pem,
)

# The name of an environment variable, not a secret.
DEFAULT_PASSPHRASE_ENV = "MODELMESH_KEY_PASSPHRASE"  # noqa: S105
_MAX_KEY_FILE_BYTES = 64 * 1024  # key files are < 1 KiB; a larger file is not a key
_PRIVATE_MODE_MASK = 0o077  # any group or other permission bit on a private key file


class KeyFileError(InvalidKeyError):
    """A key file cannot be read or written (missing, exists already, too large)."""

    code = "input.key.file"


def _exclusive_write(path: Path, data: bytes, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        # O_EXCL: refuse to overwrite a key or follow a planted symlink;
        # the mode is applied at creation, before any secret byte is written.
        fd = os.open(path, flags, mode)
    except FileExistsError as e:
        raise KeyFileError(
            f"key file {path}: expected a new path, but the file exists (refusing to overwrite)"
        ) from e
    except OSError as e:
        raise KeyFileError(f"key file {path} cannot be created: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        with contextlib.suppress(OSError):
            path.unlink()
        raise KeyFileError(f"key file {path} cannot be written: {e.strerror or e}") from e


def _check_private_mode(path: Path, mode: int) -> None:
    """Refuse a private key file that group or others may access (as ssh does).

    A key another local user can read is a key that user holds: signing with it silently
    would keep using a key that may already be copied. POSIX only (Windows has no modes).
    """
    if os.name != "posix" or not stat.S_IMODE(mode) & _PRIVATE_MODE_MASK:
        return
    raise KeyFileError(
        f"key file {path}: expected permissions 0600 (owner only), got "
        f"{stat.S_IMODE(mode):04o}: a private key that group or others can access is "
        "refused",
        hint=f"run 'chmod 600 {path}' (and consider the key exposed if others could read it)",
    )


def _read(path: Path, *, private: bool = False) -> bytes:
    try:
        with path.open("rb") as f:
            if private:
                # fstat on the open file: the file checked is the file read (no swap between).
                _check_private_mode(path, os.fstat(f.fileno()).st_mode)
            data = f.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as e:
        raise KeyFileError(f"key file {path} cannot be read: {e.strerror or e}") from e
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise KeyFileError(
            f"key file {path}: expected at most {_MAX_KEY_FILE_BYTES} bytes, got more"
        )
    return data


def write_signing_key(
    path: str | os.PathLike[str], key: SigningKey, passphrase: bytes | None
) -> None:
    """Write a private key as PKCS#8 PEM to a new file with mode 0600.

    Args:
        path: Where to create the file; it must not exist.
        key: The key to write.
        passphrase: Encrypt the PEM with this passphrase; None writes it unencrypted.

    Raises:
        KeyFileError: The file exists or cannot be created or written.
        InvalidKeyError: ``passphrase`` is empty.
    """
    _exclusive_write(Path(path), key.to_pem(passphrase), 0o600)


def write_public_key(path: str | os.PathLike[str], key: PublicKey) -> None:
    """Write a public key as SubjectPublicKeyInfo PEM to a new file (mode 0644).

    Args:
        path: Where to create the file; it must not exist.
        key: The public key.

    Raises:
        KeyFileError: The file exists or cannot be created or written.
    """
    _exclusive_write(Path(path), key.to_pem(), 0o644)


def read_signing_key(
    path: str | os.PathLike[str],
    passphrase_env: str | None = DEFAULT_PASSPHRASE_ENV,
    prompt: bool = True,
) -> SigningKey:
    """Load a private key file, asking for its passphrase only if it is encrypted.

    The passphrase comes from the environment variable ``passphrase_env`` (when set and
    non-empty), else from an interactive prompt when ``prompt`` is true and standard input
    is a terminal. It is never taken as an argument.

    Args:
        path: The PEM file.
        passphrase_env: Environment variable holding the passphrase; None to never read one.
        prompt: Whether to prompt on a terminal when no passphrase is in the environment.

    Returns:
        The signing key.

    Raises:
        KeyFileError: The file cannot be read, or (POSIX) group or others have any
            permission on it (hint: ``chmod 600``).
        InvalidKeyError: The file is not an Ed25519 PKCS#8 key, the passphrase is wrong, or
            the key is encrypted and no passphrase is available.
    """
    p = Path(path)
    data = _read(p, private=True)
    passphrase: bytes | None = None
    if is_encrypted_pem(data):
        text = os.environ.get(passphrase_env) if passphrase_env else None
        if not text and prompt and sys.stdin is not None and sys.stdin.isatty():
            text = getpass.getpass(f"Passphrase for {p}: ")
        if not text:
            source = f"${passphrase_env}" if passphrase_env else "no environment variable"
            raise InvalidKeyError(
                f"key file {p} is encrypted, but no passphrase was found ({source}, no terminal)",
                hint=f"set {passphrase_env or DEFAULT_PASSPHRASE_ENV} or run in a terminal",
            )
        passphrase = text.encode("utf-8")
    try:
        return SigningKey.from_pem(data, passphrase)
    except InvalidKeyError as e:
        raise InvalidKeyError(f"key file {p}: {e.message}", hint=e.hint) from e


def read_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """Load a SubjectPublicKeyInfo PEM public key file.

    Args:
        path: The PEM file.

    Returns:
        The public key.

    Raises:
        KeyFileError: The file cannot be read.
        InvalidKeyError: The file is not an Ed25519 public key.
    """
    p = Path(path)
    data = _read(p)
    try:
        return PublicKey.from_pem(data)
    except InvalidKeyError as e:
        raise InvalidKeyError(f"key file {p}: {e.message}") from e
