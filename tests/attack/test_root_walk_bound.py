"""The bounded root walk (FORMAT.md §3 *Rotation*): at most 32 new roots per update.

The bound stops a server from making a client walk an endless chain of roots. Reaching it is
not a failure of the roots walked: they stay trusted (stored at once, before the timestamp
is read), the update goes on with the newest, and the next update continues from there. A
client far behind therefore catches up over several updates instead of failing from the same
root for ever, even when only a root past the bound trusts the timestamp's key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmesh_connectors.client.config import parse_config
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.errors import SignatureError
from modelmesh_connectors.index.keys import SigningKey
from tests.attack.hostile import CANARY_NAME, Arena, commit_state, next_root

BOUND = 32  # DEFAULT_MAX_ROOT_ROTATIONS, both clients


def _asked_roots(arena: Arena, since: int) -> list[int]:
    paths = [r.path for r in arena.sim.server.requests[since:]]
    return [int(p.rsplit("/", 1)[1].removesuffix(".json")) for p in paths if "/root/" in p]


def _trusted_root(arena: Arena) -> int:
    """The root version a new offline run trusts from the stored chain."""
    cfg = parse_config(arena.sim.config([CANARY_NAME], offline=True))
    with Loader(cfg) as loader:
        return loader.view().state().root.version


def _install(arena: Arena) -> None:
    arena.warm([CANARY_NAME], metadata_max_age=0)


@pytest.fixture
def arena(tmp_path: Path) -> Iterator[Arena]:
    with Arena(tmp_path) as a:
        a.publish_canary()
        yield a


def test_a_chain_longer_than_the_bound_is_walked_over_several_updates(arena: Arena) -> None:
    for _ in range(40):  # root/2.json .. root/41.json, each validly rotated
        next_root(arena.sim, signers=arena.sim.root_keys[:2])

    start = len(arena.sim.server.requests)
    _install(arena)
    # Exactly the bound, and not one request more (no 33rd root, no probe past it).
    assert _asked_roots(arena, start) == list(range(2, 2 + BOUND))
    assert _trusted_root(arena) == 1 + BOUND

    start = len(arena.sim.server.requests)
    _install(arena)
    # The next update continues from the stored root 33 and stops at the 404 for root 42.
    assert _asked_roots(arena, start) == list(range(2 + BOUND, 43))
    assert _trusted_root(arena) == 41


def test_roots_walked_to_the_bound_are_kept_when_the_timestamp_then_fails(arena: Arena) -> None:
    _install(arena)  # a client that was up to date, then falls 39 roots behind
    # The timestamp key is rotated in root 40: root 33, where the first walk stops, does not
    # trust the key that signs the live timestamp.
    for _ in range(38):  # root/2.json .. root/39.json
        next_root(arena.sim, signers=arena.sim.root_keys[:2])
    new_ts = SigningKey.generate()
    next_root(arena.sim, signers=arena.sim.root_keys[:2], timestamp_keys=[new_ts])
    arena.sim.timestamp_key = new_ts
    commit_state(arena.sim)

    with pytest.raises(SignatureError, match="timestamp"):
        _install(arena)
    # The failure is the timestamp's, not the walk's: the 32 roots walked are stored ...
    assert _trusted_root(arena) == 1 + BOUND
    # ... so the next update walks on to root 40 and succeeds.
    _install(arena)
    assert _trusted_root(arena) == 40
