"""The loader: resolve → download → verify → cache → (import → register).

Every ``connectors.packages`` entry becomes a :class:`VerifiedArchive` (bytes whose hash,
length and signature were checked against the trust root and the current signed index state)
or a local package; only then is anything imported. Downloads stream into the content-addressed
cache with a hard cap at the signed length and become visible only after the hash matched.

One module, over 600 lines, on purpose: it orchestrates one run, and its steps share the
run's state (one trusted view, one fetcher, one lock policy); every piece with a concept of
its own already lives beside it (binding, resolve, cache, updater, failover, fetcher).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from modelmesh_connectors._internal.digest import check_digest, sha256_hex
from modelmesh_connectors._internal.redact import redact_url
from modelmesh_connectors.client.binding import (
    bind_release,
    url_file_name,
    url_is_under,
)
from modelmesh_connectors.client.cache import ArchiveCache
from modelmesh_connectors.client.config import (
    LoaderConfig,
)
from modelmesh_connectors.client.failover import Failover
from modelmesh_connectors.client.file_fetch import DirectoryFetcher, path_to_url
from modelmesh_connectors.client.resolve import Candidate, ResolvedArchive, choose
from modelmesh_connectors.client.state import MetadataStore
from modelmesh_connectors.client.updater import IndexView, Mirror
from modelmesh_connectors.errors import (
    CacheError,
    ConfigError,
    DownloadError,
    HashMismatchError,
    MissingEntryPointError,
    NotFoundError,
    PolicyError,
    ResolutionError,
    TrustError,
)
from modelmesh_connectors.index.metadata import Release
from modelmesh_connectors.index.trust import TrustedState, anchor_identity, check_archive
from modelmesh_connectors.package.origin import Origin
from modelmesh_connectors.package.package import (
    Package,
    open_local_package,
    package_from_bytes,
    read_local_zip,
)
from modelmesh_connectors.package.requirements import (
    LocalSpec,
    PackageSpec,
    RequirementSpec,
    UrlSpec,
    parse_package_spec,
)

if TYPE_CHECKING:
    from modelmesh_connectors.client.fetcher import Fetcher, Sink
    from modelmesh_connectors.client.lockfile import LockEntry, LockPolicy

__all__ = ["Loader"]

_T = TypeVar("_T")
_R = TypeVar("_R")

_FAST_ROUND_TRIP: Final = 0.002  # seconds: a request answered this fast is on a fast link
# Threads worth running on a fast link: the work there is CPU (parse, hash, write), so one
# per spare core; more only contend for the interpreter lock. Measured on 2 cores over
# loopback (bench.py, ABBA): 4 threads -> 1 took cold 50 x 10 KiB from 1.85 to 1.43 x tuf,
# 200 x 100 KiB 1.76 -> 1.36 x, 50 x 1 MiB 1.44 -> 1.22 x (1.76 -> 1.20 x the floor).
_FAST_LINK_WORKERS: Final = max(1, min(4, (os.cpu_count() or 2) - 1))

_log = logging.getLogger("modelmesh_connectors.client.loader")

_PARALLEL_HASH_BYTES = 4 * 1024 * 1024  # cached bytes to re-hash above which two threads do it
_HASH_THREADS = 2  # sha256 is memory-bound: more threads than this gain little


def _map(work: Callable[[_T], _R], items: Sequence[_T], workers: int, name: str) -> list[_R]:
    """``work`` over ``items`` in order: in this thread for one worker, else on a pool."""
    if workers <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        return list(pool.map(work, items))


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
        cache_dir = config.resolved_cache_dir()  # the one resolver, as the CLI's
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
            # The only guard: every network fetch (archive URLs and their .sig, network
            # mirrors) asks for the fetcher here, so offline mode never opens a socket.
            raise PolicyError(
                "offline mode: no network request may be made",
                hint="offline, packages come from the cache or a bundle: load them by "
                "requirement; an archive URL entry needs the network",
            )
        if self._http is None:
            # Lazy: httpx and netrc cost ~60 ms to import; a warm start from the cache never
            # makes a request and must not pay for them.
            from modelmesh_connectors.client.credentials import load_credentials
            from modelmesh_connectors.client.fetch import HttpFetcher

            net = self.config.network
            # The run deadline counts from here (the first request) to close().
            self._http = HttpFetcher(
                net, credentials=load_credentials(dict(net.auth), netrc_file=net.netrc)
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
            ConfigError: no ``trust_root`` configured, or it lies inside the bundle, the
                cache or a ``file://`` mirror (a trust root never comes from the medium it
                is meant to check).
            TrustError: it cannot be read.
        """
        if self._anchor is None:
            if self.config.trust_root is None:
                raise ConfigError(
                    "connectors.trust_root: required to verify signed packages",
                    hint="point it at the shipped keys/root.json",
                )
            self.config.check_trust_root_placement()
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

        Its local state is the record of the trust root (:func:`~.trust.trust_root_id` of
        the anchor), shared by every mirror list, the bundle and offline mode.

        Raises:
            ConfigError: neither an index nor a bundle is configured; see :meth:`anchor`.
            TrustError: the anchor cannot be read or does not verify.
        """
        if self._view is None:
            urls = list(self.config.index)
            if self.config.bundle is not None:
                urls.append(path_to_url(self.config.bundle))
            if not urls:
                raise ConfigError(
                    "connectors.index: a requirement needs an index (or a bundle) to resolve"
                )
            anchor = self.anchor()
            # One check of the anchor's signature serves the identity and the view.
            anchor_root, identity = anchor_identity(anchor)
            # One record per trust root, whatever the mirror list: keyed by the first
            # mirror's URL, a reordered list started with no rollback reference.
            self._view = IndexView(
                anchor=anchor,
                anchor_root=anchor_root,
                store=self._store.trust_root(identity),
                legacy=self._store.origins,
                mirrors=[self._mirror(u) for u in urls],
                now=self._now,
                offline=self.config.offline,
                max_expired_age=self.config.max_expired_age,
                metadata_max_age=self.config.metadata_max_age,
                limits=self.config.limits,
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
        resolved = self._resolve(spec)
        self._save_verified_releases()
        return resolved

    def _save_verified_releases(self) -> None:
        if self._view is None:
            return
        try:
            self._view.save_verified_releases()
        except CacheError as exc:  # only costs the next run a signature check per release
            _log.warning("cannot record the verified releases: %s", exc)

    def _resolve(self, spec: PackageSpec) -> ResolvedArchive | LocalSpec:
        self._apply_configured_lock()
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
        chosen = choice.candidate.version
        entry = next(e for e in entries if e.version == chosen)
        # Signature checked once per root; later runs accept the same envelope by its
        # digest (it is reached by hash from the verified top: FORMAT.md §4 step 6).
        release, signers = view.verify_release(spec.name, entry)
        return ResolvedArchive(
            spec,
            release.name,
            release.version,
            release.sha256,
            release.length,
            view.archive_urls(release.file),
            release,
            tuple(sorted(signers)),
            view.source,
        )

    def _resolve_url(self, spec: UrlSpec) -> ResolvedArchive:
        # Refuse an ambiguous path before any request: the name must be unambiguous.
        file_name = url_file_name(spec.url)
        fetcher = self._fetcher_for(spec.url)
        mirror = self._mirror(spec.url.rsplit("/", 1)[0] + "/")
        try:
            # Capped: a hostile server's endless .sig ends in LengthMismatchError.
            sig = fetcher.fetch_bytes(
                spec.url + ".sig", max_length=self.config.limits.max_signature_bytes
            )
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
            return ResolvedArchive(
                spec,
                file_name,
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
        # Any release the keys ever signed verifies; only this binds it to the entry.
        bind_release(release, file_name, where=redact_url(spec.url))
        if spec.sha256 is not None:
            check_digest(
                f"{redact_url(spec.url)}: the configured pin does not match the signed release",
                release.sha256,
                spec.sha256,
            )
        if self.config.index or self.config.bundle:
            self._check_url_against_index(spec, release)
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

    def _index_bases(self) -> list[str]:
        bases = list(self.config.index)
        if self.config.bundle is not None:
            bases.append(path_to_url(self.config.bundle))
        return bases

    def _check_url_against_index(self, spec: UrlSpec, release: Release) -> None:
        """With an index configured, a signed URL entry must be a release the index lists.

        The index is authoritative for every name it lists, wherever the URL points: the
        release must be listed under that name and version with the same sha256 and length
        (a removed or replaced release cannot come back through another host), and a yanked
        one loads only when the entry pins its hash. A URL into a configured index must name
        a package the index lists at all; a URL elsewhere may carry a package the index does
        not know (a publisher's own host), bound by name, version and signature alone.

        Raises:
            ResolutionError: not listed, or yanked and not pinned by hash.
            HashMismatchError: listed with another sha256 or length.
            TrustError, DownloadError: the index state or its nodes fail.
        """
        where = redact_url(spec.url)  # messages and logs never carry credentials
        view = self.view()
        into_index = any(url_is_under(spec.url, base) for base in self._index_bases())
        try:
            entries = view.releases(release.name)
        except ResolutionError:
            if into_index:
                raise ResolutionError(
                    f"{where}: {release.name} {release.version} is signed, but the current "
                    f"index this URL points into does not list {release.name} at all"
                ) from None
            _log.info(
                "%s: %s is not in the index; bound by name, version and signature only",
                where,
                release.name,
            )
            return
        entry = next((e for e in entries if e.version == release.version), None)
        if entry is None:
            listed = ", ".join(e.version for e in entries) or "none"
            raise ResolutionError(
                f"{where}: {release.name} {release.version} is signed, but the current "
                f"index does not list that version (listed: {listed}); a release removed from "
                "the index is not loaded from elsewhere"
            )
        listed_release = view.state().verify_bin_release(release.name, entry)
        if (listed_release.sha256, listed_release.length) != (release.sha256, release.length):
            raise HashMismatchError(
                f"{where}: {release.name} {release.version}: the index lists sha256 "
                f"{listed_release.sha256} ({listed_release.length} bytes), the URL's signature "
                f"says {release.sha256} ({release.length} bytes)"
            )
        if entry.yanked:
            reason = f": {entry.yanked_reason}" if entry.yanked_reason else ""
            if spec.sha256 is None:
                raise ResolutionError(
                    f"{where}: {release.name} {release.version} is yanked{reason}",
                    hint=f"pin it with '#sha256={release.sha256}' to load it anyway",
                )
            _log.warning(
                "%s %s is yanked%s (used because pinned by hash)",
                release.name,
                release.version,
                reason,
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
        label = f"{resolved.name} {resolved.version}"

        def attempt(item: tuple[str, Mirror]) -> Path:
            url = item[0]
            fetcher = self._fetcher_for(url)
            if keep is not None:
                keep.clear()  # chunks of a failed mirror are never returned

            def write_into(sink: Sink) -> None:
                tee = _TeeSink(sink, label, length, self._progress, keep)
                fetcher.fetch_to(url, tee, max_length=length)

            path = self.cache.fetch(resolved.sha256, length, write_into)
            if _log.isEnabledFor(logging.INFO):  # redacting costs a URL parse per archive
                _log.info("%s from %s", label, redact_url(url))
            return path

        usable = [u for u in resolved.urls if not (self.config.offline and u[1].network)]
        return self._failover().first(
            usable,
            attempt,
            what=label,
            name=lambda item: redact_url(item[0]),
            when_none=lambda: DownloadError(
                f"{label} (sha256 {resolved.sha256[:12]}…) is not cached and offline mode "
                "allows no download",
                hint="install it while online, or add a bundle that holds it",
            ),
        )

    def _fetch_pinned(self, resolved: ResolvedArchive) -> bytes:
        """An unsigned archive trusted by its configured ``#sha256=`` pin alone.

        Its length is unknown, so it is read into memory under the archive cap, hashed,
        compared with the pin, and only then written to the cache.
        """
        cached = self.cache.path_for(resolved.sha256)
        if cached.is_file():
            try:
                return self.cache.read_verified(resolved.sha256, cached.stat().st_size)
            except (TrustError, OSError) as exc:
                _log.warning("cached %s failed verification: %s", resolved.sha256[:12], exc)
        url, _mirror = resolved.urls[0]
        data = self._fetcher_for(url).fetch_bytes(
            url, max_length=self.config.limits.max_archive_bytes
        )
        check_digest(
            f"{redact_url(url)} (the configured #sha256 pin)", resolved.sha256, sha256_hex(data)
        )
        self.cache.fetch(resolved.sha256, len(data), lambda sink: sink.write(data))
        return data

    # -- whole runs ---------------------------------------------------------------------------

    def use_lock(self, lock: LockPolicy) -> None:
        """Install exactly what ``lock`` pins; refuse anything else."""
        self._lock = lock

    def _apply_configured_lock(self) -> None:
        """With ``locked: true``, read the lock before the first entry resolves.

        Every way in (a whole run, ``install``, ``registry.load_package``, ``mirror``)
        passes here, so none of them can load something the lock does not pin.

        Raises:
            ConfigError: no lock file configured, or it cannot be read.
        """
        if self.config.locked and self._lock is None:
            if self.config.lock_file is None:
                raise ConfigError("connectors.lock_file: required with locked: true")
            from modelmesh_connectors.client.lockfile import LockFile  # only when locked

            self._lock = LockFile.read(self.config.lock_file)

    def resolve_all(self, specs: Sequence[PackageSpec]) -> list[ResolvedArchive | LocalSpec]:
        """Resolve every entry (metadata only; sequential, one index refresh)."""
        self._apply_configured_lock()
        names = sorted({s.name for s in specs if isinstance(s, RequirementSpec)})
        if len(names) > 1:
            # Distinct group and bin nodes that are not stored yet are fetched together;
            # a warm run (every node stored) starts no thread.
            self.view().prefetch(names, self._parallel)
        resolved = [self._resolve(s) for s in specs]
        self._save_verified_releases()
        if self._lock is not None:
            self._lock.check_complete([r for r in resolved if isinstance(r, ResolvedArchive)])
        return resolved

    def install(self, specs: Sequence[PackageSpec]) -> list[tuple[ResolvedArchive, Path]]:
        """Resolve and download every remote entry concurrently into the cache (no import).

        Archives stream to disk; none is held in memory (peak memory is a few chunks).
        """
        remote = [r for r in self.resolve_all(specs) if isinstance(r, ResolvedArchive)]
        # Cached archives are checked (re-hashed) here, before any download; only the
        # misses go to the download threads, so a warm run starts none.
        paths = dict(zip((id(r) for r in remote), self._lookup_all(remote), strict=True))
        misses = [r for r in remote if paths[id(r)] is None]
        done = self._parallel(self.ensure_cached, misses)
        paths.update(zip((id(r) for r in misses), done, strict=True))
        return [(r, path) for r in remote if (path := paths[id(r)]) is not None]

    def _lookup_all(self, remote: Sequence[ResolvedArchive]) -> list[Path | None]:
        """:meth:`_lookup` of every entry; on two threads when there is much to re-hash.

        Every entry is re-hashed either way; ``sha256`` releases the GIL, so two threads
        halve the wall time of a large warm run. Small sets stay in this thread: starting
        a pool costs about a millisecond.
        """
        total = sum(r.length or 0 for r in remote)
        if total < _PARALLEL_HASH_BYTES or len(remote) < 2:
            return [self._lookup(r) for r in remote]
        # One contiguous share of about equal bytes per thread, not one task per archive:
        # a task per 100 KiB archive spends more on handing work and the interpreter lock
        # between threads than it gains (20 MiB in 200 entries: 11.9 ms per task vs 8.4 ms
        # in two shares, 13.8 ms on one thread, best of 20 on 2 cores).
        shares = _split_by_bytes(remote, _HASH_THREADS)
        done = _map(self._lookup_share, shares, len(shares), "mmc-hash")
        return [path for share in done for path in share]

    def _lookup_share(self, share: Sequence[ResolvedArchive]) -> list[Path | None]:
        return [self._lookup(r) for r in share]

    def _lookup(self, resolved: ResolvedArchive) -> Path | None:
        """The verified cache entry of a signed archive, or ``None`` (also when unsigned)."""
        if resolved.length is None:
            return None
        return self.cache.lookup(resolved.sha256, resolved.length)

    def _parallel(self, work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        # Threads only for two or more items: starting a pool costs ~1 ms.
        workers = max(1, min(self.config.network.concurrency, len(items)))
        round_trip = self._http.round_trip if self._http is not None else None
        if round_trip is not None and round_trip < _FAST_ROUND_TRIP:
            # On a link this fast (loopback, LAN) a transfer waits for the CPU, not the
            # network: more threads than a few only contend for the interpreter lock.
            workers = min(workers, _FAST_LINK_WORKERS)
        return _map(work, items, workers, "mmc-fetch")

    def load(self, specs: Sequence[PackageSpec]) -> list[tuple[Package, Origin]]:
        """Resolve, download and verify every entry; return packages ready to import.

        Raises:
            ConnectorError: the first failure; nothing is imported by this method.
        """
        resolved = self.resolve_all(specs)
        remote = [r for r in resolved if isinstance(r, ResolvedArchive)]
        for archive in remote:
            _check_python_runtime(archive.release)  # before downloading what cannot be loaded
        # Cached archives are read and re-hashed here, in this thread; only the misses go
        # to the download threads, so a warm start starts none.
        blobs = {id(r): self._cached(r) if r.length is not None else None for r in remote}
        misses = [r for r in remote if blobs[id(r)] is None]
        fetched = self._parallel(self.fetch_archive, misses)
        blobs.update(zip((id(r) for r in misses), fetched, strict=True))
        out: list[tuple[Package, Origin]] = []
        for item in resolved:
            if isinstance(item, LocalSpec):
                out.append(self._local_package(item))
                continue
            blob = blobs[id(item)]
            assert blob is not None
            package = package_from_bytes(blob, source=f"{item.name}-{item.version}.zip")
            if item.release is not None:
                _check_manifest_matches(item.release, package)
            out.append((package, item.origin))
        return out

    def _local_package(self, spec: LocalSpec) -> tuple[Package, Origin]:
        package, origin = self._open_local(spec)
        if self._lock is not None:
            self._lock.check_local(self._local_pin(spec, package, origin))
        return package, origin

    def pin_local(self, spec: LocalSpec) -> LockEntry:
        """Read (and, under ``require_signatures``, verify) a local entry; return its pin.

        Raises:
            PolicyError, TrustError, PackageError: as loading it would.
        """
        package, origin = self._open_local(spec)
        return self._local_pin(spec, package, origin)

    def _local_pin(self, spec: LocalSpec, package: Package, origin: Origin) -> LockEntry:
        from modelmesh_connectors.client.lockfile import LockEntry  # only for local entries

        # Absolute, normalized, symlinks not resolved: the path the configuration names.
        key = os.path.abspath(spec.path)
        return LockEntry(
            package.manifest.name,
            package.manifest.version,
            package.sha256,
            package.length,
            key,
            "local",
            origin.signed_by,
            kind="local-zip" if package.is_archive else "directory",
            path=key,
        )

    def _open_local(self, spec: LocalSpec) -> tuple[Package, Origin]:
        if spec.path.is_dir() and self.config.locked and not self.config.allow_unpinned_directories:
            # A directory has no fixed bytes to pin: 'locked' would silently load whatever
            # the tree holds today.
            raise PolicyError(
                f"{spec.path}: locked mode loads only pinned packages, and a directory is not "
                "pinned",
                hint="pack it (modelmesh-connectors pack) and lock the zip, or opt in with "
                "'allow_unpinned_directories: true' (the lock must still name the directory)",
            )
        if not self.config.require_signatures:
            return open_local_package(spec.path), Origin("local", str(spec.path.resolve()))
        if spec.path.is_dir() or spec.path.suffix.lower() != ".zip":
            raise PolicyError(
                f"{spec.path}: require_signatures is on and a directory cannot be signed",
                hint="pack it and publish it, or turn require_signatures off for development",
            )
        sig_path = spec.path.with_name(spec.path.name + ".sig")
        cap = self.config.limits.max_signature_bytes
        try:
            with open(sig_path, "rb") as handle:
                sig = handle.read(cap + 1)
        except OSError as exc:
            raise PolicyError(
                f"{spec.path}: require_signatures is on but {sig_path} cannot be read: {exc}"
            ) from exc
        if len(sig) > cap:
            raise PolicyError(f"{sig_path}: over the {cap}-byte signature cap")
        state = self._root_state()
        release, signer_set = state.verify_release_signed(sig)
        # The same binding as for URLs: a signed zip renamed to another release's name
        # (an older one, another package) is refused.
        bind_release(release, spec.path.name, where=str(spec.path))
        # Verify, then parse: the zip reader only sees bytes that match the signature.
        data = read_local_zip(spec.path)
        check_archive(release, sha256=sha256_hex(data), length=len(data))
        package = package_from_bytes(data, source=str(spec.path))
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


def _split_by_bytes(
    remote: Sequence[ResolvedArchive], parts: int
) -> list[Sequence[ResolvedArchive]]:
    """``remote`` in order, cut into at most ``parts`` runs of about equal signed length."""
    total = sum(r.length or 0 for r in remote)
    shares: list[Sequence[ResolvedArchive]] = []
    start, done = 0, 0
    for i, r in enumerate(remote):
        done += r.length or 0
        if len(shares) < parts - 1 and done * parts >= total * (len(shares) + 1):
            shares.append(remote[start : i + 1])
            start = i + 1
    if start < len(remote):
        shares.append(remote[start:])
    return shares


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


def _check_python_runtime(release: Release | None) -> None:
    """A release whose connectors have no Python entry point cannot be loaded here."""
    if release is not None and "python" not in release.runtimes:
        raise MissingEntryPointError(
            f"{release.name} {release.version} has no Python entry point: the signed release "
            f"is for {', '.join(release.runtimes)} only",
            hint="load it with the Node client, or pick a release with a Python entry",
        )


def _check_manifest_matches(release: Release, package: Package) -> None:
    """The signed release must describe the manifest inside the archive exactly.

    Stops a publisher key scoped to one namespace from signing a release that lists its own
    connector IDs while the archive's manifest declares another namespace's.
    """
    m = package.manifest
    signed = sorted((c.id, c.type) for c in release.connectors)
    declared = sorted((c.id, c.type.value) for c in m.connectors)
    if (
        (release.name, release.version) != (m.name, m.version)
        or signed != declared
        or release.runtimes != m.runtimes
    ):
        raise PolicyError(
            f"{release.name} {release.version}: the signed release declares {signed} but the "
            f"archive's manifest is {m.name} {m.version} declaring {declared} (runtimes: "
            f"signed {list(release.runtimes)}, declared {list(m.runtimes)})"
        )
