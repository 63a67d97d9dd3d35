"""The index audit: every file checked, every failure reported, none stops the rest."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from modelmesh_connectors.errors import DownloadError, NotFoundError
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    archive_path,
)
from modelmesh_connectors.publish.audit import (
    AuditReport,
    audit_directory,
    audit_index,
    directory_reader,
)
from tests.support.builders import (
    DAY,
    NOW,
    IndexBundle,
    KeySet,
    PublisherKeys,
    ReleaseSpec,
    build_index,
    make_keys,
    make_release,
    make_root,
    root_bytes,
    signed_release,
    signed_root,
    with_bin,
)

NAME = "acme-audit-log"


def reader(files: dict[str, bytes]):
    def read(rel: str) -> bytes:
        if rel not in files:
            raise NotFoundError(f"{rel}: not found")
        return files[rel]

    return read


def bundle(keys: KeySet | None = None, **kw: object) -> IndexBundle:
    keys = keys or KeySet.generate(root=3, root_threshold=2)
    return build_index(
        keys,
        [
            ReleaseSpec(NAME, "1.0.0"),
            ReleaseSpec(NAME, "1.1.0", yanked=True, yanked_reason="bug"),
            ReleaseSpec("other-pkg", "0.1"),
        ],
        **kw,  # type: ignore[arg-type]
    )


def errors(report: AuditReport) -> dict[str, str]:
    return {f.path: f.message for f in report.errors}


@pytest.mark.parametrize("level", [(0, 0), (0, 2), (2, 4)])
def test_clean_index_passes_every_check(level: tuple[int, int]) -> None:
    b = bundle(level=level)
    report = audit_index(reader(b.files), now=NOW)
    assert report.ok, report.to_json()
    paths = {f.path for f in report.findings}
    # Every hosted file was looked at.
    assert set(b.files) <= paths
    assert any("yanked: bug" in f.message for f in report.findings)


def test_report_json() -> None:
    b = bundle()
    b.files[archive_path(NAME, "1.0.0")] = b"tampered"
    report = audit_index(reader(b.files), now=NOW)
    obj = json.loads(report.to_json())
    assert obj["ok"] is False
    assert obj["errors"] == 1
    assert obj["checked"] == len(report.findings)
    bad = [f for f in obj["findings"] if not f["ok"]]
    assert bad[0]["path"] == archive_path(NAME, "1.0.0")
    assert "mismatch" in bad[0]["message"]


def test_reports_every_failure_without_stopping() -> None:
    b = bundle()
    b.files[archive_path(NAME, "1.0.0")] += b"x"  # length
    b.files[archive_path("other-pkg", "0.1")] = b"y" * len(
        b.files[archive_path("other-pkg", "0.1")]
    )
    del b.files[archive_path(NAME, "1.1.0")]
    b.files[archive_path(NAME, "1.1.0") + ".sig"] += b" "
    report = audit_index(reader(b.files), now=NOW)
    errs = errors(report)
    assert "length mismatch" in errs[archive_path(NAME, "1.0.0")]
    assert "sha256 mismatch" in errs[archive_path("other-pkg", "0.1")]
    assert errs[archive_path(NAME, "1.1.0")].startswith("missing: ")
    assert "got other bytes" in errs[archive_path(NAME, "1.1.0") + ".sig"]
    assert len(report.errors) == 4


def test_tampered_bin_is_reported_and_other_bins_still_checked() -> None:
    b = bundle(level=(2, 4))  # NAME and other-pkg in different bins
    bin_path = next(p for p, d in b.files.items() if d == b.bin_bytes(NAME))
    b.files[bin_path] = b.files[bin_path].replace(b'"yanked":true', b'"yanked":false')
    report = audit_index(reader(b.files), now=NOW)
    assert "mismatch for bin" in errors(report)[bin_path]
    assert any(f.ok and f.path == archive_path("other-pkg", "0.1") for f in report.findings)


def test_missing_group_file() -> None:
    b = bundle()
    group_path = next(p for p, d in b.files.items() if d == b.group_bytes(NAME))
    del b.files[group_path]
    assert errors(audit_index(reader(b.files), now=NOW))[group_path] == "missing: the index top refers to it, but it is not there"


def test_release_signed_by_untrusted_key() -> None:
    keys = KeySet.generate()
    b = build_index(keys, [ReleaseSpec(NAME, "1.0.0", signers=make_keys(1))])
    report = audit_index(reader(b.files), now=NOW)
    assert len(report.errors) == 1
    assert "got neither" in report.errors[0].message


def test_publisher_out_of_scope_release() -> None:
    keys = KeySet.generate()
    keys.publishers.append(PublisherKeys("acme", make_keys(1), ("acme",)))
    b = build_index(
        keys,
        [
            ReleaseSpec(NAME, "1.0.0", signers=keys.publishers[0].keys),
            ReleaseSpec(
                "evil",
                "1.0",
                connectors=[("modelmesh.env.v1", "secret_store")],
                signers=keys.publishers[0].keys,
            ),
        ],
    )
    report = audit_index(reader(b.files), now=NOW)
    assert len(report.errors) == 1
    assert "modelmesh.env.v1" in report.errors[0].message


def test_bin_entry_with_release_of_other_version() -> None:
    keys = KeySet.generate()
    b = build_index(keys, [ReleaseSpec(NAME, "1.0.0")])
    # A valid 1.0.0 release listed as 2.0.0: every signature checks out, the binding does not.
    env = signed_release(make_release(NAME, "1.0.0"), keys.index)
    node = BinNode(b.bin_prefix(NAME), {NAME: (BinRelease("2.0.0", env),)})
    b = with_bin(b, node)
    report = audit_index(reader(b.files), now=NOW)
    assert len(report.errors) == 1
    assert "expected a release of acme-audit-log 2.0.0" in report.errors[0].message


def test_expired_files_are_reported_but_tree_still_checked() -> None:
    b = bundle(timestamp_expires=NOW - DAY, top_expires=NOW - DAY)
    report = audit_index(reader(b.files), now=NOW)
    errs = errors(report)
    assert "expired" in errs["timestamp.json"]
    top_path = next(p for p, d in b.files.items() if d == b.top)
    assert "expired" in errs[top_path]
    assert any(f.ok and f.path == archive_path(NAME, "1.0.0") for f in report.findings)
    graced = audit_index(reader(b.files), now=NOW, expiry_grace=timedelta(days=2))
    assert graced.ok
    assert any("within the grace period" in f.message for f in graced.findings)


def test_root_chain_checked_and_broken_link_reported() -> None:
    keys = KeySet.generate(root=3, root_threshold=2)
    r2 = signed_root(make_root(keys, version=2), keys.root)
    r3_bad = signed_root(make_root(keys, version=3), keys.root[:1])
    r4 = signed_root(make_root(keys, version=4), keys.root)
    b = build_index(keys, root=root_bytes(keys), extra_roots=[r2, r3_bad, r4])
    report = audit_index(reader(b.files), now=NOW)
    errs = errors(report)
    assert "got 1 valid" in errs["root/3.json"]
    assert "broken at root/3.json" in errs["root/4.json"]
    assert any(f.ok and f.path == "root/2.json" for f in report.findings)
    # The rest is still checked, against root 2.
    assert any(f.ok and f.path == "timestamp.json" for f in report.findings)


def test_unverifiable_root_1_stops_with_one_finding() -> None:
    keys = KeySet.generate(root=2, root_threshold=2)
    b = build_index(keys, root=signed_root(make_root(keys), keys.root[:1]))
    report = audit_index(reader(b.files), now=NOW)
    assert [f.path for f in report.findings] == ["root/1.json"]
    assert not report.ok


def test_missing_root_1() -> None:
    report = audit_index(reader({}), now=NOW)
    assert not report.ok
    assert report.findings[0].path == "root/1.json"


def test_trusted_root_must_match_chain() -> None:
    keys = KeySet.generate()
    b = bundle(keys)
    assert audit_index(reader(b.files), now=NOW, trusted_root=b.root).ok
    other = root_bytes(KeySet.generate())
    report = audit_index(reader(b.files), now=NOW, trusted_root=other)
    assert "different root" in errors(report)["root/1.json"]
    newer = signed_root(make_root(keys, version=5), keys.root)
    report = audit_index(reader(b.files), now=NOW, trusted_root=newer)
    assert "ends at version 1" in errors(report)["root/5.json"]


def test_expired_root_reported() -> None:
    keys = KeySet.generate()
    b = bundle(keys, root=root_bytes(keys, expires=NOW - DAY))
    report = audit_index(reader(b.files), now=NOW)
    assert "expired" in errors(report)["root/1.json"]


def test_audit_directory(tmp_path: Path) -> None:
    b = bundle()
    for rel, data in b.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    assert audit_directory(tmp_path, now=NOW).ok
    (tmp_path / "timestamp.json").write_bytes(b"{}")
    report = audit_directory(tmp_path, now=NOW)
    assert "timestamp.json" in errors(report)


def test_directory_reader_errors(tmp_path: Path) -> None:
    read = directory_reader(tmp_path)
    with pytest.raises(NotFoundError):
        read("missing.json")
    with pytest.raises(DownloadError, match="inside"):
        read("../outside.json")
    (tmp_path / "d").mkdir()
    with pytest.raises(DownloadError, match="cannot read"):
        read("d")


def test_naive_now_is_misuse() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        audit_index(reader({}), now=NOW.replace(tzinfo=None))
