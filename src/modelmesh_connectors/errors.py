"""The one error tree of modelmesh-connectors.

Every failure the public API reports is a subclass of :class:`ConnectorError`,
split by where the failure comes from::

    ConnectorError                      base; carries ``message`` and an optional ``hint``
    ├── TrustError                      remote or local signed data is not trustworthy
    │   ├── SignatureError              threshold of valid signatures not met, wrong type
    │   ├── ExpiredError                signed metadata is past its expiry
    │   ├── RollbackError               older version than trusted, or same version other bytes
    │   │   └── ForkError               a timestamp that does not extend the trusted history
    │   ├── RootRotationError           the root chain cannot be walked
    │   ├── HashMismatchError           sha256 of received bytes differs from the signed one
    │   ├── LengthMismatchError         size of received bytes differs from the signed one
    │   └── PolicyError                 signed, but not allowed (namespace scope, plain HTTP …)
    ├── DownloadError                   the network failed (after retries)
    │   ├── NotFoundError               the server answered 404 / 410
    │   ├── UnreachableError            no connection (refused, unreachable, DNS): next mirror now
    │   └── TransferTimeoutError        a transfer, or the whole run, passed its deadline
    ├── CacheError                      the local cache cannot be read or written
    │   └── LockTimeoutError            another process holds an entry's lock too long
    ├── ResolutionError                 the user's request cannot be met by the index
    ├── PublishError                    the index directory cannot be changed as asked
    │   ├── SignerError                 a key reference cannot sign: HSM, Vault or program
    │                                   failed, or answered with a signature that does not
    │                                   verify under the key it names

    │   ├── PublishConflictError        other publishers kept winning the race (retries spent)
    │   └── StorageError                the index storage failed or ignores conditional writes
    ├── PackageError                    a package archive or directory is bad
    │   ├── ArchiveError                an unsafe or malformed zip entry or package directory
    │   │   ├── ArchiveFormatError      the zip structure is malformed or could be read two ways
    │   │   ├── UnsafeNameError         an entry name not one file on every reader and platform
    │   │   ├── ForbiddenEntryError     an entry no package may hold (link, bytecode, VCS …)
    │   │   ├── NameCollisionError      two entries that are one file somewhere
    │   │   ├── ManifestPlacementError  not exactly one manifest, at the root
    │   │   └── ArchiveLimitError       over an entry-count or size cap (bombs)
    │   ├── ManifestError               ``modelmesh-package.yaml`` is invalid
    │   ├── MissingEntryPointError      a connector has no Python entry (a Node-only package)
    │   └── PackageImportError          the package's code failed to import or mis-behaved
    ├── RegistryError                   registry misuse
    │   ├── DuplicateConnectorError     an ID is already registered
    │   ├── ConnectorTypeError          implementation does not fit its connector type
    │   ├── UnknownConnectorError       (also a ``KeyError``) no connector with that ID
    │   ├── RegistryFrozenError         ``register``/``load_package`` after ``freeze()``
    │   └── LibraryTamperedError        the verifying code was rebound after packages ran
    └── ConfigError                     the ``connectors:`` configuration is invalid

Every class carries a stable, machine-readable ``code`` (``trust.rollback``): the same
strings the TypeScript client reports (``src/typescript/ERROR-CODES.md``) and the
conformance vectors expect (``tests/vectors/``). A subclass's code extends its parent's,
so ``code.startswith("trust.")`` catches every trust failure. Codes never change once
released; messages may.

Invalid *strings* (a connector ID, a requirement, a manifest field) raise
``ValueError`` subclasses defined next to their parser; those that belong to
this project also derive from :class:`ConnectorError` so one ``except`` catches
everything (see :class:`InvalidInput`).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ArchiveError",
    "ArchiveFormatError",
    "ArchiveLimitError",
    "CacheError",
    "ConfigError",
    "ConnectorError",
    "ConnectorTypeError",
    "DownloadError",
    "DuplicateConnectorError",
    "ExpiredError",
    "ForbiddenEntryError",
    "ForkError",
    "HashMismatchError",
    "InvalidInput",
    "LengthMismatchError",
    "LibraryTamperedError",
    "LockTimeoutError",
    "ManifestError",
    "ManifestPlacementError",
    "MissingEntryPointError",
    "NameCollisionError",
    "NotFoundError",
    "PackageError",
    "PackageImportError",
    "PolicyError",
    "PublishConflictError",
    "PublishError",
    "RegistryError",
    "RegistryFrozenError",
    "ResolutionError",
    "RollbackError",
    "RootRotationError",
    "SignatureError",
    "SignerError",
    "StorageError",
    "TransferTimeoutError",
    "TrustError",
    "UnknownConnectorError",
    "UnreachableError",
    "UnsafeNameError",
]


class ConnectorError(Exception):
    """Base of every error raised by modelmesh-connectors.

    Args:
        message: What was expected and what was seen.
        hint: Optional action the user can take (printed by the CLI).
    """

    #: Stable machine-readable code (docs/ERROR-CODES.md); a subclass's code extends its
    #: parent's (``trust`` → ``trust.rollback``), so a caller may match on a prefix.
    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(ConnectorError, ValueError):
    """An invalid string or value handed to a parser (ID, requirement, field)."""

    code = "input"


# -- trust ---------------------------------------------------------------------


class TrustError(ConnectorError):
    """Signed data failed verification; nothing from it may be used."""

    code = "trust"


class SignatureError(TrustError):
    """Not enough valid signatures by trusted keys, or the wrong payload type."""

    code = "trust.signature"


class ExpiredError(TrustError):
    """Signed metadata is past its expiry (freeze attack or stale mirror)."""

    code = "trust.expired"


class RollbackError(TrustError):
    """A version older than the trusted one, or the same version with other bytes."""

    code = "trust.rollback"


class ForkError(RollbackError):
    """A newer timestamp that does not extend the trusted one: the server showed this client
    two different histories (FORMAT.md §3 history)."""

    code = "trust.rollback.fork"


class RootRotationError(TrustError):
    """The chain of root versions cannot be walked from the trusted root."""

    code = "trust.root-rotation"


class HashMismatchError(TrustError):
    """The sha256 of received bytes is not the signed one."""

    code = "trust.hash"


class LengthMismatchError(TrustError):
    """The size of received bytes is not the signed one."""

    code = "trust.length"


class PolicyError(TrustError):
    """The data is signed, but local policy forbids using it."""

    code = "trust.policy"


# -- download ------------------------------------------------------------------


class DownloadError(ConnectorError):
    """A URL could not be fetched (after retries for transient failures)."""

    code = "download"


class NotFoundError(DownloadError):
    """The server answered that the file does not exist (404/410)."""

    code = "download.not-found"


class UnreachableError(DownloadError):
    """No connection could be made: refused, unreachable, DNS failure, connect timeout.

    Never retried against the same URL: the loader moves on to the next mirror at once
    (a dead mirror costs nothing) and only comes back to it in a later round.
    """

    code = "download.unreachable"


class TransferTimeoutError(DownloadError):
    """A transfer did not finish within its deadline (or the run's), or went silent.

    Args:
        message: What was expected and what was seen.
        url: The URL, credentials redacted.
        received: Body bytes received by the attempt that timed out.
        deadline: The allowance in seconds that ran out.
        run: True when it was the whole run's deadline (no further round can help).
        hint: Optional action the user can take.
    """

    code = "download.timeout"

    def __init__(
        self,
        message: str,
        *,
        url: str = "",
        received: int = 0,
        deadline: float = 0.0,
        run: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.url = url
        self.received = received
        self.deadline = deadline
        self.run = run


# -- cache ---------------------------------------------------------------------


class CacheError(ConnectorError):
    """The local cache directory cannot be read or written."""

    code = "cache"


class LockTimeoutError(CacheError):
    """An entry's lock was held by another process for longer than the timeout."""

    code = "cache.lock-timeout"


# -- resolution ----------------------------------------------------------------


class ResolutionError(ConnectorError):
    """No published version satisfies the request."""

    code = "resolution"


# -- publishing ----------------------------------------------------------------


class PublishError(ConnectorError):
    """The publisher cannot change the index as asked (version exists, bad directory)."""

    code = "publish"


class SignerError(PublishError):
    """A signing key named by reference (``file:``, ``pkcs11:``, ``vault:``, ``exec:``) failed.

    Raised when the reference is malformed, the key store cannot be reached or refuses, or
    the signer answered with bytes that are not a valid signature by the key it declared
    (another key's signature, or garbage): such a signature is never used.
    """

    code = "publish.signer"


class PublishConflictError(PublishError):
    """Every attempt lost the compare-and-swap of ``timestamp.json`` to another publisher."""

    code = "publish.conflict"


class StorageError(PublishError):
    """The index storage cannot be read or written, or does not enforce conditional writes."""

    code = "publish.storage"


# -- package -------------------------------------------------------------------


class PackageError(ConnectorError):
    """A connector package (zip or directory) is unusable."""

    code = "package"


class ArchiveError(PackageError):
    """A zip archive is malformed or contains an unsafe entry."""

    code = "package.archive"


class ArchiveFormatError(ArchiveError):
    """The zip's structure is malformed, or different readers could read it differently.

    Prefix or trailing data, comments, gaps or overlaps between entries, a local header that
    disagrees with the central directory, zip64, data descriptors, encryption, unknown extra
    fields, sizes or CRCs that lie.
    """

    code = "package.archive.format"


class UnsafeNameError(ArchiveError):
    """An entry name that is not one and the same file on every reader and platform."""

    code = "package.archive.name"


class ForbiddenEntryError(ArchiveError):
    """An entry no package may hold: a link, bytecode, a native module, VCS metadata."""

    code = "package.archive.forbidden"


class NameCollisionError(ArchiveError):
    """Two entries that are one file somewhere (duplicate, case-fold or file/directory)."""

    code = "package.archive.collision"


class ManifestPlacementError(ArchiveError):
    """Not exactly one ``modelmesh-package.yaml``, at the package root."""

    code = "package.archive.manifest-placement"


class ArchiveLimitError(ArchiveError):
    """Over the entry-count or size caps (decompression bombs)."""

    code = "package.archive.limit"


class ManifestError(PackageError, InvalidInput):
    """``modelmesh-package.yaml`` is missing or invalid."""

    code = "package.manifest"


class MissingEntryPointError(PackageError):
    """A connector has no entry point for this runtime (a Node-only package in Python)."""

    code = "package.no-entry-point"


class PackageImportError(PackageError):
    """A package's code failed to import, or did something it did not declare."""

    code = "package.import"


# -- registry ------------------------------------------------------------------


class RegistryError(ConnectorError):
    """The registry was asked to do something it cannot."""

    code = "registry"


class DuplicateConnectorError(RegistryError):
    """A connector ID is already registered."""

    code = "registry.duplicate"


class ConnectorTypeError(RegistryError, TypeError):
    """An implementation does not implement its connector type's interface."""

    code = "registry.type"


class UnknownConnectorError(RegistryError, KeyError):
    """No connector is registered under the requested ID."""

    code = "registry.unknown"

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and add quotes.
        return self.message


class RegistryFrozenError(RegistryError):
    """The registry was frozen after start-up; nothing more may be registered or loaded."""

    code = "registry.frozen"


class LibraryTamperedError(RegistryError):
    """Code of modelmesh-connectors was rebound after package code ran; no load is trusted."""

    code = "registry.tampered"


# -- configuration -------------------------------------------------------------


class ConfigError(ConnectorError, ValueError):
    """The ``connectors:`` configuration is invalid."""

    code = "config"
