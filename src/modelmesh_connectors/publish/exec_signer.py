"""``exec:`` key references: an external program signs (a cloud KMS CLI, a custom HSM tool).

Reference: ``exec:PROGRAM [ARG…]``. The text after ``exec:`` is split into a list of
arguments by POSIX shell *quoting* rules (``shlex.split``), but no shell ever runs: no
expansion, no pipes, no redirection. ``PROGRAM`` is an absolute path or a name found on
``$PATH`` (resolved once, when the reference is opened).

**The contract** (docs/PUBLISHING.md repeats it for program authors). The program is run
with one more argument, the operation, appended to ``ARG…``:

``PROGRAM ARG… public-key``
    Standard input is empty. Print the Ed25519 public key as 64 lowercase hex characters
    (the raw 32 bytes), or as a SubjectPublicKeyInfo PEM block. Exit 0.
``PROGRAM ARG… sign``
    Standard input carries the exact bytes to sign, up to end of file. Print exactly one
    signature: the raw 64-byte Ed25519 signature in standard padded base64, optionally
    followed by one newline, and nothing else. Exit 0.

Any other exit status is a failure (the first 2 KiB of standard error are shown, nothing of
standard output). A program that does not finish within the timeout (30 s) is killed with
its whole process group; standard output is capped at 4 KiB and standard error at 64 KiB (a
program that writes more is killed). The environment is inherited, so the program can find
its own credentials. Whatever it prints is verified: a signature that does not verify under
the declared public key is refused by :meth:`SigningKey.from_signer`.
"""

from __future__ import annotations

__all__ = [
    "EXEC_TIMEOUT",
    "ExecSigner",
    "open_exec",
]

import base64
import binascii
import contextlib
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence

from modelmesh_connectors._internal.redact import redact_text
from modelmesh_connectors.errors import SignerError
from modelmesh_connectors.index.keys import InvalidKeyError, PublicKey

