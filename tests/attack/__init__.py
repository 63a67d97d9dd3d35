"""Adversarial suite: attacks, faults, concurrency and crashes against the real loader."""
