"""Attacks on what an entry *names*: archive URLs, signed local zips, the lock, and the loader
defences no other test would miss.

A detached ``.sig`` verifies for any release the trusted keys ever signed, so a server that may
put files at an entry's URL can try an older release (downgrade), a yanked or removed one, or
another package (substitution). Every row runs through the same harness as
``test_attacks.py``: a real signed index on 127.0.0.1, the canary package as the payload (its
code leaves a marker when imported), a whole run (``build_registry``) and a load into an
existing registry (``registry.load_package``); each asserts the exact typed error, no registry,
no canary marker, no package module left, nothing unverified in the cache, no lookup off the
machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmesh_connectors.cli import main
from modelmesh_connectors.errors import (
    ConnectorError,
    ExpiredError,
    HashMismatchError,
    LengthMismatchError,
    PolicyError,
    ResolutionError,
    SignatureError,
)
from modelmesh_connectors.index.envelope import (
    RELEASE_TYPE,
    Envelope,
    parse_envelope,
    sign,
)
from modelmesh_connectors.index.metadata import archive_path
from modelmesh_connectors.registry import build_registry
from tests.attack.hostile import (
    CANARY_ID,
    CANARY_NAME,
    CANARY_SOURCE,
    DAY,
    Arena,
    cache_problems,
    canary_entries,
    canary_zip,
    crafted_zip,
    force_publish,
    private_modules,
    release_for,
    rename_problems,
    watch_renames,
)
from tests.attack.test_attacks import Attempt, _assert_refused
from tests.support.http_server import Reply

CANARY_ZIP = archive_path(CANARY_NAME, "1.0.0")
NEWER = "1.1.0"  # a newer canary release the index lists
HOSTILE = "6.6.6"
GHOST = "ghost-canary"  # a package name the index does not list
SIG_CAP = 64 * 1024  # bytes: Limits.max_signature_bytes as documented in SECURITY.md
DEV_SINK = [("dev.sink.v1", "observability", "dev_sink.sink:Sink")]


@dataclass(frozen=True)
class Case:
    """One row: ``setup`` (what the trusted keys signed) then ``attack``."""

    id: str
    attack: Callable[[Arena], Attempt]
    setup: Callable[[Arena], None]


# -- helpers ---------------------------------------------------------------------------------


def _put(arena: Arena, rel: str, data: bytes) -> None:
    (arena.sim.dir / rel).parent.mkdir(parents=True, exist_ok=True)
    arena.sim.write(rel, data)


def _signed(arena: Arena, data: bytes, name: str = CANARY_NAME, version: str = HOSTILE) -> bytes:
    """A release envelope the index key signs for ``data`` (valid, but not listed anywhere)."""
    release = release_for(data, name=name, version=version)
    return sign(RELEASE_TYPE, release.to_payload(), [arena.sim.index_key]).to_bytes()


def _newer(arena: Arena) -> None:
    """Canary 1.0.0 (real publisher) and a newer 1.1.0 (crafted, index-signed, listed)."""
    arena.publish_canary()
    data = crafted_zip(canary_entries(NEWER))
    force_publish(arena.sim, data, release=release_for(data, version=NEWER))


def _newer_old_yanked(arena: Arena) -> None:
    _newer(arena)
    arena.sim.yank(CANARY_NAME, "1.0.0", "leaks secrets")


def _canary_and_acme(arena: Arena) -> None:
    arena.publish_canary()
    arena.sim.publish("acme-audit-log", "1.0.0")


def _canary(arena: Arena) -> None:
    arena.publish_canary()


def _serve_old_as(rel: str) -> Callable[[Arena], None]:
    """The attacker copies canary 1.0.0 and its genuine .sig to ``rel``."""

    def serve(arena: Arena) -> None:
        _put(arena, rel, arena.sim.read(CANARY_ZIP))
        _put(arena, rel + ".sig", arena.sim.read(CANARY_ZIP + ".sig"))

    return serve


def _other_host(arena: Arena, rel: str) -> str:
    """The same loopback server under another host name: a URL outside the configured index."""
    return arena.sim.server.url("/" + rel, host="localhost")


def _ghost_zip() -> bytes:
    entries = [
        (n, d.replace(b"name: demo-canary", f"name: {GHOST}".encode()))
        for n, d in canary_entries("1.0.0")
    ]
    return crafted_zip(entries)


def _place_ghost(arena: Arena) -> str:
    data = _ghost_zip()
    rel = archive_path(GHOST, "1.0.0")
    _put(arena, rel, data)
    _put(arena, rel + ".sig", _signed(arena, data, GHOST, "1.0.0"))
    return rel


def _place_unlisted(arena: Arena) -> str:
    """A validly signed canary 6.6.6 whose release the index never listed (or removed)."""
    data = crafted_zip(canary_entries(HOSTILE))
    rel = archive_path(CANARY_NAME, HOSTILE)
    _put(arena, rel, data)
    _put(arena, rel + ".sig", _signed(arena, data))
    return rel


def _pin(arena: Arena, rel: str) -> str:
    return "#sha256=" + hashlib.sha256(arena.sim.read(rel)).hexdigest()


def _write_config(arena: Arena, specs: list[str], **overrides: Any) -> Path:
    path = arena.tmp / "mesh.yaml"
    path.write_text(yaml.safe_dump({"connectors": arena.sim.config(specs, **overrides)}))
    return path


def _lock_with_cli(arena: Arena, specs: list[str], **overrides: Any) -> Path:
    """Write ``connectors.lock`` next to a config holding ``specs`` with the real CLI."""
    assert main(["lock", "--config", str(_write_config(arena, specs, **overrides))]) == 0
    return arena.tmp / "connectors.lock"


def _locked(arena: Arena, **extra: Any) -> dict[str, Any]:
    return {"locked": True, "lock_file": str(arena.tmp / "connectors.lock"), **extra}


def _dev_dir(arena: Arena) -> Path:
    target = arena.tmp / "dev" / "demo-canary"
    if not target.exists():
        shutil.copytree(CANARY_SOURCE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _local_zip(arena: Arena, name: str = "demo-canary-1.0.0.zip") -> Path:
    target = arena.tmp / "local" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(canary_zip())
    return target


# -- A. an archive URL is bound to the release it names ----------------------------------------


def _downgrade(arena: Arena) -> Attempt:
    rel = archive_path(CANARY_NAME, NEWER)
    _serve_old_as(rel)(arena)  # 1.0.0 is listed too: only the binding can refuse it
    return Attempt(arena.url(rel), PolicyError, "downgrade or substitution")


def _substitution(arena: Arena) -> Attempt:
    rel = archive_path("acme-audit-log", "1.0.0")
    _serve_old_as(rel)(arena)
    return Attempt(arena.url(rel), PolicyError, r"names 'acme-audit-log-1\.0\.0\.zip'")


def _case_differs(arena: Arena) -> Attempt:
    rel = f"archives/{CANARY_NAME}/DEMO-CANARY-1.0.0.zip"
    _serve_old_as(rel)(arena)
    return Attempt(arena.url(rel), PolicyError, "downgrade or substitution")


def _named_yanked(arena: Arena) -> Attempt:
    return Attempt(arena.canary_url, ResolutionError, "is yanked: leaks secrets")


def _removed_from_index(arena: Arena) -> Attempt:
    rel = _place_unlisted(arena)
    return Attempt(arena.url(rel), ResolutionError, "does not list that version")


def _index_lists_other_hash(arena: Arena) -> Attempt:
    # Other bytes for 1.0.0, validly signed (e.g. an earlier signing the index replaced).
    data = crafted_zip(canary_entries("1.0.0"))
    _put(arena, CANARY_ZIP, data)
    _put(arena, CANARY_ZIP + ".sig", _signed(arena, data, version="1.0.0"))
    return Attempt(arena.canary_url, HashMismatchError, "the index lists sha256")


def _unknown_package_into_index(arena: Arena) -> Attempt:
    rel = _place_ghost(arena)
    return Attempt(arena.url(rel), ResolutionError, f"does not list {GHOST} at all")


def _other_host_removed(arena: Arena) -> Attempt:
    rel = _place_unlisted(arena)
    return Attempt(_other_host(arena, rel), ResolutionError, "does not list that version")


def _other_host_yanked(arena: Arena) -> Attempt:
    return Attempt(_other_host(arena, CANARY_ZIP), ResolutionError, "is yanked")


def _other_host_downgrade(arena: Arena) -> Attempt:
    rel = archive_path(CANARY_NAME, NEWER)
    _serve_old_as(rel)(arena)
    return Attempt(_other_host(arena, rel), PolicyError, "downgrade or substitution")


def _without_index_downgrade(arena: Arena) -> Attempt:
    rel = archive_path(CANARY_NAME, NEWER)
    _serve_old_as(rel)(arena)
    return Attempt(
        arena.url(rel), PolicyError, "downgrade or substitution", overrides={"index": None}
    )


def _ambiguous(path: str, match: str) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        return Attempt(arena.url(path), PolicyError, match, no_requests=True)

    return attack


def _local_renamed(arena: Arena) -> Attempt:
    local = _local_zip(arena, f"{CANARY_NAME}-{NEWER}.zip")  # 1.0.0's bytes, 1.1.0's name
    local.with_name(local.name + ".sig").write_bytes(arena.sim.read(CANARY_ZIP + ".sig"))
    return Attempt(
        str(local), PolicyError, "downgrade or substitution", overrides={"require_signatures": True}
    )


def _local_sig_over_cap(arena: Arena) -> Attempt:
    local = _local_zip(arena)
    local.with_name(local.name + ".sig").write_bytes(_padded(arena.sim.read(CANARY_ZIP + ".sig")))
    return Attempt(str(local), PolicyError, "signature cap", overrides={"require_signatures": True})


BINDING = [
    Case("bind-url-downgrade-to-older-listed-release", _downgrade, _newer),
    Case("bind-url-downgrade-to-yanked-release", _downgrade, _newer_old_yanked),
    Case("bind-url-substitution-other-package", _substitution, _canary_and_acme),
    Case("bind-url-file-name-case-differs", _case_differs, _canary),
    Case("bind-url-downgrade-on-other-host", _other_host_downgrade, _newer),
    Case("bind-url-downgrade-without-index", _without_index_downgrade, _newer),
    Case("bind-url-names-yanked-release-unpinned", _named_yanked, _newer_old_yanked),
    Case("bind-url-release-not-listed-by-index", _removed_from_index, _canary),
    Case("bind-url-index-lists-other-hash", _index_lists_other_hash, _canary),
    Case("bind-url-into-index-unknown-package", _unknown_package_into_index, _canary),
    Case("bind-url-other-host-release-not-listed", _other_host_removed, _canary),
    Case("bind-url-other-host-yanked-unpinned", _other_host_yanked, _newer_old_yanked),
    Case(
        "bind-url-encoded-slash",
        _ambiguous(f"archives/{CANARY_NAME}%2F{CANARY_NAME}-1.0.0.zip", "encodes '/'"),
        _canary,
    ),
    Case(
        "bind-url-encoded-backslash",
        _ambiguous(f"archives/{CANARY_NAME}%5C{CANARY_NAME}-1.0.0.zip", r"encodes '\\\\'"),
        _canary,
    ),
    Case(
        "bind-url-double-encoding",
        _ambiguous(f"archives/{CANARY_NAME}/{CANARY_NAME}-1.0.0%252Ezip", "encodes '%'"),
        _canary,
    ),
    Case(
        "bind-url-encoded-dot-segment",
        _ambiguous(f"archives/x/%2e%2E/{CANARY_NAME}/{CANARY_NAME}-1.0.0.zip", "dot segment"),
        _canary,
    ),
    Case(
        "bind-url-overlong-utf8",
        _ambiguous(f"archives/{CANARY_NAME}/{CANARY_NAME}-1.0.0%C0%AEzip", "not valid UTF-8"),
        _canary,
    ),
    Case(
        "bind-url-malformed-escape",
        _ambiguous(f"archives/{CANARY_NAME}/{CANARY_NAME}-1.0.0%2.zip", "malformed percent"),
        _canary,
    ),
    Case(
        "bind-url-encoded-nul",
        _ambiguous(f"archives/{CANARY_NAME}/{CANARY_NAME}-1.0.0.zip%00", r"encodes '\\x00'"),
        _canary,
    ),
    Case(
        "bind-url-query-string",
        _ambiguous(f"{CANARY_ZIP}?file={CANARY_NAME}-1.0.0.zip", "query string"),
        _canary,
    ),
    Case(
        "bind-url-trailing-slash",
        _ambiguous(f"{CANARY_ZIP}/", "not a plain archive name"),
        _canary,
    ),
    Case("bind-local-signed-zip-renamed", _local_renamed, _canary),
    Case("len-local-sig-over-cap", _local_sig_over_cap, _canary),
]


# -- A/B. the lock pins URL and local entries ----------------------------------------------------


def _lock_url_then_republish(arena: Arena) -> None:
    arena.publish_canary()
    _lock_with_cli(arena, [arena.canary_url])
    # Later the same version is re-signed with other bytes and listed: only the lock refuses it.
    data = crafted_zip(canary_entries("1.0.0"))
    force_publish(arena.sim, data, release=release_for(data))


def _lock_url_then_other_version(arena: Arena) -> None:
    _newer(arena)
    _lock_with_cli(arena, [arena.canary_url])


def _lock_naming_dev_dir(arena: Arena) -> None:
    arena.publish_canary()
    _lock_with_cli(arena, [str(_dev_dir(arena))])


def _empty_lock(arena: Arena) -> None:
    arena.publish_canary()
    _lock_with_cli(arena, [])


def _lock_pinning_local_zip(arena: Arena) -> None:
    arena.publish_canary()
    _lock_with_cli(arena, [str(_local_zip(arena))])


def _local_zip_changed(arena: Arena) -> Attempt:
    local = _local_zip(arena)
    local.write_bytes(crafted_zip(canary_entries("1.0.0")))  # same name and version, other bytes
    return Attempt(str(local), HashMismatchError, "the lock pins sha256", overrides=_locked(arena))


LOCKED = [
    Case(
        "lock-url-entry-same-version-other-bytes",
        lambda a: Attempt(
            a.canary_url,
            HashMismatchError,
            "the lock pins sha256",
            overrides=_locked(a, metadata_max_age=0),
        ),
        _lock_url_then_republish,
    ),
    Case(
        "lock-url-entry-other-version",
        lambda a: Attempt(
            a.url(archive_path(CANARY_NAME, NEWER)),
            ResolutionError,
            f"the lock pins 1.0.0 but {NEWER}",
            overrides=_locked(a),
        ),
        _lock_url_then_other_version,
    ),
    Case(
        "lock-directory-named-without-opt-in",
        lambda a: Attempt(
            str(_dev_dir(a)), PolicyError, "a directory is not pinned", overrides=_locked(a)
        ),
        _lock_naming_dev_dir,
    ),
    Case(
        "lock-directory-opted-in-not-named",
        lambda a: Attempt(
            str(_dev_dir(a)),
            ResolutionError,
            "is not pinned",
            overrides=_locked(a, allow_unpinned_directories=True),
        ),
        _empty_lock,
    ),
    Case(
        "lock-local-zip-not-pinned",
        lambda a: Attempt(
            str(_local_zip(a)), ResolutionError, "is not pinned", overrides=_locked(a)
        ),
        _empty_lock,
    ),
    Case("lock-local-zip-changed", _local_zip_changed, _lock_pinning_local_zip),
]


# -- C. defences no other test would miss --------------------------------------------------------


def _offline_url(arena: Arena) -> Attempt:
    return Attempt(
        arena.canary_url, PolicyError, "offline mode", overrides={"offline": True}, no_requests=True
    )


def _sig_reply(reply: Callable[[bytes], Reply]) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        genuine = arena.sim.read(CANARY_ZIP + ".sig")
        arena.sim.server.respond_with("/" + CANARY_ZIP + ".sig", lambda r: reply(genuine))
        return Attempt(arena.canary_url, LengthMismatchError, "65536")

    return attack


def _padded(genuine: bytes) -> bytes:
    # The genuine envelope plus JSON whitespace to one byte over the 64 KiB cap: without the
    # cap it would parse and verify (a fixed size, so a raised cap makes this row fail).
    return genuine + b" " * (SIG_CAP + 1 - len(genuine))


def _online_grace(arena: Arena) -> Attempt:
    return Attempt(
        CANARY_NAME,
        ExpiredError,
        "timestamp.json: expired",
        now=arena.sim.now + 30 * DAY,
        overrides={"max_expired_age": "60d"},
    )


def _type_differs(arena: Arena) -> None:
    data = crafted_zip(canary_entries(HOSTILE))  # the manifest says observability
    release = release_for(data, version=HOSTILE, connectors=((CANARY_ID, "storage"),))
    force_publish(arena.sim, data, release=release)


DEFENCES = [
    Case("offline-archive-url-makes-no-request", _offline_url, _canary),
    Case(
        "len-sig-over-cap-streamed",
        _sig_reply(lambda g: Reply.ok(_padded(g), framing="chunked")),
        _canary,
    ),
    Case(
        "len-sig-over-cap-announced",
        _sig_reply(lambda g: Reply.ok(_padded(g))),
        _canary,
    ),
    Case(
        "len-sig-endless",
        _sig_reply(lambda g: Reply.ok(b" " * 4096, endless=True, framing="chunked")),
        _canary,
    ),
    Case("fresh-max-expired-age-never-applies-online", _online_grace, _canary),
    Case(
        "policy-release-connector-type-differs-from-manifest",
        lambda a: Attempt(
            f"{CANARY_NAME}=={HOSTILE}", PolicyError, "storage", archives_allowed=True
        ),
        _type_differs,
    ),
]

CASES = BINDING + LOCKED + DEFENCES


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_attack(
    case: Case,
    tmp_path: Path,
    canary: Path,
    lookups: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Arena(tmp_path) as arena:
        case.setup(arena)
        assert not canary.exists(), "setup must never import package code"
        trusted = arena.index_files()
        before = arena.cache_files()
        modules = private_modules()
        attempt = case.attack(arena)
        renames = watch_renames(monkeypatch, arena.sim.cache)
        server = arena.sim.server

        # 1. A whole run: all or nothing, so no registry at all.
        server.clear_requests()
        cfg = arena.sim.config([attempt.spec], **attempt.overrides)
        with pytest.raises(ConnectorError) as whole:
            build_registry(cfg, now=attempt.now)
        _assert_refused(arena, attempt, whole.value, trusted, before, modules, canary)

        # 2. Into an existing registry: it must be left exactly as it was.
        registry = build_registry(arena.sim.config([], **attempt.overrides), now=attempt.now)
        listed = registry.list_connectors()
        server.clear_requests()
        with pytest.raises(ConnectorError) as into:
            registry.load_package(attempt.spec)
        _assert_refused(arena, attempt, into.value, trusted, before, modules, canary)
        assert registry.list_connectors() == listed
        assert CANARY_ID not in {i.id for i in listed}
    visible = rename_problems(renames, trusted, archives_allowed=attempt.archives_allowed)
    assert visible == [], "unverified bytes were renamed into the cache"
    assert lookups == [], f"looked up non-loopback hosts: {lookups}"


# -- controls: the same entries load when nothing is wrong ----------------------------------------


def _control_yanked_pinned(arena: Arena) -> tuple[str, dict[str, Any]]:
    _newer_old_yanked(arena)
    return arena.canary_url + _pin(arena, CANARY_ZIP), {}


def _control_other_host_unknown_package(arena: Arena) -> tuple[str, dict[str, Any]]:
    arena.publish_canary()
    return _other_host(arena, _place_ghost(arena)), {}


def _control_encoded_unreserved(arena: Arena) -> tuple[str, dict[str, Any]]:
    arena.publish_canary()
    return arena.url(f"archives/{CANARY_NAME}/demo%2Dcanary-1.0.0.zip"), {}


def _control_url_without_index(arena: Arena) -> tuple[str, dict[str, Any]]:
    arena.publish_canary()
    return arena.canary_url, {"index": None}


def _control_locked_url(arena: Arena) -> tuple[str, dict[str, Any]]:
    arena.publish_canary()
    _lock_with_cli(arena, [arena.canary_url])
    return arena.canary_url, _locked(arena)


def _control_locked_local_zip(arena: Arena) -> tuple[str, dict[str, Any]]:
    arena.publish_canary()
    local = _local_zip(arena)
    _lock_with_cli(arena, [str(local)])
    return str(local), _locked(arena)


def _control_locked_directory_opted_in(arena: Arena) -> tuple[str, dict[str, Any]]:
    arena.publish_canary()
    dev = _dev_dir(arena)
    _lock_with_cli(arena, [str(dev)])
    return str(dev), _locked(arena, allow_unpinned_directories=True)


def _control_local_signed_zip(arena: Arena) -> tuple[str, dict[str, Any]]:
    arena.publish_canary()
    local = _local_zip(arena)
    local.with_name(local.name + ".sig").write_bytes(arena.sim.read(CANARY_ZIP + ".sig"))
    return str(local), {"require_signatures": True}


CONTROLS: list[tuple[str, Callable[[Arena], tuple[str, dict[str, Any]]]]] = [
    ("url-names-yanked-release-pinned-by-hash", _control_yanked_pinned),
    ("url-other-host-package-not-in-index", _control_other_host_unknown_package),
    ("url-percent-encoded-unreserved-character", _control_encoded_unreserved),
    ("url-without-index", _control_url_without_index),
    ("locked-url-entry", _control_locked_url),
    ("locked-local-zip", _control_locked_local_zip),
    ("locked-directory-named-and-opted-in", _control_locked_directory_opted_in),
    ("local-signed-zip-under-its-own-name", _control_local_signed_zip),
]


@pytest.mark.parametrize(("name", "prepare"), CONTROLS, ids=[c[0] for c in CONTROLS])
def test_control_loads_and_runs_canary(
    name: str,
    prepare: Callable[[Arena], tuple[str, dict[str, Any]]],
    tmp_path: Path,
    canary: Path,
    lookups: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without an attack the same kinds of entry load: the refusals above can fail."""
    with Arena(tmp_path) as arena:
        spec, overrides = prepare(arena)
        with caplog.at_level(logging.WARNING):
            registry = build_registry(arena.sim.config([spec], **overrides))
        assert CANARY_ID in {i.id for i in registry.list_connectors()}
        assert canary.exists(), "the canary did not load"
        if name == "url-names-yanked-release-pinned-by-hash":
            assert "is yanked: leaks secrets (used because pinned by hash)" in caplog.text
        problems = cache_problems(
            {}, arena.cache_files(), arena.index_files(), archives_allowed=True
        )
        assert problems == []
    assert lookups == []


