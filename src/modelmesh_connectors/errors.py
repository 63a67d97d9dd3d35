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
    │   └── PackageImportError          the package's code failed to import or mis-behaved
    ├── RegistryError                   registry misuse
    │   ├── DuplicateConnectorError     an ID is already registered
    │   ├── ConnectorTypeError          implementation does not fit its connector type
    │   ├── UnknownConnectorError       (also a ``KeyError``) no connector with that ID
    │   ├── RegistryFrozenError         ``register``/``load_package`` after ``freeze()``
    │   └── LibraryTamperedError        the verifying code was rebound after packages ran
    └── ConfigError                     the ``connectors:`` configuration is invalid

Invalid *strings* (a connector ID, a requirement, a manifest field) raise
``ValueError`` subclasses defined next to their parser; those that belong to
this project also derive from :class:`ConnectorError` so one ``except`` catches
everything (see :class:`InvalidInput`).
"""

from __future__ import annotations

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

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(ConnectorError, ValueError):
    """An invalid string or value handed to a parser (ID, requirement, field)."""


# -- trust ---------------------------------------------------------------------


class TrustError(ConnectorError):
    """Signed data failed verification; nothing from it may be used."""


class SignatureError(TrustError):
    """Not enough valid signatures by trusted keys, or the wrong payload type."""


class ExpiredError(TrustError):
    """Signed metadata is past its expiry (freeze attack or stale mirror)."""


class RollbackError(TrustError):
    """A version older than the trusted one, or the same version with other bytes."""


class ForkError(RollbackError):
    """A newer timestamp that does not extend the trusted one: the server showed this client
    two different histories (FORMAT.md §3 history)."""


class RootRotationError(TrustError):
    """The chain of root versions cannot be walked from the trusted root."""


class HashMismatchError(TrustError):
    """The sha256 of received bytes is not the signed one."""


class LengthMismatchError(TrustError):
    """The size of received bytes is not the signed one."""


class PolicyError(TrustError):
    """The data is signed, but local policy forbids using it."""


# -- download ------------------------------------------------------------------


class DownloadError(ConnectorError):
    """A URL could not be fetched (after retries for transient failures)."""


class NotFoundError(DownloadError):
    """The server answered that the file does not exist (404/410)."""


class UnreachableError(DownloadError):
    """No connection could be made: refused, unreachable, DNS failure, connect timeout.

    Never retried against the same URL: the loader moves on to the next mirror at once
    (a dead mirror costs nothing) and only comes back to it in a later round.
    """


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


class LockTimeoutError(CacheError):
    """An entry's lock was held by another process for longer than the timeout."""


# -- resolution ----------------------------------------------------------------


class ResolutionError(ConnectorError):
    """No published version satisfies the request."""


# -- publishing ----------------------------------------------------------------


class PublishError(ConnectorError):
    """The publisher cannot change the index as asked (version exists, bad directory)."""


class PublishConflictError(PublishError):
    """Every attempt lost the compare-and-swap of ``timestamp.json`` to another publisher."""


class StorageError(PublishError):
    """The index storage cannot be read or written, or does not enforce conditional writes."""


# -- package -------------------------------------------------------------------


class PackageError(ConnectorError):
    """A connector package (zip or directory) is unusable."""


class ArchiveError(PackageError):
    """A zip archive is malformed or contains an unsafe entry."""


class ArchiveFormatError(ArchiveError):
    """The zip's structure is malformed, or different readers could read it differently.

    Prefix or trailing data, comments, gaps or overlaps between entries, a local header that
    disagrees with the central directory, zip64, data descriptors, encryption, unknown extra
    fields, sizes or CRCs that lie.
    """


class UnsafeNameError(ArchiveError):
    """An entry name that is not one and the same file on every reader and platform."""


class ForbiddenEntryError(ArchiveError):
    """An entry no package may hold: a link, bytecode, a native module, VCS metadata."""


class NameCollisionError(ArchiveError):
    """Two entries that are one file somewhere (duplicate, case-fold or file/directory)."""


class ManifestPlacementError(ArchiveError):
    """Not exactly one ``modelmesh-package.yaml``, at the package root."""


class ArchiveLimitError(ArchiveError):
    """Over the entry-count or size caps (decompression bombs)."""


class ManifestError(PackageError, InvalidInput):
    """``modelmesh-package.yaml`` is missing or invalid."""


class PackageImportError(PackageError):
    """A package's code failed to import, or did something it did not declare."""


# -- registry ------------------------------------------------------------------


class RegistryError(ConnectorError):
    """The registry was asked to do something it cannot."""


class DuplicateConnectorError(RegistryError):
    """A connector ID is already registered."""


class ConnectorTypeError(RegistryError, TypeError):
    """An implementation does not implement its connector type's interface."""


class UnknownConnectorError(RegistryError, KeyError):
    """No connector is registered under the requested ID."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and add quotes.
        return self.message


class RegistryFrozenError(RegistryError):
    """The registry was frozen after start-up; nothing more may be registered or loaded."""


class LibraryTamperedError(RegistryError):
    """Code of modelmesh-connectors was rebound after package code ran; no load is trusted."""


# -- configuration -------------------------------------------------------------


class ConfigError(ConnectorError, ValueError):
    """The ``connectors:`` configuration is invalid."""
