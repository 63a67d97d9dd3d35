"""The catalogue page in a real headless browser (Debian's chromium, scripts/ci_browser.sh).

A screenshot of the committed index's page renders (a non-trivial PNG), and a package whose
description carries markup and script shows it as text: the dumped DOM holds no element the
description tried to inject, and the page title is what the page set (no script ran).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from modelmesh_connectors.publish.catalogue import CATALOGUE_FILE
from modelmesh_connectors.publish.catalogue_writer import write_catalogue
from tests.support.packages import make_package
from tests.support.simulator import RepositorySimulator

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_PAGE = ROOT / "index" / CATALOGUE_FILE
HOSTILE = (
    '<script>document.title="pwned"</script>'
    "<img id=injected-img src=x onerror=\"document.title='pwned by onerror'\">"
    "</p></section><h1 id=injected-heading>fake</h1>"
)


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.skip("chromium is not installed (CI installs it: scripts/ci_browser.sh)")
    return found


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}", *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG (enough to tell blank from drawn)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.mark.slow  # a real headless Chromium; scripts/test.sh runs it
def test_committed_catalogue_renders_in_a_headless_browser(tmp_path: Path) -> None:
    assert COMMITTED_PAGE.is_file(), "regenerate it: python scripts/build_index.py --catalogue"
    shot = tmp_path / "catalogue.png"
    done = _run_chromium(tmp_path, "--window-size=1280,1600", f"--screenshot={shot}", COMMITTED_PAGE.as_uri())
    assert shot.is_file(), done.stderr[-3000:]
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 1600)
    # A blank page decodes to a handful of byte values; rendered text and tables to many.
    assert len(set(pixels)) > 64
    assert shot.stat().st_size > 20_000


def test_committed_catalogue_lists_every_release_of_the_committed_index(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "index", tmp_path / "index", ignore=shutil.ignore_patterns("sources"))
    fresh = write_catalogue(tmp_path / "index").read_text()

    def releases(text: str) -> list[tuple[str, str]]:
        found = []
        for section in re.findall(r'<section id="pkg-([^"]+)">(.*?)</section>', text, re.S):
            found += [(section[0], v) for v in re.findall(r'data-version="([^"]+)"', section[1])]
        return sorted(found)

    assert releases(COMMITTED_PAGE.read_text()) == releases(fresh)
    assert len(releases(fresh)) == 7  # 5 Python releases and the 2 JavaScript ones


@pytest.mark.slow  # a real headless Chromium; scripts/test.sh runs it
def test_markup_in_a_description_shows_as_text_and_no_script_runs(tmp_path: Path) -> None:
    with RepositorySimulator(tmp_path / "sim", serve=False) as sim:
        source = make_package(tmp_path / "src", "acme-audit-log", "1.0.0")
        # The hostile text is the package's own description: signed data, shown to users.
        manifest = source / "modelmesh-package.yaml"
        text = re.sub(
            r"(?m)^description: .*$", "description: " + _yaml_quote(HOSTILE), manifest.read_text(), count=1
        )
        assert HOSTILE.split(">")[0] in text
        manifest.write_text(text)
        assert sim.publish_dir(source).version == "1.0.0"
        sim.yank("acme-audit-log", "1.0.0", HOSTILE)
        page = write_catalogue(sim.dir)
        done = _run_chromium(tmp_path, "--dump-dom", page.as_uri())
    dom = done.stdout
    assert "<title>Connector catalogue</title>" in dom, done.stderr[-3000:]
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)  # type: ignore[union-attr]
    # Shown as text: the serialiser escapes it again; no element it tried to inject exists.
    assert "&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;" in dom
    assert 'id="injected-img"' not in dom and "id=injected-img" not in dom.replace("&lt;", "<").split("<img")[0]
    assert not re.search(r"<img\b", dom)
    assert not re.search(r"<h1[^>]*injected-heading", dom)
    assert not re.search(r"<script\b", dom)
    assert dom.count("&lt;h1 id=injected-heading&gt;fake&lt;/h1&gt;") >= 2  # description and yank reason


def _yaml_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
