"""Shared pytest fixtures.

The real test layer (``@pytest.mark.real``) talks to one local Synapse per test session,
started lazily by the ``synapse`` fixture from ``bot.devtools.synapse``. Its start-up time is
reported in the terminal summary.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.devtools.synapse import LocalSynapse

SYNAPSE_START_SECONDS = pytest.StashKey[float]()


@pytest.fixture(scope="session")
def synapse(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[LocalSynapse]:
    """A running local Synapse with relaxed rate limits, shared by the whole session."""
    server = LocalSynapse(tmp_path_factory.mktemp("synapse"))
    try:
        server.start()
        assert server.last_start_seconds is not None
        pytestconfig.stash[SYNAPSE_START_SECONDS] = server.last_start_seconds
        yield server
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how long the session's Synapse took to start, if one was started."""
    seconds = terminalreporter.config.stash.get(SYNAPSE_START_SECONDS, None)
    if seconds is not None:
        terminalreporter.write_line(f"local Synapse started in {seconds:.2f} s")
