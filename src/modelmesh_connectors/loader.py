"""The loader: resolve → download → verify → cache → (import → register).

Every ``connectors.packages`` entry becomes a :class:`VerifiedArchive` (bytes whose hash,
length and signature were checked against the trust root and the current signed index state)
or a local package; only then is anything imported. Downloads stream into the content-addressed
cache with a hard cap at the signed length and become visible only after the hash matched.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .cache import ArchiveCache
from .config import LoaderConfig, load_config, parse_config
from .credentials import redact_url
from .directory_fetcher import DirectoryFetcher, path_to_url
from .errors import (
    CacheError,
    ConfigError,
    DownloadError,
    HashMismatchError,
    NotFoundError,
    PolicyError,
    TrustError,
)
from .failover import Failover
from .index_view import IndexView, Mirror
from .metadata import Release
from .package import Package, open_local_package, package_from_bytes
from .registry import ConnectorRegistry, Origin
from .requirements import LocalSpec, PackageSpec, RequirementSpec, UrlSpec, parse_package_spec
from .resolve import Candidate, choose
from .statestore import MetadataStore
from .trust import TrustedState

if TYPE_CHECKING:
    from .download import Fetcher, Sink
    from .lockfile import LockPolicy

__all__ = ["Loader", "ResolvedArchive", "build_registry"]

_T = TypeVar("_T")
_R = TypeVar("_R")

_log = logging.getLogger("modelmesh_connectors.loader")

MAX_SIGNATURE_BYTES = 64 * 1024  # bytes; a release envelope is well under 2 KiB


@dataclass(frozen=True)
class ResolvedArchive:
    """An archive chosen for one entry, verified or about to be.

    Attributes:
        spec: The entry it answers.
        name: Package name.
        version: Package version.
        sha256: Signed (or pinned) sha256 of the archive.
        length: Signed length in bytes (None only for a pin-only URL).
        urls: Where to fetch it, in order (mirrors).
        release: The verified release attestation, if signed.
        signed_by: Key IDs with a valid signature on the release.
        source: Human description of where it came from (index URL or archive URL).
    """

    spec: PackageSpec
    name: str
    version: str
    sha256: str
    length: int | None
    urls: tuple[tuple[str, Mirror], ...]
    release: Release | None
    signed_by: tuple[str, ...]
    source: str

    @property
    def origin(self) -> Origin:
        """The registry origin for packages loaded from this archive."""
        return Origin("package", f"{self.name}@{self.version} from {self.source}", self.signed_by)


class Loader:
    """Turns package entries into verified packages for one run.

    Create one per run: it holds one HTTP client (connection reuse), one trusted index
    view (refreshed once) and the cache.

    Args:
        config: The ``connectors:`` configuration.
        now: Reference time (default: the current UTC time, read once).
        fetcher: Replace the network seam (unit tests).
        progress: Called as ``progress(name, bytes_so_far, total)`` while archives download
            (the CLI draws a bar with it on a terminal).
    """

    def __init__(
        self,
        config: LoaderConfig,
        *,
        now: datetime | None = None,
        fetcher: Fetcher | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.config = config
        self._progress = progress
        self._now = now or datetime.now(UTC)
        self._http: Fetcher | None = fetcher
        self._local = DirectoryFetcher()
        cache_dir = config.resolved_cache_dir()
        self.cache = ArchiveCache(cache_dir)
        self._store = MetadataStore(cache_dir)
        self._view: IndexView | None = None
        self._anchor: bytes | None = None
        self._lock: LockPolicy | None = None

    # -- plumbing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP client, if one was created."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _http_fetcher(self) -> Fetcher:
        if self.config.offline:
            # Defence in depth: offline mode must never open a socket.
            raise PolicyError("offline mode: no network request may be made")
        if self._http is None:
            from .credentials import load_credentials
            from .download import DownloadConfig, HttpFetcher

            net = self.config.network
            # The run deadline counts from here (the first request) to close().
            self._http = HttpFetcher(
                DownloadConfig(
                    connect_timeout=net.connect_timeout,
                    read_timeout=net.read_timeout,
                    transfer_timeout=net.transfer_timeout,
                    min_rate=net.min_rate,
                    run_timeout=net.run_timeout,
                    retries=net.retries,
                    allow_http=net.allow_http,
                    ca_bundle=str(net.ca_bundle) if net.ca_bundle else None,
                ),
                credentials=load_credentials(dict(net.auth), netrc_file=net.netrc),
            )
        return self._http

    def _failover(self) -> Failover:
        """Rounds over the mirror list: unreachable or timed-out mirrors get ``retries`` more."""
        return Failover(retries=self.config.network.retries)

    def _fetcher_for(self, url: str) -> Fetcher:
        return self._local if url.startswith("file://") else self._http_fetcher()

    def _mirror(self, url: str) -> Mirror:
        local = url.startswith("file://")
        return Mirror(url, (lambda: self._local) if local else self._http_fetcher, not local)

    def anchor(self) -> bytes:
        """The shipped trust root bytes.

        Raises:
            ConfigError: no ``trust_root`` configured, or it cannot be read.
        """
        if self._anchor is None:
            if self.config.trust_root is None:
                raise ConfigError(
                    "connectors.trust_root: required to verify signed packages",
                    hint="point it at the shipped keys/root.json",
                )
            try:
                self._anchor = self.config.trust_root.read_bytes()
            except OSError as exc:
                # Fail closed: a missing trust root is never replaced by a downloaded one.
                raise TrustError(
                    f"cannot read the trust root {self.config.trust_root}: {exc}"
                ) from exc
        return self._anchor

    def view(self) -> IndexView:
        """The trusted index view (mirrors: ``index:`` URLs, then ``bundle:``).

        Raises:
            ConfigError: neither an index nor a bundle is configured.
        """
        if self._view is None:
            urls = list(self.config.index)
            if self.config.bundle is not None:
                urls.append(path_to_url(self.config.bundle))
            if not urls:
                raise ConfigError(
                    "connectors.index: a requirement needs an index (or a bundle) to resolve"
                )
            key = urls[0]
            self._view = IndexView(
                anchor=self.anchor(),
                store=self._store.origin(key),
                mirrors=[self._mirror(u) for u in urls],
                now=self._now,
                offline=self.config.offline,
                max_expired_age=self.config.max_expired_age,
                metadata_max_age=self.config.metadata_max_age,
                max_metadata_bytes=self.config.network.max_metadata_bytes,
                failover=self._failover(),
            )
        return self._view

    def _root_state(self) -> TrustedState:
        """A trusted state for verifying detached signatures: the index's if configured."""
        if self.config.index or self.config.bundle:
            return self.view().state()
        return TrustedState(self.anchor(), self._now)

    # -- resolution ---------------------------------------------------------------------------

    def resolve(self, spec: PackageSpec) -> ResolvedArchive | LocalSpec:
        """Decide exactly which archive answers an entry, verifying its signature.

        Raises:
            ResolutionError, TrustError, DownloadError, PolicyError: see the messages.
        """
        if isinstance(spec, LocalSpec):
            return spec
        if isinstance(spec, RequirementSpec):
            resolved = self._resolve_requirement(spec)
        else:
            resolved = self._resolve_url(spec)
        if self._lock is not None:
            self._lock.check(resolved)
        return resolved

    def _resolve_requirement(self, spec: RequirementSpec) -> ResolvedArchive:
        view = self.view()
        entries = view.releases(spec.name)
        candidates = [Candidate(e.version, e.yanked, e.yanked_reason) for e in entries]
        if self._lock is not None:
            pinned = self._lock.pinned_version(spec.name)
            if pinned is not None:
                candidates = [c for c in candidates if c.version == pinned] or candidates
        choice = choose(spec, candidates, prereleases=self.config.prereleases)
        if choice.warning:
            _log.warning(choice.warning)
        entry = next(e for e in entries if e.version == choice.candidate.version)
        state = view.state()
        release, signers = state.verify_bin_release_signed(spec.name, entry)
        return ResolvedArchive(
            spec,
            release.name,
            release.version,
            release.sha256,
            release.length,
            tuple(view.archive_urls(release.file)),
            release,
            tuple(sorted(signers)),
            redact_url(view.mirrors[0].url) if view.mirrors else "cache",
        )

    def _resolve_url(self, spec: UrlSpec) -> ResolvedArchive:
        fetcher = self._fetcher_for(spec.url)
        mirror = self._mirror(spec.url.rsplit("/", 1)[0] + "/")
        try:
            sig = fetcher.fetch_bytes(spec.url + ".sig", max_length=MAX_SIGNATURE_BYTES)
        except NotFoundError:
            if spec.sha256 is None or self.config.require_signatures:
                raise TrustError(
                    f"{redact_url(spec.url)}: no detached signature at "
                    f"{redact_url(spec.url + '.sig')}",
                    hint="pin the URL with '#sha256=<hex>' or load the package through the "
                    "signed index",
                ) from None
            _log.warning(
                "%s has no signature; trusting the configured sha256 pin", redact_url(spec.url)
            )
            name = spec.url.rsplit("/", 1)[-1]
            return ResolvedArchive(
                spec,
                name,
                "?",
                spec.sha256,
                None,
                ((spec.url, mirror),),
                None,
                (),
                f"{redact_url(spec.url)} (sha256 pin)",
            )
        state = self._root_state()
        release, signers = state.verify_release_signed(sig)
        if spec.sha256 is not None and spec.sha256 != release.sha256:
            raise HashMismatchError(
                f"{redact_url(spec.url)}: the configured pin sha256={spec.sha256} does not match "
                "the signed "
                f"sha256 {release.sha256}"
            )
        return ResolvedArchive(
            spec,
            release.name,
            release.version,
            release.sha256,
            release.length,
            ((spec.url, mirror),),
            release,
            tuple(sorted(signers)),
            redact_url(spec.url),
        )

    # -- download -----------------------------------------------------------------------------

    def fetch_archive(self, resolved: ResolvedArchive) -> bytes:
        """Return the archive's verified bytes, from the cache or the first mirror that works.

        The bytes returned are exactly the bytes that were hashed: the importer uses them.

        Raises:
            HashMismatchError, LengthMismatchError: every mirror served wrong bytes.
            DownloadError: no mirror could serve it (or offline and not cached).
            CacheError: the cache cannot be written.
        """
        if resolved.length is None:
            return self._fetch_pinned(resolved)
        data = self._cached(resolved)
        if data is not None:
            return data
        kept: list[bytes] = []
        self._download(resolved, kept)
        if kept:
            # The chunks the verifying sink hashed, in order: exactly the verified bytes.
            return b"".join(kept)
        return self.cache.read_verified(resolved.sha256, resolved.length)  # another process won

    def ensure_cached(self, resolved: ResolvedArchive) -> Path:
        """Make sure the archive is in the cache, verified, without holding it in memory.

        Returns:
            The cache entry's path.

        Raises:
            See :meth:`fetch_archive`.
        """
        if resolved.length is None:
            self._fetch_pinned(resolved)
            return self.cache.path_for(resolved.sha256)
        path = self.cache.lookup(resolved.sha256, resolved.length)
        if path is not None:
            return path
        return self._download(resolved, None)

    def _cached(self, resolved: ResolvedArchive) -> bytes | None:
        assert resolved.length is not None
        try:
            # One read, one hash: the bytes returned are the bytes checked.
            return self.cache.read_verified(resolved.sha256, resolved.length)
        except TrustError as exc:  # corrupt entry (already removed): a miss
            _log.warning("cached %s failed verification: %s", resolved.sha256[:12], exc)
        except CacheError:
            pass  # not cached
        return None

    def _download(self, resolved: ResolvedArchive, keep: list[bytes] | None) -> Path:
        """Stream the archive from the first mirror that serves the signed bytes."""
        length = resolved.length
        assert length is not None
        errors: list[str] = []
        first_trust: TrustError | None = None
        last_download: DownloadError | None = None
        rounds = self._failover().start()
        for url, mirror in rounds.over(resolved.urls):
            if self.config.offline and mirror.network:
                continue
            fetcher = self._fetcher_for(url)

            def write_into(sink: Sink, url: str = url, fetcher: Fetcher = fetcher) -> None:
                label = f"{resolved.name} {resolved.version}"
                fetcher.fetch_to(
                    url, _TeeSink(sink, label, length, self._progress, keep), max_length=length
                )

            try:
                path = self.cache.fetch(resolved.sha256, length, write_into)
            except (TrustError, DownloadError) as exc:
                rounds.failed((url, mirror), exc)
                _log.warning("archive %s failed: %s", redact_url(url), exc)
                errors.append(f"{redact_url(url)}: {exc}")
                if isinstance(exc, TrustError) and first_trust is None:
                    first_trust = exc
                if isinstance(exc, DownloadError):
                    last_download = exc
                if keep is not None:
                    keep.clear()
                continue
            _log.info("%s %s from %s", resolved.name, resolved.version, redact_url(url))
            return path
        if first_trust is not None:
            raise type(first_trust)(
                f"{resolved.name} {resolved.version}: {first_trust.message}",
                hint=first_trust.hint,
            ) from first_trust
        if not errors:
            raise DownloadError(
                f"{resolved.name} {resolved.version} (sha256 {resolved.sha256[:12]}…) is not "
                "cached and offline mode allows no download",
                hint="install it while online, or add a bundle that holds it",
            )
        raise DownloadError(
            f"{resolved.name} {resolved.version}: no mirror served it: " + "; ".join(errors)
        ) from last_download

    def _fetch_pinned(self, resolved: ResolvedArchive) -> bytes:
        """An unsigned archive trusted by its configured ``#sha256=`` pin alone.

        Its length is unknown, so it is read into memory under the archive cap, hashed,
        compared with the pin, and only then written to the cache.
        """
        from .package import MAX_ARCHIVE_BYTES

        cached = self.cache.path_for(resolved.sha256)
        if cached.is_file():
            try:
                return self.cache.read_verified(resolved.sha256, cached.stat().st_size)
            except (TrustError, OSError) as exc:
                _log.warning("cached %s failed verification: %s", resolved.sha256[:12], exc)
        url, _mirror = resolved.urls[0]
        data = self._fetcher_for(url).fetch_bytes(url, max_length=MAX_ARCHIVE_BYTES)
        got = hashlib.sha256(data).hexdigest()
        if got != resolved.sha256:
            raise HashMismatchError(
                f"{redact_url(url)}: sha256 mismatch: the configured pin is {resolved.sha256}, "
                f"got {got}"
            )
        self.cache.fetch(resolved.sha256, len(data), lambda sink: sink.write(data))
        return data

    # -- whole runs ---------------------------------------------------------------------------

    def use_lock(self, lock: LockPolicy) -> None:
        """Install exactly what ``lock`` pins; refuse anything else."""
        self._lock = lock

    def resolve_all(self, specs: Sequence[PackageSpec]) -> list[ResolvedArchive | LocalSpec]:
        """Resolve every entry (metadata only; sequential, one index refresh)."""
        names = sorted({s.name for s in specs if isinstance(s, RequirementSpec)})
        if len(names) > 1:
            view = self.view()
            view.state()  # one refresh, before the threads
            # Group and bin nodes of different packages are independent: fetch them together.
            self._parallel(view.releases, names)
        resolved = [self.resolve(s) for s in specs]
        if self._lock is not None:
            self._lock.check_complete([r for r in resolved if isinstance(r, ResolvedArchive)])
        return resolved

    def install(self, specs: Sequence[PackageSpec]) -> list[tuple[ResolvedArchive, Path]]:
        """Resolve and download every remote entry concurrently into the cache (no import).

        Archives stream to disk; none is held in memory (peak memory is a few chunks).
        """
        remote = [r for r in self.resolve_all(specs) if isinstance(r, ResolvedArchive)]
        return list(zip(remote, self._parallel(self.ensure_cached, remote), strict=True))

    def _parallel(self, work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        workers = max(1, min(self.config.network.concurrency, len(items)))
        if workers == 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmc-fetch") as pool:
            return list(pool.map(work, items))

    def load(self, specs: Sequence[PackageSpec]) -> list[tuple[Package, Origin]]:
        """Resolve, download and verify every entry; return packages ready to import.

        Raises:
            ConnectorError: the first failure; nothing is imported by this method.
        """
        resolved = self.resolve_all(specs)
        remote = [r for r in resolved if isinstance(r, ResolvedArchive)]
        blobs = dict(
            zip((id(r) for r in remote), self._parallel(self.fetch_archive, remote), strict=True)
        )
        out: list[tuple[Package, Origin]] = []
        for item in resolved:
            if isinstance(item, LocalSpec):
                out.append(self._local_package(item))
                continue
            package = package_from_bytes(blobs[id(item)], source=f"{item.name}-{item.version}.zip")
            if item.release is not None:
                _check_manifest_matches(item.release, package)
            out.append((package, item.origin))
        return out

    def _local_package(self, spec: LocalSpec) -> tuple[Package, Origin]:
        if not self.config.require_signatures:
            return open_local_package(spec.path), Origin("local", str(spec.path.resolve()))
        if spec.path.is_dir() or spec.path.suffix.lower() != ".zip":
            raise PolicyError(
                f"{spec.path}: require_signatures is on and a directory cannot be signed",
                hint="pack it and publish it, or turn require_signatures off for development",
            )
        sig_path = spec.path.with_name(spec.path.name + ".sig")
        try:
            sig = sig_path.read_bytes()
        except OSError as exc:
            raise PolicyError(
                f"{spec.path}: require_signatures is on but {sig_path} cannot be read: {exc}"
            ) from exc
        state = self._root_state()
        release, signer_set = state.verify_release_signed(sig)
        package = open_local_package(spec.path)
        from .trust import check_archive

        check_archive(release, sha256=package.sha256, length=package.length)
        _check_manifest_matches(release, package)
        signers = tuple(sorted(signer_set))
        return package, Origin(
            "package", f"{release.name}@{release.version} from {spec.path}", signers
        )

    # -- the registry's PackageSource ----------------------------------------------------------

    def fetch_package(self, spec: str) -> tuple[Package, Origin]:
        """Resolve, download and verify one ``load_package`` argument."""
        try:
            [(package, origin)] = self.load(
                [parse_package_spec(spec, base_dir=self.config.base_dir)]
            )
        finally:
            self.close()  # one-off call from the registry: release the connection pool
        return package, origin


class _TeeSink:
    """Forwards to the cache's verifying sink; optionally keeps the chunks and reports progress.

    Kept chunks are used only after the cache verified hash and length over the same chunks.
    """

    def __init__(
        self,
        inner: Sink,
        label: str,
        total: int,
        report: Callable[[str, int, int], None] | None,
        keep: list[bytes] | None,
    ) -> None:
        self._inner, self._label, self._total = inner, label, total
        self._report, self._keep = report, keep
        self._done = 0

    def write(self, data: bytes) -> None:
        self._inner.write(data)  # raises past the signed length before we keep anything
        if self._keep is not None:
            self._keep.append(bytes(data))
        self._done += len(data)
        if self._report is not None:
            self._report(self._label, self._done, self._total)

    def reset(self) -> None:
        self._inner.reset()
        if self._keep is not None:
            self._keep.clear()
        self._done = 0


def _check_manifest_matches(release: Release, package: Package) -> None:
    """The signed release must describe the manifest inside the archive exactly.

    Stops a publisher key scoped to one namespace from signing a release that lists its own
    connector IDs while the archive's manifest declares another namespace's.
    """
    m = package.manifest
    signed = sorted((c.id, c.type) for c in release.connectors)
    declared = sorted((c.id, c.type.value) for c in m.connectors)
    if (release.name, release.version) != (m.name, m.version) or signed != declared:
        raise PolicyError(
            f"{release.name} {release.version}: the signed release declares {signed} but the "
            f"archive's manifest is {m.name} {m.version} declaring {declared}"
        )


def _as_config(config: str | Path | Mapping[str, Any] | LoaderConfig) -> LoaderConfig:
    if isinstance(config, LoaderConfig):
        return config
    if isinstance(config, Mapping):
        return parse_config(config)
    return load_config(config)


def build_registry(
    config: str | Path | Mapping[str, Any] | LoaderConfig,
    *,
    now: datetime | None = None,
    fetcher: Fetcher | None = None,
) -> ConnectorRegistry:
    """A registry with the built-ins and every configured package, all or nothing.

    Every archive is resolved, downloaded and verified before the first import; a failure
    anywhere leaves no registry (and so nothing registered) behind.

    Raises:
        ConfigError: invalid configuration.
        ConnectorError: any package fails to resolve, verify or load.
    """
    cfg = _as_config(config)
    loader = Loader(cfg, now=now, fetcher=fetcher)
    registry = ConnectorRegistry(source=loader, require_signatures=cfg.require_signatures)
    with loader:
        if cfg.locked:
            from .lockfile import LockFile

            if cfg.lock_file is None:
                raise ConfigError("connectors.lock_file: required with locked: true")
            loader.use_lock(LockFile.read(cfg.lock_file))
        loaded = loader.load(cfg.packages)
        for package, origin in loaded:
            registry.add_package(package, origin)
    return registry
