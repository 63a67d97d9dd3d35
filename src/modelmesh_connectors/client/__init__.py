"""The I/O side of loading: configuration, fetchers, credentials, failover, the index updater,
the state store, the archive cache, resolution, the loader, lock files and mirrors.

Built on ``index`` and ``package``; never imports ``publish``, ``registry`` or the shells. The
loader returns verified packages and their origins: only the registry imports and registers.
"""
