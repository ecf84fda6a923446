"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import pytest

from tests.e2e.postgres_server import PostgresServer, find_bindir


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL server for the module, on a fresh data directory and a free port, stopped (and its
    directory removed) at the module's end. `make test` installs Debian's postgresql package when the
    binaries are missing; without them the tests skip."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL server binaries (postgres, initdb, pg_ctl, psql) in /usr/lib/postgresql/*/bin, "
            "$POSTGRES_BINDIR or PATH: `make test` installs Debian's postgresql package when run as root"
        )
    server = PostgresServer.start(bindir)
    try:
        yield server
    finally:
        server.stop()
