"""The host ModelMesh distribution: its name and installed version (the built-ins' version).

Kept apart from :mod:`~modelmesh_connectors.package.package` so that
``ConnectorRegistry().list_connectors()`` does not import the package reader (yaml,
packaging, the zip reader), and cheap: ``importlib.metadata`` costs ~17 ms to import, so the
version is read from the distribution's ``METADATA`` file directly, in ``sys.path`` order
(the order ``importlib.metadata`` searches), falling back to ``importlib.metadata`` when no
plain ``.dist-info`` directory is found.
"""

from __future__ import annotations

import functools
import os
import sys

__all__ = ["MODELMESH_DISTRIBUTION", "modelmesh_version"]

MODELMESH_DISTRIBUTION = "modelmesh-lite"  # the host distribution whose version built-ins carry
_DIST_INFO_PREFIX = "modelmesh_lite-"  # its normalized .dist-info directory name prefix


def _version_from_dist_info() -> str | None:
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in sorted(names):
            if not (name.lower().startswith(_DIST_INFO_PREFIX) and name.endswith(".dist-info")):
                continue
            try:
                with open(os.path.join(entry, name, "METADATA"), encoding="utf-8") as handle:
                    for line in handle:
                        if not line.strip():
                            break  # end of the headers
                        key, _, value = line.partition(":")
                        if key.strip().lower() == "version":
                            return value.strip()
            except OSError:
                continue
    return None


@functools.cache
def modelmesh_version() -> str:
    """The installed ModelMesh version (the version of every built-in); ``"0"`` if unknown."""
    found = _version_from_dist_info()
    if found is not None:
        return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(MODELMESH_DISTRIBUTION)
    except PackageNotFoundError:  # pragma: no cover - modelmesh-lite is a dependency
        return "0"
