"""Reproducible pack."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from modelmesh_connectors import ArchiveError, PackageError
from modelmesh_connectors.package.pack import pack_directory, pack_to_bytes
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


@pytest.mark.parametrize("form", ["trailing separator", "existing directory", "nested new"])
def test_pack_output_directory(tmp_path: Path, form: str) -> None:
    src = make_package(tmp_path)
    dist = tmp_path / "dist"
    if form == "trailing separator":
        output: str | Path = f"{dist}{os.sep}"  # not there yet: created
    elif form == "existing directory":
        dist.mkdir()
        output = dist  # no separator needed
    else:
        dist = tmp_path / "a" / "b"
        output = f"{dist}/"
    path = pack_directory(src, output)
    assert path == dist / "acme-audit-log-1.2.0.zip"
    assert dist.is_dir()
    assert path.read_bytes() == pack_to_bytes(src)[0]


def test_pack_output_file(tmp_path: Path) -> None:
    src = make_package(tmp_path)
    # No separator and nothing there: a file of that name (parents created).
    path = pack_directory(src, tmp_path / "out" / "custom.zip")
    assert path == tmp_path / "out" / "custom.zip"
    assert path.is_file()
    assert pack_directory(src, str(tmp_path / "dist")) == tmp_path / "dist"
    assert (tmp_path / "dist").is_file()


def test_pack_output_directory_that_cannot_be_created(tmp_path: Path) -> None:
    src = make_package(tmp_path)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(PackageError, match="cannot create output directory"):
        pack_directory(src, f"{tmp_path / 'file' / 'dist'}/")
