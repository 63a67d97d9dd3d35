"""The catalogue page: a static, human-readable view of an index (``index.html``).

Pure: data in, HTML bytes out — no I/O, no clock (the caller passes the generation time).
:mod:`~modelmesh_connectors.publish.catalogue_writer` gathers the data from an index directory
and writes the page.

The page is informational only. It is never signed, never pinned by any metadata and never
read by the loader; ``verify`` names it as the catalogue rather than an orphan. Everything
in it that a publisher wrote — names, versions, descriptions, connector IDs and types, yank
reasons, publisher names — is escaped as HTML text (a description is untrusted input), and
the page carries a Content-Security-Policy that allows no script at all, so a mistake in
escaping still could not run code in a reader's browser.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "CATALOGUE_FILE",
    "CatalogueConnector",
    "CatalogueIndex",
    "CatalogueRelease",
    "render_catalogue",
]

CATALOGUE_FILE = "index.html"  # at the index root; unsigned, never fetched by the loader

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; "
    "form-action 'none'"
)

_STYLE = """
body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:2rem auto;max-width:70rem;
padding:0 1rem;color:#1d232a;background:#fafbfc}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin:2rem 0 .4rem}
.meta{color:#57606a;font-size:.9rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem;background:#fff}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top;
font-size:.9rem}
th{background:#f0f3f6}
code{font-family:"DejaVu Sans Mono",monospace;font-size:.85rem;background:#f0f3f6;padding:0 .2rem}
.yanked{color:#9a2b2b;font-weight:600}.ok{color:#1a7f37}
.desc{white-space:pre-wrap}
ul{margin:0;padding-left:1.1rem}
"""


@dataclass(frozen=True)
class CatalogueConnector:
    """One connector of a release: its ID, type and the publisher's description."""

    id: str
    type: str
    description: str = ""


@dataclass(frozen=True)
class CatalogueRelease:
    """One published version, as the catalogue shows it.

    Attributes:
        name: Package name.
        version: Version.
        description: The package description from its manifest ("" if unknown).
        connectors: Its connectors.
        signer: Who signed it (``index role``, ``publisher 'acme'`` …).
        yanked: Whether it is yanked.
        yanked_reason: Why, when yanked.
        published: When it was published, if known.
        sha256: Archive SHA-256.
        length: Archive size in bytes.
        file: Index-relative archive path.
    """

    name: str
    version: str
    description: str
    connectors: tuple[CatalogueConnector, ...]
    signer: str
    yanked: bool
    yanked_reason: str | None
    published: datetime | None
    sha256: str
    length: int
    file: str


@dataclass(frozen=True)
class CatalogueIndex:
    """What the page shows about the index as a whole.

    Attributes:
        releases: Every release, any order (grouped by name, newest first on the page).
        root_version: Version of the current root.
        timestamp_version: Version of the current timestamp.
        generated: When the page was made.
        title: The page heading.
    """

    releases: Sequence[CatalogueRelease]
    root_version: int
    timestamp_version: int
    generated: datetime
    title: str = "Connector catalogue"
    notes: tuple[str, ...] = field(default=())


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _date(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC") if when is not None else "unknown"


def _version_key(version: str) -> tuple[int, object]:
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def render_catalogue(index: CatalogueIndex) -> bytes:
    """Render the catalogue page.

    Args:
        index: What to show.

    Returns:
        UTF-8 HTML bytes; every value from the index is escaped as text.
    """
    by_name: dict[str, list[CatalogueRelease]] = {}
    for release in index.releases:
        by_name.setdefault(release.name, []).append(release)
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(index.title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(index.title)}</h1>",
        f'<p class="meta">{len(by_name)} package(s), {len(index.releases)} release(s) · root '
        f"version {index.root_version} · timestamp version {index.timestamp_version} · "
        f"generated {_e(_date(index.generated))}</p>",
        '<p class="meta">Informational only: this page is not signed and clients never read '
        "it. What a client installs is decided by the signed metadata, verified against its "
        "trust root.</p>",
    ]
    for text in index.notes:
        out.append(f'<p class="meta">{_e(text)}</p>')
    for name in sorted(by_name):
        releases = sorted(by_name[name], key=lambda r: _version_key(r.version), reverse=True)
        latest = next((r for r in releases if not r.yanked), releases[0])
        anchor = _e(f"pkg-{name}")
        out += [
            f'<section id="{anchor}">',
            f"<h2>{_e(name)}</h2>",
            f'<p class="desc">{_e(latest.description)}</p>',
            f"<p>Install: <code>modelmesh-connectors install {_e(repr_shell(name))}</code></p>",
            "<table>",
            "<thead><tr><th>version</th><th>published</th><th>status</th><th>signed by</th>"
            "<th>connectors</th><th>install</th><th>archive</th></tr></thead>",
            "<tbody>",
        ]
        for r in releases:
            status = (
                f'<span class="yanked">yanked</span>: {_e(r.yanked_reason or "no reason given")}'
                if r.yanked
                else '<span class="ok">available</span>'
            )
            connectors = "".join(
                f"<li><code>{_e(c.id)}</code> ({_e(c.type)})"
                + (f': <span class="desc">{_e(c.description)}</span>' if c.description else "")
                + "</li>"
                for c in r.connectors
            )
            pin = repr_shell(f"{r.name}=={r.version}")
            out.append(
                f'<tr data-version="{_e(r.version)}"><td>{_e(r.version)}</td>'
                f"<td>{_e(_date(r.published))}</td><td>{status}</td><td>{_e(r.signer)}</td>"
                f"<td><ul>{connectors}</ul></td>"
                f"<td><code>modelmesh-connectors install {_e(pin)}</code></td>"
                f"<td><code>{_e(r.file)}</code><br>{r.length} bytes<br>"
                f"sha256 <code>{_e(r.sha256[:16])}…</code></td></tr>"
            )
        out += ["</tbody>", "</table>", "</section>"]
    if not by_name:
        out.append("<p>No packages are published yet.</p>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out).encode("utf-8")


def repr_shell(text: str) -> str:
    """``text`` single-quoted for a POSIX shell (``>=`` and ``<`` must not redirect)."""
    return "'" + text.replace("'", "'\"'\"'") + "'"
