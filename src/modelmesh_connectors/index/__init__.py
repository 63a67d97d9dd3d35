"""The trust core: keys, DSSE envelopes, metadata, index layout and the trusted state.

Pure: every function takes bytes, keys and the reference time as arguments and returns a
verified object or raises. Nothing here opens a file or a socket or reads the clock, and
nothing here imports ``package``, ``client``, ``publish`` or the shells.
"""
