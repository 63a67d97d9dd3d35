"""Planning a new index state: new nodes, a new top, a new timestamp — signed, checked, unwritten.

A :class:`Plan` is everything one commit uploads: immutable files (archives, ``.zip.sig``,
bins, groups, top, the timestamp's history copy), ``.zip.sig`` files replaced after a key
rotation, and the bytes of the next ``timestamp.json``. Before a plan leaves this module it
has been run through the client's own trust core (:func:`check_new_state`), so the publisher
can never publish what a client would reject.

Only the nodes on the way to a changed bin are rewritten (each once, however many packages
a bulk publish adds to it); the package count is carried in the signed top, so choosing the
fan-out never reads the rest of the tree.
"""

from __future__ import annotations

__all__ = ["Plan", "check_new_state", "plan_timestamp", "plan_tree"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelmesh_connectors.index.envelope import INDEX_TYPE, TIMESTAMP_TYPE, parse_envelope, sign
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    GroupNode,
    IndexTop,
    MetaRef,
    Timestamp,
    TimestampLink,
    name_hash,
)
from modelmesh_connectors.index.trust import TrustedState
from modelmesh_connectors.publish.state import (
    RepositoryState,
    existing_bins,
    package_count,
    read_bin,
    read_group,
    sharding_level,
)


@dataclass(frozen=True)
class Plan:
    """A new index state, signed and checked, not yet written.

    Attributes:
        uploads: ``(path, bytes)`` written create-only, in order (identical bytes already
            there are fine; other bytes are a conflict).
        replacements: ``(path, bytes)`` of ``.zip.sig`` files re-signed after a rotation.
        timestamp_bytes: The next ``timestamp.json``.
        timestamp: It, parsed.
        top: The index top it pins.
    """

    uploads: tuple[tuple[str, bytes], ...]
    replacements: tuple[tuple[str, bytes], ...]
    timestamp_bytes: bytes
    timestamp: Timestamp
    top: IndexTop

    def with_uploads_first(self, uploads: Sequence[tuple[str, bytes]]) -> Plan:
        """The same plan with ``uploads`` (archives, signatures) written before its own."""
        return Plan(
            (*uploads, *self.uploads),
            self.replacements,
            self.timestamp_bytes,
            self.timestamp,
            self.top,
        )


def plan_timestamp(
    state: RepositoryState,
    *,
    now: datetime,
    timestamp_keys: Sequence[SigningKey],
    timestamp_expiry: timedelta,
    top: IndexTop,
    top_ref: MetaRef,
) -> tuple[Timestamp, bytes, tuple[str, bytes]]:
    """The next timestamp (version + 1, linked to the current one) and its history upload.

    Returns:
        ``(timestamp, file bytes, (history path, file bytes))``.
    """
    previous = TimestampLink.of(
        state.timestamp.version, parse_envelope(state.timestamp_bytes).payload
    )
    timestamp = Timestamp(
        state.timestamp.version + 1, now + timestamp_expiry, top.version, top_ref, previous
    )
    ts_bytes = sign(TIMESTAMP_TYPE, timestamp.to_payload(), timestamp_keys).to_bytes()
    link = TimestampLink.of(timestamp.version, timestamp.to_payload())
    return timestamp, ts_bytes, (link.path, ts_bytes)


