"""Servers for development and tests only (`make run`, the test fixtures): never imported in production."""