EXEC_TIMEOUT = 30.0  # seconds a signing program may take per operation
_MAX_STDOUT = 4 * 1024  # bytes: a signature in base64 is 88 characters, a PEM key ~113
_MAX_STDERR = 64 * 1024  # bytes of diagnostics kept (the first 2 KiB are shown)
_SHOWN_STDERR = 2 * 1024  # bytes of standard error put into an error message
_HEX_RE = re.compile(rb"[0-9a-f]{64}\n?")
_B64_SIG_RE = re.compile(rb"[A-Za-z0-9+/]{86}==\n?")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The program was started in a session of its own: its group holds only what it spawned.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _run(argv: Sequence[str], stdin: bytes, timeout: float, what: str) -> bytes:
    """Run ``argv`` without a shell; return its standard output (bounded, within ``timeout``)."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            start_new_session=True,
        )
    except OSError as e:
        raise SignerError(f"{what}: cannot start {argv[0]}: {e.strerror or e}") from e
    if proc.stdin is None or proc.stdout is None or proc.stderr is None:  # pragma: no cover
        raise RuntimeError("Popen without pipes")

    def feed() -> None:
        # A thread: the payload may be larger than the pipe buffer while the program
        # already writes; BrokenPipe means it stopped reading (its exit status tells).
        with contextlib.suppress(OSError):
            proc.stdin.write(stdin)  # type: ignore[union-attr]
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    out, err = bytearray(), bytearray()
    limits = {proc.stdout.fileno(): (out, _MAX_STDOUT), proc.stderr.fileno(): (err, _MAX_STDERR)}
    deadline = time.monotonic() + timeout
    problem = None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        while sel.get_map() and problem is None:
            left = deadline - time.monotonic()
            if left <= 0:
                problem = f"did not finish within {timeout:g} s (killed)"
                break
            for sk, _ in sel.select(left):
                chunk = os.read(sk.fd, 65536)
                if not chunk:
                    sel.unregister(sk.fileobj)
                    continue
                buf, cap = limits[sk.fd]
                buf += chunk
                if len(buf) > cap:
                    name = "standard output" if sk.fd == proc.stdout.fileno() else "standard error"
                    problem = f"wrote more than {cap} bytes to {name} (killed)"
                    break
    if problem is None:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            problem = f"did not exit within {timeout:g} s (killed)"
    if problem is not None:
        _kill_group(proc)
        proc.wait()
    writer.join(1.0)
    for stream in (proc.stdout, proc.stderr):
        stream.close()
    if problem is not None:
        raise SignerError(f"{what}: {problem}")
    if proc.returncode != 0:
        shown = redact_text(bytes(err[:_SHOWN_STDERR]).decode("utf-8", "replace")).strip()
        raise SignerError(
            f"{what}: exited with status {proc.returncode}"
            + (f"; standard error: {shown}" if shown else "")
        )
    return bytes(out)


class ExecSigner:
    """A key held by an external program; see the module docstring for the contract."""

    def __init__(self, argv: Sequence[str], *, timeout: float = EXEC_TIMEOUT) -> None:
        """Ask the program for its public key.

        Args:
            argv: The program (resolved path) and its arguments, without the operation.
            timeout: Seconds allowed per operation.

        Raises:
            SignerError: The program fails, or prints no valid Ed25519 public key.
        """
        self._argv = tuple(argv)
        self._timeout = timeout
        out = _run([*self._argv, "public-key"], b"", timeout, f"{self!r} public-key")
        try:
            if _HEX_RE.fullmatch(out):
                self._public = PublicKey.from_hex(out.strip().decode("ascii"))
            elif out.lstrip().startswith(b"-----BEGIN PUBLIC KEY-----"):
                self._public = PublicKey.from_pem(out)
            else:
                raise SignerError(
                    f"{self!r} public-key: expected 64 lowercase hex characters or a PEM "
                    f"public key, got {out[:80]!r}"
                )
        except InvalidKeyError as e:
            raise SignerError(f"{self!r} public-key: {e.message}") from e

    def __repr__(self) -> str:
        return "exec:" + shlex.join(self._argv)

    @property
    def public(self) -> PublicKey:
        """The public key the program declared."""
        return self._public

    @property
    def keyid(self) -> str:
        """Key ID of :attr:`public`."""
        return self._public.keyid

    def sign(self, data: bytes) -> bytes:
        """Run ``PROGRAM ARG… sign`` with ``data`` on standard input.

        Raises:
            SignerError: The program fails or prints anything but one base64 signature.
        """
        out = _run([*self._argv, "sign"], data, self._timeout, f"{self!r} sign")
        if not _B64_SIG_RE.fullmatch(out):
            raise SignerError(
                f"{self!r} sign: expected one base64 Ed25519 signature (88 characters), got "
                f"{len(out)} bytes of something else"
            )
        try:
            return base64.b64decode(out.strip(), validate=True)
        except (binascii.Error, ValueError) as e:  # pragma: no cover - the regex admits base64 only
            raise SignerError(f"{self!r} sign: not base64: {e}") from e


def open_exec(command: str, *, timeout: float = EXEC_TIMEOUT) -> ExecSigner:
    """Open an ``exec:`` reference (the text after ``exec:``).

    Args:
        command: ``PROGRAM [ARG…]`` split by POSIX quoting rules (no shell runs).
        timeout: Seconds allowed per operation.

    Returns:
        The signer.

    Raises:
        SignerError: Bad quoting, the program is not found, or see :class:`ExecSigner`.
    """
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise SignerError(f"key reference 'exec:{command:.80}': {e}") from e
    if not argv:
        raise SignerError("key reference 'exec:': expected a program after 'exec:'")
    program = argv[0]
    resolved = program if os.path.isabs(program) else shutil.which(program)
    if not resolved or not os.path.isfile(resolved) or not os.access(resolved, os.X_OK):
        raise SignerError(
            f"key reference 'exec:{command:.80}': {program!r} is not an executable file"
            + ("" if os.path.isabs(program) else " on $PATH")
        )
    return ExecSigner([resolved, *argv[1:]], timeout=timeout)
