"""The catalogue page: publisher text is escaped, nothing can script it, audit expects it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from modelmesh_connectors.publish.audit import audit_directory
from modelmesh_connectors.publish.catalogue import (
    CATALOGUE_FILE,
    CatalogueConnector,
    CatalogueIndex,
    CatalogueRelease,
    render_catalogue,
)
from modelmesh_connectors.publish.catalogue_writer import write_catalogue
from tests.support.simulator import RepositorySimulator

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="alert(1)">"\'&'
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def release(**overrides: object) -> CatalogueRelease:
    fields: dict[str, object] = {
        "name": "acme-audit-log",
        "version": "1.0.0",
        "description": HOSTILE,
        "connectors": (CatalogueConnector("acme.audit-log.v1", "observability", HOSTILE),),
        "signer": "publisher acme",
        "yanked": True,
        "yanked_reason": HOSTILE,
        "published": NOW,
        "sha256": "ab" * 32,
        "length": 1234,
        "file": "archives/acme-audit-log/acme-audit-log-1.0.0.zip",
    }
    fields.update(overrides)
    return CatalogueRelease(**fields)  # type: ignore[arg-type]


def test_publisher_text_is_escaped_and_no_script_can_run() -> None:
    page = render_catalogue(CatalogueIndex([release()], 1, 7, NOW)).decode()
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "onerror=\"" not in page  # only as escaped text: onerror=&quot;
    assert page.count("&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;") == 3
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert csp is not None and "default-src &#x27;none&#x27;" in csp.group(1)
    assert "script-src" not in csp.group(1)  # default-src 'none' covers scripts


def test_page_shows_versions_status_signer_dates_and_quoted_install_commands() -> None:
    page = render_catalogue(
        CatalogueIndex(
            [release(), release(version="1.1.0", yanked=False, yanked_reason=None, description="ok")],
            2, 9, NOW,
        )
    ).decode()
    assert page.index('data-version="1.1.0"') < page.index('data-version="1.0.0"')  # newest first
    assert "modelmesh-connectors install &#x27;acme-audit-log==1.0.0&#x27;" in page
    assert "modelmesh-connectors install &#x27;acme-audit-log&#x27;" in page
    assert "publisher acme" in page and "2026-01-02 03:04 UTC" in page
    assert '<span class="yanked">yanked</span>' in page and "available" in page
    assert "root version 2" in page and "timestamp version 9" in page


def test_write_catalogue_from_an_index_and_audit_expects_it(tmp_path: Path) -> None:
    with RepositorySimulator(tmp_path, serve=False) as sim:
        sim.publish("acme-audit-log", "1.0.0")
        sim.yank("acme-audit-log", "1.0.0", "<b>bold</b> reason")
        page = write_catalogue(sim.dir, now=NOW)
        assert page == sim.dir / CATALOGUE_FILE
        text = page.read_text()
        assert "acme.audit-log.v1" in text and "&lt;b&gt;bold&lt;/b&gt; reason" in text
        assert "index role" in text
        report = audit_directory(sim.dir)
        assert report.ok
        assert not [f for f in report.warnings if f.path == CATALOGUE_FILE]
        # Only that name is expected: another stray page is still an orphan.
        (sim.dir / "other.html").write_text("<p>planted</p>")
        warned = [f.path for f in audit_directory(sim.dir).warnings]
        assert "other.html" in warned and CATALOGUE_FILE not in warned
