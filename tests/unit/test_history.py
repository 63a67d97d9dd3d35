"""The timestamp history in the pure trust core: a client refuses a forked history.

Each timestamp names its predecessor's payload hash (FORMAT.md §3 history). A client that
trusts timestamp N accepts N+k only if the links lead back to *its* N; two timestamps with
the same predecessor shown to one client (a fork) are refused with ForkError.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelmesh_connectors._internal import record
from modelmesh_connectors.errors import ForkError, HashMismatchError, RollbackError
from modelmesh_connectors.index.envelope import TIMESTAMP_TYPE, parse_envelope, sign
from modelmesh_connectors.index.metadata import (
    MetadataError,
    MetaRef,
    Timestamp,
    TimestampLink,
    parse_timestamp,
)
from modelmesh_connectors.index.trust import TrustedState, verify_history_link
from tests.support.builders import FAR, NOW, KeySet, make_top, root_bytes, signed_top

KEYS = KeySet.generate()
ROOT = root_bytes(KEYS)
TOP = signed_top(make_top(), KEYS.index)


def stamp(version: int, previous: bytes | None, *, salt: int = 0) -> bytes:
    """A signed timestamp file of ``version`` linked to the timestamp file ``previous``."""
    link = None
    if previous is not None:
        payload = parse_envelope(previous).payload
        link = TimestampLink.of(parse_timestamp(payload).version, payload)
    ts = Timestamp(version, FAR - timedelta(seconds=salt), 1, MetaRef.of(TOP), link)
    return sign(TIMESTAMP_TYPE, ts.to_payload(), KEYS.timestamp).to_bytes()


def path_of(data: bytes) -> str:
    ts = parse_timestamp(parse_envelope(data).payload)
    return TimestampLink.of(ts.version, parse_envelope(data).payload).path


def client(trusted: bytes) -> TrustedState:
    state = TrustedState(ROOT, NOW)
    state.load_trusted_timestamp(trusted)
    return state


def history_of(*files: bytes) -> dict[str, bytes]:
    return {path_of(f): f for f in files}


T1 = stamp(1, None)
T2A = stamp(2, T1)
T2B = stamp(2, T1, salt=1)  # the same predecessor: a fork at version 2
T3B = stamp(3, T2B)
T4B = stamp(4, T3B)
T3A = stamp(3, T2A)
T4A = stamp(4, T3A)


def test_the_next_timestamp_must_name_the_trusted_one() -> None:
    assert client(T1).update_timestamp(T2A).version == 2
    assert client(T2A).update_timestamp(T3A).version == 3


def test_a_fork_is_refused() -> None:
    # Trusts T2a; shown T3b, which extends T2b: two timestamps with predecessor T1.
    with pytest.raises(ForkError, match=r"two different histories") as e:
        client(T2A).update_timestamp(T3B)
    assert isinstance(e.value, RollbackError)  # a fork is a kind of rollback of the history
    assert e.value.hint is not None


def test_a_gap_is_explained_by_the_history() -> None:
    files = history_of(T2A, T3A)
    asked: list[str] = []

    def read(link: TimestampLink) -> bytes:
        asked.append(link.path)
        return files[link.path]

    assert client(T1).update_timestamp(T4A, history=read).version == 4
    assert asked == [path_of(T3A), path_of(T2A)]


def test_a_fork_hidden_in_a_gap_is_refused() -> None:
    files = history_of(T2B, T3B)
    with pytest.raises(ForkError):
        client(T2A).update_timestamp(T4B, history=lambda link: files[link.path])


def test_a_history_file_must_be_the_linked_one() -> None:
    files = {path_of(T3A): T3B}  # served under the wrong name
    with pytest.raises(HashMismatchError, match="sha256 mismatch"):
        client(T1).update_timestamp(T4A, history=lambda link: files[path_of(T3A)])


def test_without_a_history_reader_a_gap_is_not_checked() -> None:
    assert client(T2A).update_timestamp(T4B).version == 4  # documented limit (FORMAT.md §3)


def test_the_walk_is_bounded() -> None:
    files = history_of(T2B, T3B)
    assert client(T2A).update_timestamp(T4B, history=lambda link: files[link.path], max_history_walk=1).version == 4


def test_dropping_the_history_is_a_fork() -> None:
    unlinked = sign(
        TIMESTAMP_TYPE,
        record.replace(parse_timestamp(parse_envelope(T3A).payload), previous=None).to_payload(),
        KEYS.timestamp,
    ).to_bytes()
    with pytest.raises(ForkError, match="names no predecessor"):
        client(T2A).update_timestamp(unlinked)
    # An index written before history existed: unlinked timestamps follow each other.
    legacy_1 = stamp(1, None)
    legacy_2 = sign(TIMESTAMP_TYPE, record.replace(parse_timestamp(parse_envelope(T2A).payload), previous=None).to_payload(), KEYS.timestamp).to_bytes()
    assert client(legacy_1).update_timestamp(legacy_2).version == 2


def test_a_history_starting_after_the_trusted_version_is_a_fork() -> None:
    late_start = stamp(3, None)
    t4 = stamp(4, late_start)
    with pytest.raises(ForkError, match="history starts at version 3"):
        client(T2A).update_timestamp(t4, history=lambda link: late_start)


def test_verify_history_link_checks_version_and_hash() -> None:
    payload = parse_envelope(T2A).payload
    assert verify_history_link(TimestampLink.of(2, payload), T2A).version == 2
    with pytest.raises(MetadataError, match="expected timestamp version 3"):
        verify_history_link(TimestampLink.of(3, payload), T2A)


def test_previous_must_be_older() -> None:
    payload = record.replace(parse_timestamp(parse_envelope(T2A).payload), version=2).to_payload()
    bad = payload.replace(b'"previous":{"sha256"', b'"previous":{"sha256"').replace(b'"version":1}', b'"version":2}')
    with pytest.raises(MetadataError, match="previous.version"):
        parse_timestamp(bad)
