"""The host version reader and the file:// fetcher's error mapping (small seams, real files)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelmesh_connectors.client.file_fetch import DirectoryFetcher
from modelmesh_connectors.errors import DownloadError, NotFoundError
from modelmesh_connectors.package import host


def _dist_info(root: Path, name: str, metadata: str) -> None:
    d = root / name
    d.mkdir(parents=True)
    (d / "METADATA").write_text(metadata, encoding="utf-8")


def test_version_comes_from_the_first_dist_info_on_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _dist_info(first, "modelmesh_lite-9.1.dist-info", "Name: modelmesh-lite\nVersion: 9.1\n\nbody\n")
    _dist_info(second, "modelmesh_lite-8.0.dist-info", "Name: modelmesh-lite\nVersion: 8.0\n")
    unreadable = tmp_path / "missing"  # a sys.path entry that does not exist is skipped
    monkeypatch.setattr(sys, "path", [str(unreadable), str(first), str(second)])
    assert host._version_from_dist_info() == "9.1"


def test_a_dist_info_without_a_version_header_or_metadata_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dist_info(tmp_path / "a", "modelmesh_lite-1.dist-info", "Name: modelmesh-lite\n\nVersion: 7\n")
    (tmp_path / "b" / "modelmesh_lite-2.dist-info").mkdir(parents=True)  # no METADATA file
    _dist_info(tmp_path / "c", "other-1.0.dist-info", "Version: 5\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path / p) for p in ("a", "b", "c")])
    # The Version after the blank line is body text, not a header.
    assert host._version_from_dist_info() is None


def test_file_fetcher_maps_missing_directory_and_foreign_scheme(tmp_path: Path) -> None:
    fetcher = DirectoryFetcher()
    with pytest.raises(NotFoundError, match="no such file"):
        fetcher.fetch_bytes((tmp_path / "nope.json").as_uri(), max_length=10)
    with pytest.raises(NotFoundError, match="is a directory"):
        fetcher.fetch_bytes(tmp_path.as_uri(), max_length=10)
    with pytest.raises(DownloadError, match="only file://"):
        fetcher.fetch_bytes("https://127.0.0.1/x", max_length=10)
    (tmp_path / "ok.json").write_bytes(b"{}")
    assert fetcher.fetch_bytes((tmp_path / "ok.json").as_uri(), max_length=10) == b"{}"
