"""The ``connectors:`` configuration section, parsed strictly into frozen values.

The same YAML file ModelMesh reads may carry a ``connectors:`` section; a mapping holding only
the section's keys is accepted too. Every problem names the key and what is wrong; unknown
keys are reported (a typo like ``require_signature`` must not silently weaken policy).

Just over 600 lines on purpose: the one frozen value and its one strict parser, key by key;
the per-key checks read best next to the fields they fill.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors._internal.redact import redact_url
from modelmesh_connectors._internal.strict_yaml import (
    DuplicateKeyError,
    YamlInputError,
    load_yaml,
    short_repr,
)
from modelmesh_connectors.client.settings import (
    CACHE_DIR_ENV,
    Limits,
    NetworkConfig,
    default_cache_dir,
)
from modelmesh_connectors.errors import ConfigError
from modelmesh_connectors.package.requirements import (
    InvalidPackageSpec,
    LocalSpec,
    PackageSpec,
    parse_package_spec,
)

__all__ = [
    "CACHE_ENV",
    "Limits",
    "LoaderConfig",
    "NetworkConfig",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_index_urls",
    "parse_rate",
]

CACHE_ENV = CACHE_DIR_ENV  # the name earlier versions exported from here

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_RATE_UNITS = {"": 1.0, "b": 1.0, "kb": 1e3, "kib": 1024.0, "mb": 1e6, "mib": 1024.0**2}


# Compiled on first use: most configurations give durations and rates as numbers or not at
# all, and compiling both cost every start ~0.15 ms (issue 14).
@functools.cache
def _duration_re() -> re.Pattern[str]:
    return re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")


@functools.cache
def _rate_re() -> re.Pattern[str]:
    return re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib)?\s*(?:/\s*s)?", re.IGNORECASE)


class LoaderConfig(Frozen):
    """The whole ``connectors:`` section.

    Attributes:
        packages: What to load, in order.
        index: Index URLs (mirrors), tried in order; empty when only local packages are used.
        trust_root: The shipped root file (``keys/root.json``).
        cache_dir: Cache directory (None: platform user cache, or $MODELMESH_CONNECTORS_CACHE).
        require_signatures: Local paths must verify too (off for local development).
        offline: Never touch the network: packages come from the cache or a bundle.
        max_expired_age: Seconds past expiry that offline metadata is still accepted (warned).
        metadata_max_age: Seconds a fresh cached index state is reused without a network check.
        prereleases: Allow pre-releases when resolving requirements.
        locked: Install exactly what the lock file pins, refuse anything else.
        lock_file: The lock file path.
        allow_unpinned_directories: With ``locked``, load a local directory the lock names
            (a directory has no fixed bytes to pin; off: every directory is refused).
        bundle: A local mirror/bundle directory used as an index source.
        network: Network settings (None: the defaults).
        limits: Size caps and bounds on what is read (``max_metadata_bytes`` sets one;
            None: the defaults).
        base_dir: Directory relative paths were resolved against (None: the current one).
    """

    # No __slots__: callers copy a config with ``LoaderConfig(**{**cfg.__dict__, ...})``.
    packages: tuple[PackageSpec, ...]
    index: tuple[str, ...]
    trust_root: Path | None
    cache_dir: Path | None
    require_signatures: bool
    offline: bool
    max_expired_age: float  # seconds
    metadata_max_age: float  # seconds
    prereleases: bool
    locked: bool
    lock_file: Path | None
    allow_unpinned_directories: bool
    bundle: Path | None
    network: NetworkConfig
    limits: Limits
    base_dir: Path

    def __init__(
        self,
        packages: tuple[PackageSpec, ...] = (),
        index: tuple[str, ...] = (),
        trust_root: Path | None = None,
        cache_dir: Path | None = None,
        require_signatures: bool = False,
        offline: bool = False,
        max_expired_age: float = 0.0,
        metadata_max_age: float = 300.0,
        prereleases: bool = False,
        locked: bool = False,
        lock_file: Path | None = None,
        allow_unpinned_directories: bool = False,
        bundle: Path | None = None,
        network: NetworkConfig | None = None,
        limits: Limits | None = None,
        base_dir: Path | None = None,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "packages", packages)
        setattr_(self, "index", index)
        setattr_(self, "trust_root", trust_root)
        setattr_(self, "cache_dir", cache_dir)
        setattr_(self, "require_signatures", require_signatures)
        setattr_(self, "offline", offline)
        setattr_(self, "max_expired_age", max_expired_age)
        setattr_(self, "metadata_max_age", metadata_max_age)
        setattr_(self, "prereleases", prereleases)
        setattr_(self, "locked", locked)
        setattr_(self, "lock_file", lock_file)
        setattr_(self, "allow_unpinned_directories", allow_unpinned_directories)
        setattr_(self, "bundle", bundle)
        setattr_(self, "network", NetworkConfig() if network is None else network)
        setattr_(self, "limits", Limits() if limits is None else limits)
        setattr_(self, "base_dir", Path.cwd() if base_dir is None else base_dir)

    def resolved_cache_dir(self) -> Path:
        """The cache directory to use: config, then environment, then platform default.

        The one resolver, :func:`~modelmesh_connectors.client.settings.default_cache_dir`.
        """
        return default_cache_dir(self.cache_dir)

    def check_trust_root_placement(self) -> None:
        """Refuse a trust root that lies inside a medium it is meant to check.

        The ``bundle:`` directory, the cache directory and every ``file://`` index mirror
        are untrusted media: a trust root read from one of them would let whoever swaps the
        bundle (or writes the cache, or the mirror) swap the trust with it. Paths are
        compared after resolving symlinks and ``..`` (a symlink from outside pointing inside
        counts as inside), and by file identity, so another spelling of the same directory
        (case on a case-insensitive file system, a bind mount) or a hard link to the copy a
        mirror carries is caught too.

        Raises:
            ConfigError: The trust root lies inside one of them, naming which and how to
                provision the root out of band.
        """
        if self.trust_root is None:
            return
        media: list[tuple[str, Path]] = []
        if self.bundle is not None:
            media.append(("the bundle directory (connectors.bundle)", self.bundle))
        media.append(("the cache directory", self.resolved_cache_dir()))
        for i, url in enumerate(self.index):
            if url[:7].lower() == "file://":
                from urllib.parse import unquote, urlsplit

                local = Path(unquote(urlsplit(url).path))
                media.append((f"the index mirror directory (connectors.index[{i}])", local))
        for what, medium in media:
            if _lies_inside(self.trust_root, medium):
                raise ConfigError(
                    f"connectors.trust_root: {self.trust_root} lies inside {what} {medium}; "
                    "a trust root must never come from the medium it is meant to check "
                    "(whoever can replace that medium could replace the trust with it)",
                    hint="provision the trust root out of band: install keys/root.json with "
                    "the deployment (configuration management, an OS package, a separate "
                    "channel) at a path outside the bundle, the cache and every mirror, and "
                    "compare its sha256 with the one 'modelmesh-connectors mirror' printed",
                )


_TOP_KEYS = {
    "packages",
    "index",
    "trust_root",
    "cache_dir",
    "require_signatures",
    "offline",
    "max_expired_age",
    "metadata_max_age",
    "prereleases",
    "locked",
    "lock_file",
    "allow_unpinned_directories",
    "bundle",
    "timeouts",
    "retries",
    "allow_http",
    "ca_bundle",
    "max_metadata_bytes",
    "concurrency",
    "auth",
    "netrc",
}
_TIMEOUT_KEYS = {"connect", "read", "transfer", "min_rate", "run"}
_AUTH_KEYS = {"token_env"}
_SECTION = "connectors"
_TYPO_CUTOFF = (
    0.88  # difflib ratio: 'connector' 0.95, 'connectros' 0.9 warn; 'connections' 0.86 not
)
_SECTION_LETTERS = Counter(_SECTION)
_log = logging.getLogger(__name__)


def parse_duration(value: object, *, key: str) -> float:
    """Seconds from a number or a string like ``90``, ``30s``, ``5m``, ``12h``, ``7d``.

    Raises:
        ConfigError: naming the key.
    """
    if isinstance(value, bool):
        raise ConfigError(f"connectors.{key}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    elif (
        isinstance(value, str)
        and len(value) < 40
        and (m := _duration_re().fullmatch(value.strip()))
    ):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ConfigError(
            f"connectors.{key}: expected a duration like 30, '30s', '5m', '12h' or '7d', "
            f"got {value!r}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(
            f"connectors.{key}: must be a finite, non-negative duration, got {short_repr(value)}"
        )
    return seconds


def parse_rate(value: object, *, key: str) -> float:
    """Bytes per second from a number or a string like ``10KiB/s``, ``1MB/s``, ``500``.

    Raises:
        ConfigError: naming the key.
    """
    rate: float
    if isinstance(value, bool):
        raise ConfigError(f"connectors.{key}: expected a rate, got {value!r}")
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str) and len(value) < 40 and (m := _rate_re().fullmatch(value.strip())):
        rate = float(m.group(1)) * _RATE_UNITS[(m.group(2) or "").lower()]
    else:
        raise ConfigError(
            f"connectors.{key}: expected a rate in bytes per second like 10240, '10KiB/s' or "
            f"'1MB/s', got {short_repr(value)}"
        )
    if not math.isfinite(rate) or rate <= 0:
        raise ConfigError(
            f"connectors.{key}: must be a finite rate > 0 bytes per second, got {short_repr(value)}"
        )
    return rate


def _positive_duration(value: object, *, key: str) -> float:
    seconds = parse_duration(value, key=key)
    if seconds <= 0:
        raise ConfigError(f"connectors.{key}: must be > 0 seconds, got {short_repr(value)}")
    return seconds


def _auth(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    value = raw.get("auth")
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(
            "connectors.auth: expected a mapping of origin to {token_env: VARIABLE}, "
            f"got {type(value).__name__}"
        )
    # Here, not at the top: netrc and the credential store are needed only with 'auth:'.
    from modelmesh_connectors.client.credentials import parse_origin

    out: dict[str, str] = {}
    for origin_text, entry in value.items():
        key = f"connectors.auth[{redact_url(str(origin_text))!r}]"
        if not isinstance(origin_text, str):
            raise ConfigError(f"{key}: expected an origin string like https://host")
        origin = parse_origin(origin_text, key=key)
        if not isinstance(entry, Mapping) or set(map(str, entry)) - _AUTH_KEYS or not entry:
            raise ConfigError(
                f"{key}: expected {{token_env: VARIABLE}} (the name of an environment "
                "variable holding a bearer token, never the token itself)"
            )
        variable = entry.get("token_env")
        if not isinstance(variable, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
            raise ConfigError(
                f"{key}.token_env: expected an environment variable name, got a "
                f"{type(variable).__name__}",
                hint="put the token in the environment and name the variable here",
            )
        if origin in out:
            raise ConfigError(f"{key}: the origin {origin} is configured twice")
        out[origin] = variable
    return tuple(sorted(out.items()))


def _netrc(raw: Mapping[str, Any], base: Path) -> bool | Path:
    value = raw.get("netrc", True)
    if isinstance(value, bool):
        return value
    path = _path(raw, "netrc", base)
    assert path is not None  # value is not None here
    return path


def _bool(raw: Mapping[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"connectors.{key}: expected true or false, got {value!r}")
    return value


def _int(raw: Mapping[str, Any], key: str, default: int, *, minimum: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"connectors.{key}: expected an integer ≥ {minimum}, got {value!r}")
    return value


def _path(raw: Mapping[str, Any], key: str, base: Path) -> Path | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"connectors.{key}: expected a path string, got {value!r}")
    try:
        path = Path(value).expanduser()
    except (RuntimeError, ValueError) as exc:  # ~unknown-user, NUL in the user name
        raise ConfigError(f"connectors.{key}: cannot expand {value!r}: {exc}") from exc
    return path if path.is_absolute() else base / path


def _index(raw: Mapping[str, Any]) -> tuple[str, ...]:
    value = raw.get("index")
    if value is None:
        return ()
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not urls:
        raise ConfigError(f"connectors.index: expected a URL or a list of URLs, got {value!r}")
    out: list[str] = []
    for i, url in enumerate(urls):
        if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
            shown = redact_url(url) if isinstance(url, str) else url
            raise ConfigError(
                f"connectors.index[{i}]: expected an https:// (or loopback http://) URL, "
                f"got {shown!r}"
            )
        if "?" in url or "#" in url:
            # Paths are appended to an index URL; a query would end up inside them, and
            # a secret in it (token=…) in every log line and in the state directory.
            raise ConfigError(
                f"connectors.index[{i}]: an index URL cannot carry a query or fragment, "
                f"got {redact_url(url)!r}",
                hint="put credentials in 'auth:', netrc, or user info (https://user:pass@host/)",
            )
        out.append(url.rstrip("/") + "/")
    return tuple(out)


def parse_index_urls(value: object) -> tuple[str, ...]:
    """Validate index URLs given outside the file (``--index``) exactly like ``index:``.

    Raises:
        ConfigError: naming the entry.
    """
    return _index({"index": value})


def _close_to_section(key: str) -> bool:
    """``difflib.get_close_matches(key, [_SECTION], cutoff=_TYPO_CUTOFF)``, importing difflib
    only for a key that passes its ``quick_ratio`` bound (shared letters): almost none does."""
    common = sum((Counter(key) & _SECTION_LETTERS).values())
    if 2.0 * common / (len(key) + len(_SECTION)) < _TYPO_CUTOFF:
        return False  # difflib's own first checks would reject it the same way
    import difflib

    return bool(difflib.get_close_matches(key, [_SECTION], n=1, cutoff=_TYPO_CUTOFF))


def _warn_misspelled_section(data: Mapping[Any, Any], source: str | None) -> None:
    """Warn about top-level keys that look like a misspelled ``connectors:``.

    ``connector:`` or ``Connectors:`` is not the section, so without this warning a
    configuration meant to load (and verify) packages loads none and exits 0. A flat
    section whose keys include one that is not a section key is not read as a section
    either (it is taken for a ModelMesh file without ``connectors:``): warned the same way.
    """
    where = f"{source}: " if source else ""
    keys = [k for k in data if isinstance(k, str)]
    for key in keys:
        if key != _SECTION and _close_to_section(key.lower()):
            _log.warning(
                "%stop-level key %r is not %r (did you mean %r?); it is ignored%s",
                where,
                key,
                _SECTION,
                _SECTION,
                "" if _SECTION in data else ", so no connectors are configured",
            )
    if _SECTION in data:
        return
    known = [k for k in keys if k in _TOP_KEYS]
    unknown = [k for k in data if k not in _TOP_KEYS]
    if known and unknown:
        hints = []
        for key in unknown:
            import difflib  # only here, for the warning: ~3 ms of every start otherwise

            close = difflib.get_close_matches(str(key), sorted(_TOP_KEYS), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        _log.warning(
            "%sno %r section: the top-level keys %s are connectors settings, but %s %s not, "
            "so none of them is read and no connectors are configured",
            where,
            _SECTION,
            sorted(known),
            ", ".join(hints),
            "is" if len(unknown) == 1 else "are",
        )


def parse_config(
    data: Mapping[str, Any], *, base_dir: Path | None = None, source: str | None = None
) -> LoaderConfig:
    """Parse a whole ModelMesh config (with ``connectors:``) or just the section.

    A top-level key that looks like a misspelled ``connectors`` (``connector``,
    ``Connectors``, ``conectors``) is logged as a warning with the suggestion.

    Args:
        data: The mapping.
        base_dir: Directory relative paths are resolved against (default: cwd).
        source: The file the mapping was read from, named in warnings.

    Returns:
        The parsed configuration.

    Raises:
        ConfigError: naming the key and what is wrong.
    """
    base = base_dir or Path.cwd()
    if not isinstance(data, Mapping):
        raise ConfigError(f"configuration must be a mapping, got {type(data).__name__}")
    _warn_misspelled_section(data, source)
    raw: Any = (
        data.get("connectors", {})
        if "connectors" in data
        else (data if set(data) <= _TOP_KEYS else {})
    )
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"connectors: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"connectors: unknown key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
    packages_raw = raw.get("packages", [])
    if not isinstance(packages_raw, list):
        raise ConfigError(f"connectors.packages: expected a list, got {packages_raw!r}")
    packages: list[PackageSpec] = []
    for i, entry in enumerate(packages_raw):
        try:
            packages.append(parse_package_spec(entry, base_dir=base))
        except InvalidPackageSpec as exc:
            raise ConfigError(f"connectors.packages[{i}]: {exc}") from exc
    timeouts = raw.get("timeouts", {}) or {}
    if not isinstance(timeouts, Mapping) or set(timeouts) - _TIMEOUT_KEYS:
        raise ConfigError(
            "connectors.timeouts: expected a mapping with keys "
            f"{'/'.join(sorted(_TIMEOUT_KEYS))}, got {short_repr(timeouts)}"
        )
    defaults = NetworkConfig()
    network = NetworkConfig(
        connect_timeout=_positive_duration(
            timeouts.get("connect", defaults.connect_timeout), key="timeouts.connect"
        ),
        read_timeout=_positive_duration(
            timeouts.get("read", defaults.read_timeout), key="timeouts.read"
        ),
        transfer_timeout=_positive_duration(
            timeouts.get("transfer", defaults.transfer_timeout), key="timeouts.transfer"
        ),
        min_rate=parse_rate(timeouts.get("min_rate", defaults.min_rate), key="timeouts.min_rate"),
        run_timeout=_positive_duration(
            timeouts.get("run", defaults.run_timeout), key="timeouts.run"
        ),
        retries=_int(raw, "retries", defaults.retries, minimum=0),
        allow_http=_bool(raw, "allow_http", False),
        ca_bundle=_path(raw, "ca_bundle", base),
        concurrency=_int(raw, "concurrency", defaults.concurrency, minimum=1),
        auth=_auth(raw),
        netrc=_netrc(raw, base),
    )
    config = LoaderConfig(
        packages=tuple(packages),
        index=_index(raw),
        trust_root=_path(raw, "trust_root", base),
        cache_dir=_path(raw, "cache_dir", base),
        require_signatures=_bool(raw, "require_signatures", False),
        offline=_bool(raw, "offline", False),
        max_expired_age=parse_duration(raw.get("max_expired_age", 0), key="max_expired_age"),
        metadata_max_age=parse_duration(raw.get("metadata_max_age", 300), key="metadata_max_age"),
        prereleases=_bool(raw, "prereleases", False),
        locked=_bool(raw, "locked", False),
        lock_file=_path(raw, "lock_file", base),
        allow_unpinned_directories=_bool(raw, "allow_unpinned_directories", False),
        bundle=_path(raw, "bundle", base),
        network=network,
        limits=Limits(
            max_metadata_bytes=_int(
                raw, "max_metadata_bytes", Limits().max_metadata_bytes, minimum=1024
            )
        ),
        base_dir=base,
    )
    needs_trust = bool(config.index or config.bundle) or any(
        not isinstance(p, LocalSpec) for p in config.packages
    )
    if needs_trust and config.trust_root is None:
        raise ConfigError(
            "connectors.trust_root: required when an index, a bundle or a remote package is "
            "configured (the root of trust: keys/root.json)"
        )
    if config.locked and config.lock_file is None:
        config = LoaderConfig(**{**config.__dict__, "lock_file": base / "connectors.lock"})
    return config


def _lies_inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` is ``directory`` or below it, however either is spelled.

    Both sides are resolved (symlinks, ``..``) before their spellings are compared (case
    folded where the platform folds it); then the file identity (device, inode) of every
    ancestor of ``path`` is compared with ``directory``'s, which catches other spellings of
    the same directory (case on a case-insensitive file system, a bind mount); last, a
    hard-linked ``path`` is compared with the root copies a mirror carries
    (``keys/root.json``, ``root/*.json``). A path that cannot be resolved at all counts as
    outside: it cannot be read either, and reading it fails closed.
    """
    try:
        real = Path(os.path.realpath(path))
        real_dir = Path(os.path.realpath(directory))
    except (OSError, ValueError):
        return False
    spelled, within = os.path.normcase(real), os.path.normcase(real_dir)
    if spelled == within or spelled.startswith(within.rstrip(os.sep) + os.sep):
        return True
    try:
        dir_id = _file_id(real_dir)
    except OSError:
        return False  # no such directory: nothing can lie inside it
    for parent in (real, *real.parents):
        try:
            if _file_id(parent) == dir_id:  # the same directory under another name
                return True
        except OSError:
            continue
    try:
        if real.stat().st_nlink > 1:  # a hard link to the copy a mirror carries
            file_id = _file_id(real)
            copies = [real_dir / "keys" / "root.json", *real_dir.glob("root/*.json")]
            return any(_same_file(file_id, copy) for copy in copies)
    except OSError:
        return False
    return False


def _file_id(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def _same_file(file_id: tuple[int, int], other: Path) -> bool:
    try:
        return _file_id(other) == file_id
    except OSError:
        return False


def load_config(path: str | Path) -> LoaderConfig:
    """Read a YAML file and parse its ``connectors:`` section (paths relative to the file).

    Raises:
        ConfigError: unreadable file, invalid YAML (a key repeated in one mapping too,
            naming both lines), or an invalid section.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read configuration: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: configuration is not UTF-8: {exc}") from exc
    try:
        data = load_yaml(text, source=str(p)) or {}
    except DuplicateKeyError as exc:
        # Last-wins would let a later line silently undo a setting (require_signatures).
        raise ConfigError(f"{p}: {exc}", hint="keep one of the two lines") from exc
    except YamlInputError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{p}: configuration must be a mapping")
    try:
        return parse_config(data, base_dir=p.resolve().parent, source=str(p))
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc.message}", hint=exc.hint) from exc
