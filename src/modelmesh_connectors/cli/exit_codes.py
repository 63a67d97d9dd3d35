"""Exit statuses of ``modelmesh-connectors``: one table, mapped from the one error tree.

A CI job must tell "attack or corruption" (:data:`ExitCode.TRUST`) from "server down"
(:data:`ExitCode.NETWORK`) without parsing messages. The README lists the same table
(``tests/e2e/test_cli_conventions.py`` checks that both agree).
"""

from __future__ import annotations

from enum import IntEnum

from modelmesh_connectors.errors import (
    CacheError,
    ConfigError,
    ConnectorError,
    DownloadError,
    InvalidInput,
    PackageError,
    PublishError,
    RegistryError,
    ResolutionError,
    TrustError,
)

__all__ = ["ExitCode", "exit_code_for"]


class ExitCode(IntEnum):
    """What a non-zero status means; the docstring of each member is its README row."""

    OK = 0
    FAILURE = 1  # any other error
    USAGE = 2  # bad command line: unknown command or option, missing argument
    CONFIG = 3  # configuration, option value, key file or input string invalid or unreadable
    TRUST = 4  # verification failed: signature, threshold, hash, length, expiry, rollback, policy
    NETWORK = 5  # a download failed after retries: unreachable, timeout, HTTP error, 404
    RESOLUTION = 6  # no published version satisfies the request
    PACKAGE = 7  # a package (archive, manifest, code) is bad, or its connector checks fail
    CACHE = 8  # the local cache cannot be read or written, or held corrupt entries
    PUBLISH = 9  # the index directory cannot be changed as asked
    REGISTRY = 10  # registry misuse: ID clash, unknown ID, type mismatch, frozen
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


# First match wins: a ManifestError is both a PackageError and an InvalidInput.
_TABLE: tuple[tuple[type[ConnectorError], ExitCode], ...] = (
    (TrustError, ExitCode.TRUST),
    (DownloadError, ExitCode.NETWORK),
    (ConfigError, ExitCode.CONFIG),
    (CacheError, ExitCode.CACHE),
    (ResolutionError, ExitCode.RESOLUTION),
    (PublishError, ExitCode.PUBLISH),
    (PackageError, ExitCode.PACKAGE),
    (RegistryError, ExitCode.REGISTRY),
    (InvalidInput, ExitCode.CONFIG),
)


def exit_code_for(exc: ConnectorError) -> ExitCode:
    """The exit status for an error of the library's tree.

    Args:
        exc: The error the command raised.

    Returns:
        The first matching row of the table, else :data:`ExitCode.FAILURE`.
    """
    for kind, code in _TABLE:
        if isinstance(exc, kind):
            return code
    return ExitCode.FAILURE
