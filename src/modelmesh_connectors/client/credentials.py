"""Credentials for private indexes: where they come from, where they may go, how they are hidden.

Three sources, in order of precedence for one request:

1. user info in the URL itself (``https://user:pass@idx.example.com/``): HTTP basic auth;
2. ``auth:`` in the configuration, per origin: a bearer token read from a named environment
   variable (the token itself never appears in a file the loader reads or writes);
3. ``netrc`` (``$NETRC`` or ``~/.netrc``), per host; its ``default`` entry is never used, so a
   password meant for one host cannot reach another.

A credential is *scoped to an origin* (scheme, host, port): the fetcher attaches it only to
requests for that origin and drops it on a redirect hop to any other origin. It never goes
over plain ``http://`` except to a loopback host.

Every URL passes through ``_internal.redact.redact_url`` before it is shown or stored (logs,
error messages, the lock file, registry origins, ``--json``): user info and query values are
replaced by ``***``; ``redact_text`` scrubs free text as a last line (the CLI runs every
message through it).
"""

from __future__ import annotations

__all__ = [
    "Credentials",
    "load_credentials",
    "origin_of",
    "parse_origin",
    "strip_userinfo",
]

import base64
import ipaddress
import logging
import netrc
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

from modelmesh_connectors._internal.redact import redact_url
from modelmesh_connectors.errors import ConfigError, PolicyError

_log = logging.getLogger("modelmesh_connectors.client.credentials")

_MASK: Final = "***"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased, with the default port made explicit.

    Two URLs have the same origin exactly when this string is equal; it never contains
    user info.

    Raises:
        ValueError: The URL has no scheme or host, or a bad port.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        raise ValueError(f"expected an absolute URL with a host, got {redact_url(url)!r}")
    port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(scheme)
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def strip_userinfo(url: str) -> tuple[str, str | None]:
    """Split user info off a URL.

    Args:
        url: An absolute URL.

    Returns:
        The URL without user info, and the ``Authorization`` value (HTTP basic) the user info
        stood for, or None when there was none.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return clean, _basic(unquote(user), unquote(password))


def _basic(user: str, password: str) -> str:
    raw = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Credentials:
    """``Authorization`` header values per origin, for the fetcher alone.

    ``repr`` never shows a value, so logging this object leaks nothing.

    Attributes:
        by_origin: Origin (see :func:`origin_of`) → header value, from ``auth:``.
        netrc_hosts: Host → (login, password), from netrc (``default`` excluded).
    """

    by_origin: Mapping[str, str] = field(default_factory=dict, repr=False)
    netrc_hosts: Mapping[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (
            f"Credentials(origins={sorted(self.by_origin)}, netrc_hosts={sorted(self.netrc_hosts)})"
        )

    def header_for(self, url: str, *, userinfo: str | None = None) -> str | None:
        """The ``Authorization`` value for a request that *starts* at ``url``.

        Args:
            url: The request URL, without user info.
            userinfo: The basic-auth value taken from the URL's own user info, if any.

        Returns:
            The header value, or None when nothing is configured for the URL's origin.

        Raises:
            PolicyError: A credential would go over plain ``http://`` to a non-loopback host.
        """
        try:
            origin = origin_of(url)
        except ValueError:
            return None
        value = userinfo or self.by_origin.get(origin)
        host = (urlsplit(url).hostname or "").lower()
        from_netrc = False
        if value is None and host in self.netrc_hosts:
            login, password = self.netrc_hosts[host]
            value, from_netrc = _basic(login, password), True
        if value is None:
            return None
        if origin.startswith("http://") and not _is_loopback(host):
            if from_netrc:
                _log.debug("not sending the netrc entry for %s over plain http", host)
                return None
            # Anyone on the path would read the credential: refuse rather than leak it.
            raise PolicyError(
                f"refusing to send credentials over plain http to {redact_url(url)}: "
                "expected https",
                hint="use an https:// URL for an index or mirror that needs credentials",
            )
        return value


def load_credentials(
    tokens: Mapping[str, str],
    *,
    netrc_file: Path | bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """Read the configured credentials from the environment and netrc.

    Args:
        tokens: Origin → name of the environment variable holding a bearer token
            (the ``auth:`` section).
        netrc_file: A netrc path; None for ``$NETRC`` or ``~/.netrc``; False to use none.
        environ: The environment (default: ``os.environ``).

    Returns:
        The credentials, keyed by origin and host.

    Raises:
        ConfigError: A named environment variable is unset or empty, or the netrc file
            cannot be parsed (the message names the file and line, never its content).
    """
    env = os.environ if environ is None else environ
    by_origin: dict[str, str] = {}
    for origin, variable in tokens.items():
        token = env.get(variable, "")
        if not token.strip():
            raise ConfigError(
                f"connectors.auth[{origin!r}].token_env: the environment variable "
                f"{variable} is not set or empty",
                hint=f"export {variable}=<token> before running",
            )
        by_origin[origin] = "Bearer " + token.strip()
    hosts: dict[str, tuple[str, str]] = {}
    if netrc_file is not False:
        explicit = None if netrc_file in (None, True) else Path(str(netrc_file))
        hosts = _netrc_hosts(explicit, env)
    return Credentials(by_origin, hosts)


def _netrc_hosts(path: Path | None, env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Host entries of a netrc file; a configured file must parse, the implicit one may not."""
    explicit = path is not None
    if path is None:
        configured = env.get("NETRC")
        path = Path(configured).expanduser() if configured else Path.home() / ".netrc"
    if not path.is_file():
        return {}
    try:
        parsed = netrc.netrc(str(path))
    except (netrc.NetrcParseError, OSError, UnicodeDecodeError) as exc:
        # exc.msg may quote a token of the file (a password): show file and line only.
        line = getattr(exc, "lineno", None)
        where = f"{path}: cannot read the netrc file" + (f" (line {line})" if line else "")
        if explicit:
            raise ConfigError(where, hint="fix the file named by connectors.netrc") from None
        # An unrelated ~/.netrc the loader cannot parse must not break public indexes.
        _log.warning("%s; netrc credentials are not used", where)
        return {}
    out: dict[str, tuple[str, str]] = {}
    for host, (login, _account, password) in parsed.hosts.items():
        if host == "default":  # the catch-all entry would send a password to any host
            continue
        out[host.lower()] = (login or "", password or "")
    return out


def parse_origin(value: str, *, key: str) -> str:
    """Validate an ``auth:`` key: ``scheme://host[:port]`` with nothing else.

    Raises:
        ConfigError: naming the key.
    """
    try:
        parts = urlsplit(value)
        origin = origin_of(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: expected an origin like https://host[:port], got {exc}") from exc
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise ConfigError(f"{key}: expected an http(s) origin, got {redact_url(value)!r}")
    if "@" in parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"{key}: expected only scheme://host[:port], got {redact_url(value)!r}",
            hint="credentials are scoped to a whole origin; remove the path and user info",
        )
    return origin
