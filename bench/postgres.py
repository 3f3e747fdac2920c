"""A throwaway PostgreSQL cluster for the benchmarks' PostgreSQL figures (issue 16).

The same cluster the tests start (`tests/pg.py`: initdb as the `postgres` user, 127.0.0.1 on
a free port, fsync on, removed afterwards). Without PostgreSQL's server programs the
PostgreSQL figures are skipped, and the line says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def throwaway_cluster() -> Iterator[Any]:
    """A started `tests.pg.PgCluster`, stopped and deleted afterwards; None without
    PostgreSQL on this machine."""
    from tests.pg import PgCluster, pg_bin

    try:
        pg_bin("initdb")
    except RuntimeError:
        yield None
        return
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
