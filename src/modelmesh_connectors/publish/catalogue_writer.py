"""Write an index directory's catalogue page (``index.html``) from its verified state.

Reads the signed state (:func:`~modelmesh_connectors.publish.repository.load_state`), every
bin, and each archive's manifest (for descriptions; the archive is read as data and never
imported), then renders with :func:`~modelmesh_connectors.publish.catalogue.render_catalogue`.
Only data that verified reaches the page; an archive that does not match its release is
listed without a description.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from modelmesh_connectors._internal.files import write_atomic
from modelmesh_connectors.errors import ConnectorError
from modelmesh_connectors.index.metadata import Release, Root
from modelmesh_connectors.index.trust import (
    verify_bin_node,
    verify_group_node,
    verify_release_signed,
)
from modelmesh_connectors.publish.catalogue import (
    CATALOGUE_FILE,
    CatalogueConnector,
    CatalogueIndex,
    CatalogueRelease,
    render_catalogue,
)
from modelmesh_connectors.publish.repository import load_state

__all__ = ["write_catalogue"]


def write_catalogue(
    directory: str | os.PathLike[str],
    *,
    now: datetime | None = None,
    published: Mapping[tuple[str, str], datetime] | None = None,
) -> Path:
    """Render and write ``<directory>/index.html`` (replaced atomically).

    Args:
        directory: The index directory.
        now: The generation time shown on the page (default: the clock).
        published: Publication times by (name, version), e.g. from a publish history;
            a release not in it shows its archive file's modification time.

    Returns:
        The page's path.

    Raises:
        PublishError: an index file is missing or unreadable.
        TrustError: the index does not verify.
    """
    d = Path(directory)
    state = load_state(d)
    top = state.top
    releases: list[CatalogueRelease] = []
    for gp in sorted(top.groups):
        gref = top.groups[gp]
        group = verify_group_node(
            gref,
            gp,
            (d / gref.path).read_bytes(),
            group_chars=top.group_chars,
            bin_chars=top.bin_chars,
        )
        for bp in sorted(group.bins):
            bref = group.bins[bp]
            node = verify_bin_node(bref, bp, (d / bref.path).read_bytes())
            for name, entries in sorted(node.packages.items()):
                for entry in entries:
                    try:
                        release, keyids = verify_release_signed(
                            state.root, entry.release, f"release {name} {entry.version}"
                        )
                        signer = _signer(state.root, keyids)
                    except ConnectorError:
                        continue  # signed under an older root only: 'resign' shows it again
                    item = _entry(d, release, signer, entry.yanked, entry.yanked_reason)
                    when = (published or {}).get((release.name, release.version))
                    releases.append(item if when is None else replace(item, published=when))
    page = render_catalogue(
        CatalogueIndex(
            releases,
            root_version=state.root.version,
            timestamp_version=state.timestamp.version,
            generated=(now or datetime.now(UTC)).replace(microsecond=0),
        )
    )
    target = d / CATALOGUE_FILE
    write_atomic(target, page)
    return target


def _signer(root: Root, keyids: frozenset[str]) -> str:
    if keyids & set(root.index.keyids):
        return "index role"
    names = [p.name for p in root.publishers if keyids & set(p.keyids)]
    return ", ".join(f"publisher {n}" for n in names) or "unknown"


def _entry(
    directory: Path, release: Release, signer: str, yanked: bool, reason: str | None
) -> CatalogueRelease:
    descriptions: dict[str, str] = {}
    description = ""
    published: datetime | None = None
    archive = directory / release.file
    try:
        data = archive.read_bytes()
        published = datetime.fromtimestamp(archive.stat().st_mtime, UTC).replace(microsecond=0)
    except OSError:
        data = b""  # archives hosted elsewhere: listed without descriptions
    if data and hashlib.sha256(data).hexdigest() == release.sha256:
        from modelmesh_connectors.package.package import package_from_bytes

        try:
            manifest = package_from_bytes(data, source=release.file).manifest
        except ConnectorError:
            pass
        else:
            description = manifest.description
            descriptions = {c.id: c.description or "" for c in manifest.connectors}
    return CatalogueRelease(
        name=release.name,
        version=release.version,
        description=description,
        connectors=tuple(
            CatalogueConnector(c.id, c.type, descriptions.get(c.id, "")) for c in release.connectors
        ),
        signer=signer,
        yanked=yanked,
        yanked_reason=reason,
        published=published,
        sha256=release.sha256,
        length=release.length,
        file=release.file,
    )
