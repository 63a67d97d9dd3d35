"""The publisher's public API in one place: creating, changing and re-signing a signed index.

The work is done in the modules beside this one, one concept each:

* :mod:`~modelmesh_connectors.publish.storage` — the storage seam (directory, S3);
* :mod:`~modelmesh_connectors.publish.state` — reading and verifying the current state;
* :mod:`~modelmesh_connectors.publish.plan` — planning and checking a new state;
* :mod:`~modelmesh_connectors.publish.commit` — the optimistic publish protocol;
* :mod:`~modelmesh_connectors.publish.releases` — init, publish (one or many), yank, timestamp;
* :mod:`~modelmesh_connectors.publish.resign` — refresh and re-signing after rotations;
* :mod:`~modelmesh_connectors.publish.roots` — staging, signing and publishing roots;
* :mod:`~modelmesh_connectors.publish.gc` — orphans and garbage collection.

Every function that changes an index takes a directory, an ``s3://bucket/prefix/`` location or
a :class:`~modelmesh_connectors.publish.storage.Storage`, and changes it through the publish
protocol: immutable files first (create-only), ``timestamp.json`` last and only by a
compare-and-swap, re-planned when another publisher got there first. Signing keys are
anything with the :class:`~modelmesh_connectors.index.keys.SigningKey` interface.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_INDEX_EXPIRY",
    "DEFAULT_TIMESTAMP_EXPIRY",
    "MEDIUM_INDEX_MAX_PACKAGES",
    "SMALL_INDEX_MAX_PACKAGES",
    "ManifestLike",
    "PackageInfoLike",
    "PublisherSpec",
    "RepositoryState",
    "init_repository",
    "load_state",
    "publish",
    "publish_many",
    "refresh_index",
    "refresh_timestamp",
    "resign_releases",
    "root_init",
    "root_publish",
    "root_rotate",
    "root_sign",
    "sharding_level",
    "yank",
]

from modelmesh_connectors.publish.releases import (
    ManifestLike,
    PackageInfoLike,
    init_repository,
    publish,
    publish_many,
    refresh_timestamp,
    yank,
)
from modelmesh_connectors.publish.resign import refresh_index, resign_releases
from modelmesh_connectors.publish.roots import (
    PublisherSpec,
    root_init,
    root_publish,
    root_rotate,
    root_sign,
)
from modelmesh_connectors.publish.state import (
    DEFAULT_INDEX_EXPIRY,
    DEFAULT_TIMESTAMP_EXPIRY,
    MEDIUM_INDEX_MAX_PACKAGES,
    SMALL_INDEX_MAX_PACKAGES,
    RepositoryState,
    load_state,
    sharding_level,
)
