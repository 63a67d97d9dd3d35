"""Foundations shared by every layer, one of each: atomic file writes and locks, the strict YAML
reader, the library fingerprint. Private: free to change; imports nothing of the layers above."""
