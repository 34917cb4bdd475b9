"""Fixtures for real datasets (owned by the data layer)."""
