"""The publisher: creating, changing, re-signing and auditing an index, and key files.

Built on ``index`` and ``package`` only: never imports ``client``, ``registry`` or the shells.
"""
