"""One run's trusted view of a signed index: refresh once, then look packages up.

This is the I/O shell around the sans-I/O :class:`~modelmesh_connectors.index.trust.TrustedState`:
it feeds the trust core bytes from the local state store and from the mirrors, in the order
FORMAT.md §4 prescribes, and persists what the core accepted. Mirrors are tried in order;
a mirror that fails to answer or serves data that fails verification is skipped (it can
delay a load, never poison it), and all mirrors share one rollback reference: the store is
the record of the trust root (see :mod:`~modelmesh_connectors.client.state`), not of a mirror.

Just over 600 lines on purpose: the refresh (steps 1-3) and the lookups (steps 4-6) share the
one trusted view and its lock; split, the lookups would reach into the refresh's state.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import urlsplit

from modelmesh_connectors._internal.digest import check_digest, check_length, sha256_hex
from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors._internal.redact import redact_url
from modelmesh_connectors.client.failover import Failover
from modelmesh_connectors.client.settings import DEFAULT_LIMITS, Limits
from modelmesh_connectors.client.state import OriginMetadata
from modelmesh_connectors.errors import (
    CacheError,
    DownloadError,
    NotFoundError,
    ResolutionError,
    TrustError,
)
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    GroupNode,
    MetaRef,
    Release,
    Root,
    Timestamp,
)
from modelmesh_connectors.index.trust import TrustedState, VerifiedReleases, verify_anchor_root

if TYPE_CHECKING:  # imported only where a download really happens (httpx is heavy)
    from modelmesh_connectors.client.fetcher import Fetcher

__all__ = ["IndexView", "Mirror"]

_log = logging.getLogger(__name__)

_V = TypeVar("_V")
_UNSET = object()  # "no value stored" (a stored value may be anything)

# Refresh times closer than this to the recorded one are not written again (state.json).
_REFRESH_RESOLUTION = timedelta(seconds=1)


class _Memo(Generic[_V]):
    """Computes each key's value once, even when several threads ask for it at once.

    A small index has one group and one bin shared by every package: without this, each
    concurrent lookup would fetch and verify the same node again. Different keys never
    wait for each other; a failed computation is not remembered (the next caller retries).
    """

    def __init__(self) -> None:
        self._values: dict[str, _V] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str, make: Callable[[], _V]) -> _V:
        # A value, once stored, never changes: reading it needs no lock (one dict lookup).
        if (known := self._values.get(key, _UNSET)) is not _UNSET:
            return known  # type: ignore[return-value]
        with self._guard:
            if key in self._values:
                return self._values[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._values:
                    return self._values[key]
            value = make()
            with self._guard:
                self._values[key] = value
            return value


class _Update(Frozen):
    __slots__ = ("timestamp", "top")
    timestamp: bytes
    top: bytes | None

    def __init__(self, timestamp: bytes, top: bytes | None) -> None:
        object.__setattr__(self, "timestamp", timestamp)
        object.__setattr__(self, "top", top)


class Mirror(Frozen):
    """One place the index can be read from.

    Attributes:
        url: Base URL ending in ``/`` (``https://…/`` or ``file:///…/``).
        fetcher: Returns the fetcher for this mirror (created lazily: no httpx import
            until a request is really made).
        network: True when reading it touches the network (offline mode skips it).
    """

    __slots__ = ("fetcher", "network", "url")

    url: str
    fetcher: Callable[[], Fetcher]
    network: bool

    def __init__(self, url: str, fetcher: Callable[[], Fetcher], network: bool) -> None:
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "fetcher", fetcher)
        object.__setattr__(self, "network", network)


class IndexView:
    """The trusted state of one index for one run.

    Args:
        anchor: The shipped trust root bytes (``keys/root.json``).
        store: Local state for this index (last trusted files, nodes, refresh time).
        mirrors: Where to read the index, in order of preference.
        now: Reference time for every expiry check.
        offline: Never use a network mirror; rely on the store and local mirrors.
        max_expired_age: Seconds expired metadata is tolerated offline (warned each use).
        metadata_max_age: Seconds a cached state is reused without asking a mirror.
        limits: Size caps (root, timestamp, node) and the root-walk bound.
        legacy: Lists the URL-keyed records of earlier versions; when ``store`` holds no
            rollback reference yet, the newest one that re-verifies from ``anchor`` is
            migrated into it (see :meth:`_migrate_legacy`).
        failover: Rounds over the mirrors (default: each mirror once); an unreachable or
            timed-out mirror is passed over at once, never waited on.
        anchor_root: What :func:`~.trust.verify_anchor_root` returned for ``anchor`` (when
            the caller already checked it); otherwise it is checked here, once per view.
    """

    def __init__(
        self,
        *,
        anchor: bytes,
        store: OriginMetadata,
        mirrors: Sequence[Mirror],
        now: datetime,
        offline: bool = False,
        max_expired_age: float = 0.0,
        metadata_max_age: float = 300.0,
        limits: Limits = DEFAULT_LIMITS,
        legacy: Callable[[], Sequence[OriginMetadata]] | None = None,
        failover: Failover | None = None,
        anchor_root: Root | None = None,
    ) -> None:
        self._anchor = anchor
        # The anchor is checked once per view, not once per TrustedState built from it (a
        # run builds two or three): and sharing one Root shares its key objects, which
        # remember the signatures they found valid (a stored file checked before and
        # after the root walk costs one Ed25519 verification, not two).
        self._anchor_root = anchor_root
        self._verified: VerifiedReleases | None = None
        self._store = store
        self._legacy = legacy
        self._mirrors = [m for m in mirrors if not (offline and m.network)]
        self._now = now
        self._offline = offline
        self._grace = timedelta(seconds=max_expired_age) if offline else timedelta(0)
        self._max_age = timedelta(seconds=metadata_max_age)
        self._limits = limits
        self._failover = failover if failover is not None else Failover()
        self._state: TrustedState | None = None
        self._served_by: str | None = None
        self._source: str | None = None
        # archive_urls' mirror order, fixed once the state is refreshed (_served_by first).
        self._archive_mirrors: list[Mirror] | None = None
        self._reused_age: timedelta | None = None
        self._releases: dict[str, tuple[BinRelease, ...]] = {}
        # One verified object per prefix: the trust core accepts a bin only through the
        # group it verified last, and threads share this view.
        self._groups: _Memo[GroupNode] = _Memo()
        self._bins: _Memo[BinNode] = _Memo()

    @property
    def reused_age(self) -> timedelta | None:
        """How old the cached state was when this run reused it without asking a mirror.

        None when this run refreshed from a mirror (or has not looked yet). A caller that
        resolved an unpinned requirement can then say that a release published since the
        last check is not seen (``metadata_max_age``).
        """
        return self._reused_age

    @property
    def store(self) -> OriginMetadata:
        """The local state store of this index."""
        return self._store

    def node_bytes(self, ref: MetaRef) -> bytes:
        """A node's verified-by-hash bytes (cache, else mirrors)."""
        return self._node(ref)

    @property
    def mirrors(self) -> list[Mirror]:
        """Usable mirrors, in order."""
        return list(self._mirrors)

    @property
    def source(self) -> str:
        """Where this view's releases come from, for messages: the first mirror (redacted)."""
        if self._source is None:
            self._source = redact_url(self._mirrors[0].url) if self._mirrors else "cache"
        return self._source

    # -- refresh -----------------------------------------------------------------------------

    def state(self) -> TrustedState:
        """The trusted state, refreshing it on first use.

        Raises:
            TrustError: every mirror served data that failed verification (the first
                such error is raised; others are logged).
            DownloadError: no mirror could be reached.
            CacheError: the local state cannot be read or written.
        """
        if self._state is None:
            self._state = self._refresh()
        return self._state

    def _base_state(self, chain: list[tuple[int, bytes]] | None = None) -> TrustedState:
        """The shipped anchor, advanced through the stored root chain.

        Every stored root is re-verified from the anchor (N+1 signed by N's and its own
        threshold). Stops a root planted in the cache directory from replacing the shipped
        trust root: a stored root counts only if the chain from ``keys/`` leads to it.

        Args:
            chain: The stored chain to walk (default: this trust root's record's).
        """
        stored = self._store.load_root_versions() if chain is None else chain
        state = TrustedState(
            self._root_of_anchor(),
            self._now,
            expiry_grace=self._grace,
            max_root_rotations=self._limits.max_root_walk + len(stored),
        )
        for version, data in stored:
            if version <= state.root.version:
                continue
            if version != state.root.version + 1:
                _log.warning("stored root chain has a gap before version %d; ignoring", version)
                break
            try:
                state.update_root(data)
            except TrustError as exc:
                _log.warning("ignoring the stored root chain, it does not verify: %s", exc)
                return TrustedState(self._root_of_anchor(), self._now, expiry_grace=self._grace)
        return state

    def _root_of_anchor(self) -> Root:
        if self._anchor_root is None:
            self._anchor_root = verify_anchor_root(self._anchor)
        return self._anchor_root

    def _migrate_legacy(self) -> None:
        """Adopt the rollback reference of a URL-keyed record of an earlier version.

        Called under the lock when this trust root's record holds no timestamp. Every
        legacy record is re-verified from the shipped anchor exactly like a stored state
        (root chain, then timestamp and index top under the newest root); one that does not
        verify is ignored with a warning (a planted or foreign record is never trusted
        blindly). The highest verified timestamp wins, so migrating never lowers the
        reference. Without a legacy record the client starts clean, and says so.
        """
        candidates = list(self._legacy()) if self._legacy is not None else []
        anchor_version = self._root_of_anchor().version
        best: tuple[OriginMetadata, Timestamp, list[bytes], _Update] | None = None
        for legacy in candidates:
            try:
                ts_bytes = legacy.load_timestamp()
                if ts_bytes is None:
                    continue
                chain = legacy.load_root_versions()
                state = self._base_state(chain)
                ts = state.load_trusted_timestamp(ts_bytes)
            except (TrustError, CacheError) as exc:
                _log.warning(
                    "not migrating the stored state of %s (%s): it does not verify from the "
                    "trust root: %s",
                    legacy.url,
                    legacy.directory,
                    exc,
                )
                continue
            top = legacy.load_index()
            if top is not None:
                try:
                    state.load_trusted_index(top)
                except TrustError as exc:
                    _log.warning("not migrating the stored index top of %s: %s", legacy.url, exc)
                    top = None
            # _base_state accepted exactly the consecutive versions after the anchor's.
            walked = [data for v, data in chain if anchor_version < v <= state.root.version]
            if best is None or (ts.version, ts.index_version) > (
                best[1].version,
                best[1].index_version,
            ):
                best = (legacy, ts, walked, _Update(ts_bytes, top))
        if best is None:
            _log.info(
                "no stored state for this trust root in %s%s: starting with no rollback "
                "reference; the first refresh sets it",
                self._store.directory,
                " (no earlier record verified from the trust root)" if candidates else "",
            )
            return
        legacy, ts, walked, update = best
        for offset, data in enumerate(walked):
            self._store.save_root_version(anchor_version + 1 + offset, data)
        self._store.save_timestamp(update.timestamp)
        if update.top is not None:
            self._store.save_index(update.top)
            legacy.copy_nodes_to(self._store)
        _log.warning(
            "migrated the rollback reference (timestamp version %d) kept for %s in %s to "
            "the trust root's record %s",
            ts.version,
            legacy.url,
            legacy.directory,
            self._store.directory,
        )

    def _with_local(self, state: TrustedState, ts: bytes | None) -> bool:
        """Load the stored timestamp ``ts`` and top as the rollback reference; True if both load."""
        if ts is None:
            return False
        try:
            state.load_trusted_timestamp(ts)
        except TrustError as exc:  # e.g. timestamp keys rotated: the copy is no longer trusted
            _log.warning("discarding the stored timestamp: %s", exc)
            return False
        top = self._store.load_index()
        if top is None:
            return False
        try:
            state.load_trusted_index(top)
        except TrustError as exc:
            _log.warning("discarding the stored index top: %s", exc)
            return False
        return True

    def _reusable(self, last: datetime | None) -> bool:
        """Whether a refresh recorded at ``last`` is recent enough to reuse the cached state."""
        if self._offline:
            return False  # offline with a local mirror (bundle): prefer its newer state
        return last is not None and timedelta(0) <= self._now - last <= self._max_age

    def _refresh(self) -> TrustedState:
        with self._store.locked():
            stored_ts = self._store.load_timestamp()
            if stored_ts is None:
                # Never silently lose the reference kept under an earlier layout.
                self._migrate_legacy()
                stored_ts = self._store.load_timestamp()
            # Re-check under the lock: another process may have just refreshed. Only a state
            # that may be reused without a request is verified here; a run that asks a mirror
            # verifies the stored state once, after the root walk (in _update), not twice.
            last = self._store.last_refresh()
            if stored_ts is not None and (not self._mirrors or self._reusable(last)):
                state = self._base_state()
                if self._with_local(state, stored_ts) and (
                    not self._mirrors or _unexpired(state, self._now)
                ):
                    _log.debug("using the cached index state; no request made")
                    self._reused_age = self._now - last if last is not None else timedelta(0)
                    self._warn_grace(state)
                    return state
            if not self._mirrors:
                raise DownloadError(
                    "offline, and no trusted index state is cached",
                    hint="run once online, or configure 'bundle:' with a mirror directory",
                )

            def attempt(mirror: Mirror) -> tuple[Mirror, TrustedState, _Update]:
                candidate = self._base_state()
                return mirror, candidate, self._update(candidate, mirror, stored_ts)

            mirror, candidate, update = self._failover.first(
                self._mirrors,
                attempt,
                what="the index state",
                name=lambda m: redact_url(m.url),
                when_none=lambda: DownloadError("no index mirror to read"),
                hint="check the 'index:' URLs and the network, or use offline mode",
            )
            if update.timestamp != stored_ts:
                # Durable (fsync): the rollback reference. When the mirror served the very
                # bytes stored (read under this lock), the reference on disk is already
                # this one and durable, so the two fsyncs are skipped.
                self._store.save_timestamp(update.timestamp)
            if update.top is not None:
                self._store.save_index(update.top)
            if last is None or not (timedelta(0) <= self._now - last < _REFRESH_RESOLUTION):
                # A time recorded less than a second ago is kept: it makes the state look
                # older than it is by under a second (the next reuse is, if anything,
                # sooner refreshed), and runs that start together write the file once.
                self._store.record_refresh(self._now)
            self._served_by = mirror.url
            _log.info("index state from %s", redact_url(mirror.url))
            self._warn_grace(candidate)
            return candidate

    def _warn_grace(self, state: TrustedState) -> None:
        """Log every file accepted only thanks to the offline grace period."""
        if self._grace <= timedelta(0):
            return
        for what, expires in _expired(state, self._now):
            _log.warning(
                "%s expired %s ago (at %s); accepted offline within max_expired_age",
                what,
                self._now - expires,
                expires.isoformat(),
            )

    def _update(self, state: TrustedState, mirror: Mirror, stored_ts: bytes | None) -> _Update:
        """Root walk, timestamp and top from one mirror (FORMAT.md §4 steps 1-3).

        Args:
            state: A state at the stored root chain, nothing else loaded.
            mirror: Where to read.
            stored_ts: The stored timestamp's bytes (read under the lock), if any.
        """
        fetcher = mirror.fetcher()
        ts_url = f"{mirror.url}timestamp.json"
        if stored_ts is None or not _on_loopback(mirror.url):
            # Ask for the timestamp while the root walk runs: one round trip less (the walk's
            # request for root N+1 is a 404 on almost every run). Its bytes are still
            # verified only after the walk, with the newest root (FORMAT.md §4 step 2). Not
            # on a later run against a loopback mirror: there a request is answered faster
            # than the background transfer starts (measured 2.4 -> 2.7 ms for the refresh).
            fetcher.prefetch(ts_url, max_length=self._limits.max_timestamp_bytes)
        roots: list[bytes] = []
        for _ in range(self._limits.max_root_walk):
            url = f"{mirror.url}root/{state.root.version + 1}.json"
            try:
                data = fetcher.fetch_bytes(url, max_length=self._limits.max_root_bytes)
            except NotFoundError:
                break
            state.update_root(data)  # a bad step fails the walk: back to the stored chain
            roots.append(data)
        else:
            # The bound stops a server from demanding an endless walk (FORMAT.md §3); it
            # is not a failure of the roots walked: they stay trusted and the next update
            # goes on from the newest.
            _log.warning(
                "walked %d new roots, the most one update takes; the next update continues "
                "from root %d",
                len(roots),
                state.root.version,
            )
        # Saved as soon as the walk succeeded, before the timestamp is read: each is signed by
        # its predecessor's root role and its own, so it is trusted whatever the rest of this
        # update finds; a client far behind (past the bound, or with a timestamp that only a
        # later root's keys verify) thus makes progress on every update instead of failing
        # from the same root forever.
        first = state.root.version - len(roots) + 1
        for offset, data in enumerate(roots):
            self._store.save_root_version(first + offset, data)
        # The rollback reference is loaded after the walk, checked with the newest root
        # (TUF's order); a copy no longer signed by trusted keys after a rotation is dropped.
        self._with_local(state, stored_ts)
        ts_bytes = fetcher.fetch_bytes(ts_url, max_length=self._limits.max_timestamp_bytes)
        previous_ref = _ref_of(state)
        # A gap since the trusted timestamp is explained by the index's history files.
        ts = state.update_timestamp(
            ts_bytes,
            history=lambda link: fetcher.fetch_bytes(
                f"{mirror.url}{link.path}", max_length=self._limits.max_timestamp_bytes
            ),
        )
        top: bytes | None = None
        if previous_ref != ts.index:
            top = fetcher.fetch_bytes(f"{mirror.url}{ts.index.path}", max_length=ts.index.length)
            state.update_index(top)
        return _Update(ts_bytes, top)

    # -- releases ----------------------------------------------------------------------------

    def verify_release(self, name: str, entry: BinRelease) -> tuple[Release, frozenset[str]]:
        """Verify a bin entry's release (an entry :meth:`releases` returned).

        A release envelope verified under the current root in an earlier run is accepted
        by its digest (FORMAT.md §4 step 6); call :meth:`save_verified_releases` once the
        run's releases are resolved to remember the new ones.

        Raises:
            TrustError: see :meth:`~.trust.TrustedState.verify_bin_release_signed`.
        """
        state = self.state()
        if self._verified is None or self._verified.root_identity != state.root_identity:
            identity = state.root_identity
            self._verified = VerifiedReleases(
                identity, self._store.load_verified_releases(identity)
            )
        return state.verify_bin_release_signed(name, entry, verified=self._verified)

    def save_verified_releases(self) -> None:
        """Persist the releases first verified in this run (if any); best effort.

        Raises:
            CacheError: The record cannot be written.
        """
        verified = self._verified
        if verified is None or not verified.added:
            return
        self._store.save_verified_releases(verified.root_identity, verified.entries())
        verified.added.clear()

    # -- lookups -----------------------------------------------------------------------------

    def prefetch(
        self,
        names: Sequence[str],
        parallel: Callable[[Callable[[MetaRef], bytes], list[MetaRef]], object],
    ) -> None:
        """Fetch, before :meth:`releases` needs them, the nodes of ``names`` not yet stored.

        Distinct group nodes first, then distinct bin nodes, each set through ``parallel``
        (the caller's thread pool) and only when some node is missing: a warm run, with
        every node stored, starts no thread. Nothing is verified here beyond the pinned
        hash; :meth:`releases` verifies each node as before.

        Raises:
            TrustError, DownloadError: as :meth:`state`, or a node fails its pinned hash.
        """
        state = self.state()
        assert state.index is not None
        top = state.index
        prefixes = sorted({top.group_prefix(n) for n in names} & set(top.groups))
        missing = [top.groups[p] for p in prefixes if not self._store.has_node(top.groups[p])]
        if missing:
            parallel(self._node, missing)
        refs: dict[str, MetaRef] = {}
        for name in names:
            gp, bp = top.group_prefix(name), top.bin_prefix(name)
            gref = top.groups.get(gp)
            if gref is None:
                continue
            bref = self._group(state, gp, gref).bins.get(bp)
            if bref is not None:
                refs[bref.sha256] = bref
        missing = [r for r in refs.values() if not self._store.has_node(r)]
        if missing:
            parallel(self._node, missing)

    def releases(self, name: str) -> tuple[BinRelease, ...]:
        """Every release the index lists for ``name`` (verified bin entry, not yet the envelope).

        Raises:
            ResolutionError: the index has no package ``name``.
            TrustError, DownloadError: as :meth:`state`, or a node fails verification.
        """
        known = self._releases.get(name)
        if known is not None:
            return known
        state = self.state()
        assert state.index is not None
        # The fan-out comes from the verified top: it changes as the index grows.
        gp, bp = state.index.group_prefix(name), state.index.bin_prefix(name)
        gref = state.index.groups.get(gp)
        if gref is None:
            raise ResolutionError(f"the index has no package named {name!r}")
        group = self._group(state, gp, gref)
        bref = group.bins.get(bp)
        if bref is None:
            raise ResolutionError(f"the index has no package named {name!r}")
        node = self._bins.get(bp, lambda: state.verify_bin(group, bp, self._node(bref)))
        found = node.packages.get(name)
        if not found:
            raise ResolutionError(f"the index has no package named {name!r}")
        self._releases[name] = found
        return found

    def _group(self, state: TrustedState, prefix: str, ref: MetaRef) -> GroupNode:
        """The group node under ``prefix``, verified once per view."""
        return self._groups.get(prefix, lambda: state.verify_group(prefix, self._node(ref)))

    def _node(self, ref: MetaRef) -> bytes:
        """A node's bytes: from the store (re-hashed), else from the first mirror that has it."""
        cached = self._store.load_node(ref.sha256, ref.length)
        if cached is not None:
            return cached
        cap = self._limits.max_metadata_bytes
        if ref.length > cap:
            raise TrustError(
                f"{ref.path}: signed length {ref.length} is over the metadata cap {cap} bytes"
            )

        def attempt(mirror: Mirror) -> bytes:
            url = f"{mirror.url}{ref.path}"
            data = mirror.fetcher().fetch_bytes(url, max_length=ref.length)
            # Check before persisting: a mirror's wrong bytes must never enter the store.
            # The hash first: a short node is a hash mismatch (the fetcher already refused a
            # long one), as it always was here.
            check_digest(redact_url(url), ref.sha256, sha256_hex(data))
            check_length(redact_url(url), ref.length, len(data))
            return data

        data = self._failover.first(
            self._ordered_mirrors(),
            attempt,
            what=ref.path,
            name=lambda m: redact_url(m.url),
            when_none=lambda: DownloadError(
                f"{ref.path} is not cached and no mirror may be used (offline)",
                hint="refresh online first, or load from a bundle made by 'mirror'",
            ),
        )
        self._store.save_node(ref.sha256, data)
        return data

    def _ordered_mirrors(self) -> list[Mirror]:
        if self._served_by is None:
            return self._mirrors
        first = [m for m in self._mirrors if m.url == self._served_by]
        return first + [m for m in self._mirrors if m.url != self._served_by]

    def archive_urls(self, file: str) -> tuple[tuple[str, Mirror], ...]:
        """URLs of an archive on every usable mirror, the one that served the state first."""
        mirrors = self._archive_mirrors
        if mirrors is None or self._state is None:
            mirrors = self._ordered_mirrors()
            if self._state is not None:  # _served_by no longer changes: order them once
                self._archive_mirrors = mirrors
        return tuple([(m.url + file, m) for m in mirrors])


def _ref_of(state: TrustedState) -> MetaRef | None:
    return (
        state.timestamp.index if state.timestamp is not None and state.index is not None else None
    )


def _on_loopback(url: str) -> bool:
    """Whether ``url`` names this machine by a loopback name or address."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name (or no host: a file:// mirror)
        return False


def _unexpired(state: TrustedState, now: datetime) -> bool:
    """Whether the loaded timestamp and top are both still valid at ``now``."""
    ts, top = state.timestamp, state.index
    return ts is not None and top is not None and ts.expires > now and top.expires > now


def _expired(state: TrustedState, now: datetime) -> list[tuple[str, datetime]]:
    out: list[tuple[str, datetime]] = []
    if state.root.expires <= now:
        out.append((f"root/{state.root.version}.json", state.root.expires))
    if state.timestamp is not None and state.timestamp.expires <= now:
        out.append(("timestamp.json", state.timestamp.expires))
    if state.index is not None and state.index.expires <= now:
        out.append(("index top", state.index.expires))
    return out
