"""Who may publish a package name (docs/FORMAT.md §3 "Package-name ownership").

A root ties connector-ID *namespaces* to publisher keys, but package names were free: a
publisher could claim another team's package name and ship a new version of it. The rule:

* A package name belongs to the publisher holding the **longest namespace** ``ns`` (``_``
  read as ``-``) for which ``name == ns`` or ``name`` starts with ``ns + "-"``: ``acme``
  owns ``acme``, ``acme-audit`` and ``acme-audit-log``; with ``acme-labs`` held by another
  publisher, that one owns ``acme-labs-probe``.
* A name no namespace prefixes belongs to the index role alone (the operator's ``publish``).
* The rule is evaluated against the root in force when the index signs the release in (at
  ingest, not at submission), so a namespace moved to another publisher by a root rotation
  moves its names with it; what was published before stays.

The index role signs the resulting index, so what clients see is what this rule admitted.
"""

from __future__ import annotations

__all__ = ["name_owner", "owned_names_hint"]

from modelmesh_connectors.index.metadata import Publisher, Root


def _prefixes(name: str, namespace: str) -> bool:
    ns = namespace.replace("_", "-")
    return name == ns or name.startswith(ns + "-")


def name_owner(root: Root, name: str) -> Publisher | None:
    """The publisher of ``root`` that owns package ``name``, or None (index role only).

    Args:
        root: The root in force.
        name: A normalized package name.

    Returns:
        The owning publisher; None when no publisher's namespace prefixes the name.
    """
    best: tuple[int, Publisher] | None = None
    for publisher in root.publishers:
        for ns in publisher.namespaces:
            if _prefixes(name, ns) and (best is None or len(ns) > best[0]):
                best = (len(ns), publisher)
    return None if best is None else best[1]


def owned_names_hint(publisher: Publisher) -> str:
    """Name the package names ``publisher`` may use, for an error hint."""
    shown = ", ".join(
        f"'{ns.replace('_', '-')}' or '{ns.replace('_', '-')}-…'" for ns in publisher.namespaces
    )
    return f"publisher {publisher.name!r} may publish package names {shown}"
