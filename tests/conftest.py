"""Shared pytest fixtures.

The real test layer (``@pytest.mark.real``) talks to one local Synapse per test session,
started lazily by the ``synapse`` fixture from ``bot.devtools.synapse``. Its start-up time is
reported in the terminal summary.

Tests that take the ``backend`` argument (directly or through a fixture such as the engine
scenarios' ``world``) run on SQLite and on PostgreSQL: one throwaway cluster per session
(``tests/pg.py``), started on first need, and a fresh database per test. ``-m 'not pg'``
leaves out everything that needs PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from bot.devtools.synapse import LocalSynapse
from tests.pg import PgCluster

SYNAPSE_START_SECONDS = pytest.StashKey[float]()
PG_START_SECONDS = pytest.StashKey[float]()

POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.pg, id="postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that takes `backend` (directly or through a fixture) on both."""
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", ["sqlite", POSTGRESQL])


@pytest.fixture(scope="session")
def pg_cluster(pytestconfig: pytest.Config) -> Iterator[PgCluster]:
    """A PostgreSQL server of this session's own, removed at the end."""
    cluster = PgCluster()
    started = time.monotonic()
    try:
        cluster.start()
        pytestconfig.stash[PG_START_SECONDS] = time.monotonic() - started
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    """The name of a database migrated to the current schema, to copy per test (a copy takes
    ~40 ms where creating and migrating takes ~400 ms)."""
    from storage.postgres import PostgresDatabase

    name = "cb_migrated_template"
    pg_cluster.admin(f"CREATE DATABASE {name}")

    async def migrate() -> None:
        db = PostgresDatabase(pg_cluster.dsn(name))
        await db.open()
        await db.close()

    pg_cluster.run_async(migrate())
    return name


def _scratch(pg_cluster: PgCluster, template: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    pg_cluster.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield pg_cluster.dsn(name)
    finally:
        pg_cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_dsn(pg_cluster: PgCluster, pg_template: str) -> Iterator[str]:
    """A new database at the current schema version, without rows; dropped afterwards.

    Synchronous, so that async fixtures can ask for it with `request.getfixturevalue`."""
    yield from _scratch(pg_cluster, pg_template)


@pytest.fixture
def pg_empty_dsn(pg_cluster: PgCluster) -> Iterator[str]:
    """A new, empty database (no schema at all); dropped afterwards."""
    yield from _scratch(pg_cluster, "template1")


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
    pg_seconds = terminalreporter.config.stash.get(PG_START_SECONDS, None)
    if pg_seconds is not None:
        terminalreporter.write_line(f"throwaway PostgreSQL started in {pg_seconds:.2f} s")
