"""Reproducible pack."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from modelmesh_connectors import ArchiveError
from modelmesh_connectors.pack import pack_directory, pack_to_bytes
from tests.support.packages import make_package


def test_pack_is_byte_identical_across_mtimes_and_order(tmp_path: Path) -> None:
    src = make_package(tmp_path)
    first, name = pack_to_bytes(src)
    assert name == "acme-audit-log-1.2.0.zip"
    for path in src.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
        if path.is_file():
            path.chmod(0o600)
    second, _ = pack_to_bytes(src)
    assert first == second
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as _:
        pass
    names = zipfile.ZipFile(pack_directory(src, tmp_path)).namelist()
    assert names == sorted(names)
    info = zipfile.ZipFile(tmp_path / name).getinfo("modelmesh-package.yaml")
    assert info.date_time == (1980, 1, 1, 0, 0, 0)
    assert info.external_attr >> 16 == 0o100644


def test_pack_refuses_symlinks(tmp_path: Path) -> None:
    src = make_package(tmp_path)
    (src / "acme_audit_log" / "evil.py").symlink_to("/etc/hostname")
    with pytest.raises(ArchiveError, match="symlink"):
        pack_to_bytes(src)