def plan_tree(
    state: RepositoryState,
    *,
    now: datetime,
    index_keys: Sequence[SigningKey],
    timestamp_keys: Sequence[SigningKey],
    index_expiry: timedelta,
    timestamp_expiry: timedelta,
    new_bins: Sequence[BinNode] = (),
    signatures: Sequence[tuple[str, bytes]] = (),
    check_all: bool = False,
) -> Plan:
    """Build and sign the new bins (if any), their groups, a new top and a new timestamp.

    ``new_bins`` are complete bins at the current top's fan-out. When the package count
    after the change calls for another :func:`sharding_level`, every node is rebuilt from
    all packages at the new level (and every release is checked). With ``check_all``,
    every release reachable from the new top is verified (after a root change); otherwise
    only those in ``new_bins``.
    """
    replaced = {node.prefix: node for node in new_bins}
    count = package_count(state) + sum(
        len(node.packages) - len(_old_bin(state, node.prefix).packages)
        for node in replaced.values()
    )
    level = sharding_level(count)
    rebuild = level != state.top.level
    if rebuild:
        # Nothing of the old tree is reused: every node is new and content-addressed,
        # so a client still reading the old state finds all its files untouched.
        groups: dict[str, MetaRef] = {}
        bins_to_write = _rebuilt_bins(state, replaced, level[1])
        check_all = True
    else:
        groups = dict(state.top.groups)
        bins_to_write = list(replaced.values())
    group_chars = level[0]
    writes: dict[str, bytes] = {}
    by_group: dict[str, dict[str, BinNode]] = {}
    for node in bins_to_write:
        by_group.setdefault(node.prefix[:group_chars], {})[node.prefix] = node
    checks: list[tuple[str, bytes, bytes]] = []  # (bin prefix, group bytes, bin bytes)
    for gp in sorted(by_group):
        bins = {} if rebuild else dict(read_group(state, gp).bins)
        payloads: list[tuple[str, bytes]] = []
        for bp, node in sorted(by_group[gp].items()):
            if not node.packages:
                bins.pop(bp, None)  # a publisher never writes an empty bin
                continue
            bin_bytes = node.to_payload()
            bins[bp] = MetaRef.of(bin_bytes)
            writes[bins[bp].path] = bin_bytes
            payloads.append((bp, bin_bytes))
        if bins:
            group_bytes = GroupNode(gp, bins).to_payload()
            groups[gp] = MetaRef.of(group_bytes)
            writes[groups[gp].path] = group_bytes
            checks += [(bp, group_bytes, bin_bytes) for bp, bin_bytes in payloads]
        else:
            groups.pop(gp, None)
    top = IndexTop(state.top.version + 1, now + index_expiry, groups, *level, packages=count)
    top_bytes = sign(INDEX_TYPE, top.to_payload(), index_keys).to_bytes()
    top_ref = MetaRef.of(top_bytes)
    writes[top_ref.path] = top_bytes
    timestamp, ts_bytes, history = plan_timestamp(
        state,
        now=now,
        timestamp_keys=timestamp_keys,
        timestamp_expiry=timestamp_expiry,
        top=top,
        top_ref=top_ref,
    )

    def read(rel: str) -> bytes:
        data = writes.get(rel)
        return data if data is not None else state.read(rel)

    check_new_state(
        state.roots, now, ts_bytes, top_bytes, checks, read_all=read if check_all else None
    )
    return Plan((*writes.items(), history), tuple(signatures), ts_bytes, timestamp, top)


def _old_bin(state: RepositoryState, prefix: str) -> BinNode:
    group = read_group(state, prefix[: state.top.group_chars])
    return read_bin(state, group, prefix)


def _rebuilt_bins(
    state: RepositoryState, replaced: dict[str, BinNode], bin_chars: int
) -> list[BinNode]:
    """Every package of the index after the change, regrouped into bins of ``bin_chars``."""
    nodes = list(replaced.values())
    nodes += [read_bin(state, g, bp) for g, bp in existing_bins(state) if bp not in replaced]
    regrouped: dict[str, dict[str, tuple[BinRelease, ...]]] = {}
    for node in nodes:
        for name, entries in node.packages.items():
            regrouped.setdefault(name_hash(name)[:bin_chars], {})[name] = entries
    return [BinNode(bp, packages) for bp, packages in sorted(regrouped.items())]


def check_new_state(
    roots: Sequence[bytes],
    now: datetime,
    ts_bytes: bytes,
    top_bytes: bytes,
    checks: Sequence[tuple[str, bytes, bytes]],
    *,
    read_all: Callable[[str], bytes] | None = None,
) -> None:
    """Run the new state through the client's trust core before it becomes visible.

    ``checks`` lists the new bins to verify with every release in them; with ``read_all``
    (reads a file of the new state) every group, bin and release the new top reaches is.
    """
    state = TrustedState(roots[0], now, max_root_rotations=max(len(roots), 1))
    for data in roots[1:]:
        state.update_root(data)
    state.update_timestamp(ts_bytes)
    top = state.update_index(top_bytes)
    nodes: list[BinNode] = []
    if read_all is None:
        for bp, group_bytes, bin_bytes in checks:
            group = state.verify_group(bp[: top.group_chars], group_bytes)
            nodes.append(state.verify_bin(group, bp, bin_bytes))
    else:
        for gp, gref in sorted(top.groups.items()):
            group = state.verify_group(gp, read_all(gref.path))
            nodes += [
                state.verify_bin(group, bp, read_all(bref.path))
                for bp, bref in sorted(group.bins.items())
            ]
    for node in nodes:
        for name, entries in node.packages.items():
            for entry in entries:
                state.verify_bin_release(name, entry)
