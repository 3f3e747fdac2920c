"""Fixtures shared by the fast layer: the engine scenarios' world (see test_engine.py)."""

from tests.unit.test_engine import opened, world  # noqa: F401 - fixtures for other modules
