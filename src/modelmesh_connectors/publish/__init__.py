"""The publisher: creating, changing, re-signing, auditing and collecting an index, in a
directory or in S3-compatible object storage (one storage seam), and key files.

Built on ``index`` and ``package`` only: never imports ``client``, ``registry`` or the shells.
"""
