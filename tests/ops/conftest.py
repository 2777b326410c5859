"""Fixtures of the operations tests: a private TLS-only PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ops.pg_tls import TlsCluster, start_tls_cluster, stop_tls_cluster


@pytest.fixture(scope="session")
def tls_cluster() -> Iterator[TlsCluster]:
    cluster = start_tls_cluster()
    try:
        yield cluster
    finally:
        stop_tls_cluster(cluster)
