"""What a connector package is, whatever its origin: IDs, connector types, the manifest, the
safe archive reader, ``pack``, the in-memory importer and the ``Origin`` value.

Imports only ``index``-free foundations (``errors``, ``_internal``); never ``client``,
``publish`` or the shells.
"""
