"""Fixtures for trained runs (owned by the training layer)."""