# -- B. the lock command pins every kind of entry ------------------------------------------------


def test_lock_command_pins_url_and_local_entries(
    tmp_path: Path, canary: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Arena(tmp_path) as arena:
        arena.publish_canary()
        arena.sim.publish("acme-audit-log", "1.0.0")
        acme_url = arena.url(archive_path("acme-audit-log", "1.0.0"))
        local = tmp_path / "local" / "dev-sink-0.1.0.zip"
        local.parent.mkdir()
        local.write_bytes(
            arena.sim.build_archive("dev-sink", "0.1.0", connectors=DEV_SINK).read_bytes()
        )
        dev = _dev_dir(arena)
        lock_path = _lock_with_cli(arena, [acme_url, str(local), str(dev)], metadata_max_age=0)
        doc = json.loads(lock_path.read_text())
        assert doc["lock-version"] == 2
        pins = {e["name"]: e for e in doc["packages"]}
        assert pins["acme-audit-log"]["kind"] == "archive"
        assert pins["acme-audit-log"]["spec"] == acme_url
        assert (
            pins["acme-audit-log"]["sha256"]
            == hashlib.sha256(arena.sim.read(archive_path("acme-audit-log", "1.0.0"))).hexdigest()
        )
        assert pins["dev-sink"] | {"signed_by": []} == {
            "name": "dev-sink",
            "version": "0.1.0",
            "kind": "local-zip",
            "path": "local/dev-sink-0.1.0.zip",  # relative to the lock's directory
            "sha256": hashlib.sha256(local.read_bytes()).hexdigest(),
            "length": local.stat().st_size,
            "spec": "local/dev-sink-0.1.0.zip",
            "source": "local",
            "signed_by": [],
        }
        assert (pins[CANARY_NAME]["kind"], pins[CANARY_NAME]["path"]) == (
            "directory",
            "dev/demo-canary",
        )
        assert not canary.exists(), "locking must not import anything"

        # Locked: the URL and the zip load; the directory needs the explicit opt-in.
        locked = arena.sim.config([acme_url, str(local)], **_locked(arena))
        assert "acme.audit-log.v1" in {i.id for i in build_registry(locked).list_connectors()}
        with pytest.raises(PolicyError, match="a directory is not pinned"):
            build_registry({**locked, "packages": [acme_url, str(local), str(dev)]})
        assert not canary.exists()
        opted = {**locked, "packages": [str(dev)], "allow_unpinned_directories": True}
        assert CANARY_ID in {i.id for i in build_registry(opted).list_connectors()}

        # `install --locked` honours the lock too (the loader reads it, not only build_registry).
        arena.sim.publish("acme-audit-log", "1.1.0")
        config = arena.tmp / "mesh.yaml"
        capsys.readouterr()
        install = ["install", "acme-audit-log==1.1.0", "--config", str(config)]
        assert main([*install, "--locked"]) != 0  # only the pinned 1.0.0 is a candidate
        assert "available: 1.0.0" in capsys.readouterr().err
        assert main(install) == 0  # the control: unlocked, 1.1.0 installs

        # `lock` without --upgrade keeps the local zip's pin; --upgrade moves it.
        local.write_bytes(
            arena.sim.build_archive(
                "dev-sink", "0.1.0", connectors=DEV_SINK, extra_manifest="# changed after locking\n"
            ).read_bytes()
        )
        config = arena.tmp / "mesh.yaml"
        capsys.readouterr()
        assert main(["lock", "--config", str(config)]) != 0
        assert "the lock pins sha256" in capsys.readouterr().err
        assert main(["lock", "--config", str(config), "--upgrade"]) == 0
        again = {e["name"]: e for e in json.loads(lock_path.read_text())["packages"]}
        assert again["dev-sink"]["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()


def test_lock_format_1_still_reads(tmp_path: Path) -> None:
    from modelmesh_connectors.client.lockfile import LockFile

    path = tmp_path / "connectors.lock"
    entry = {
        "name": "a",
        "version": "1.0.0",
        "sha256": "ab" * 32,
        "length": 3,
        "spec": "a",
        "source": "x",
        "signed_by": [],
    }
    path.write_text(json.dumps({"lock-version": 1, "packages": [entry]}))
    [read] = LockFile.read(path).entries
    assert (read.kind, read.path) == ("archive", None)
    for bad in ({**entry, "kind": "directory"}, {**entry, "kind": "nope", "path": "x"}):
        path.write_text(json.dumps({"lock-version": 2, "packages": [bad]}))
        with pytest.raises(ConnectorError, match="malformed"):
            LockFile.read(path)
    path.write_text(json.dumps({"lock-version": True, "packages": []}))
    with pytest.raises(ConnectorError, match="not a lock file"):
        LockFile.read(path)


# -- C. all or nothing across several entries ------------------------------------------------------


def _unsigned_acme_url(arena: Arena) -> str:
    arena.sim.publish("acme-audit-log", "1.0.0")
    rel = archive_path("acme-audit-log", "1.0.0") + ".sig"
    env = parse_envelope(arena.sim.read(rel))
    arena.sim.write(rel, Envelope(env.payload_type, env.payload, ()).to_bytes())
    return arena.url(archive_path("acme-audit-log", "1.0.0"))


def _manifest_mismatch_acme(arena: Arena) -> str:
    arena.sim.publish("acme-audit-log", "1.0.0")
    rel = archive_path("acme-audit-log", "1.0.0")
    data = arena.sim.read(rel)
    # The index role signs a release listing another type for the same connector ID.
    release = release_for(
        data, name="acme-audit-log", version="2.0.0", connectors=(("acme.audit-log.v1", "storage"),)
    )
    force_publish(arena.sim, data, release=release)
    return "acme-audit-log==2.0.0"


@pytest.mark.parametrize(
    ("bad", "error"),
    [(_unsigned_acme_url, SignatureError), (_manifest_mismatch_acme, PolicyError)],
    ids=["release-verification", "manifest-verification"],
)
def test_all_or_nothing_when_a_later_entry_fails(
    bad: Callable[[Arena], str],
    error: type[ConnectorError],
    tmp_path: Path,
    canary: Path,
) -> None:
    """The canary (first entry) verifies; the second fails: nothing is imported or registered."""
    with Arena(tmp_path) as arena:
        arena.publish_canary()
        bad_spec = bad(arena)
        modules = private_modules()
        with pytest.raises(ConnectorError) as failed:
            build_registry(arena.sim.config([CANARY_NAME, bad_spec]))
        assert type(failed.value) is error
        assert not canary.exists(), "the first package was imported before the second failed"
        assert private_modules() == modules
        problems = cache_problems(
            {}, arena.cache_files(), arena.index_files(), archives_allowed=True
        )
        assert problems == []
        registry = build_registry(arena.sim.config([]))
        listed = registry.list_connectors()
        with pytest.raises(ConnectorError):
            registry.load_package(bad_spec)
        assert registry.list_connectors() == listed
