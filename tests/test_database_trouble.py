"""One voice for a database outage: the first failure, then one line a minute."""

from __future__ import annotations

import logging

import pytest

from bot.db.pool import DatabaseTrouble, is_database_error
from bot.logging_setup import PoolReconnectFilter


def test_outage_is_reported_once_a_minute_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    trouble = DatabaseTrouble(every=60, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="bot.db.pool")
    for t in (0, 5, 30, 61, 62):
        now[0] = t
        trouble.report("[eu1] x not stored", ConnectionRefusedError("refused"))
    trouble.recovered()
    trouble.recovered()
    assert [r.getMessage() for r in caplog.records] == [
        "database unavailable: [eu1] x not stored (refused)",
        "database unavailable: [eu1] x not stored (refused); 2 similar failure(s) since",
        "database reachable again",
    ]


def test_database_errors_are_recognised() -> None:
    assert is_database_error(ConnectionRefusedError()) and is_database_error(OSError(2, "x"))
    assert not is_database_error(ValueError("bug"))


def test_asyncpg_reconnect_warning_becomes_one_line() -> None:
    try:
        raise ConnectionRefusedError("connection refused")
    except ConnectionRefusedError:
        import sys

        record = logging.LogRecord(
            "asyncpg.pool",
            logging.WARNING,
            __file__,
            1,
            "Failed to restore the pool connection floor; retrying",
            None,
            sys.exc_info(),
        )
    assert PoolReconnectFilter().filter(record)
    assert record.exc_info is None
    assert record.getMessage() == (
        "database unreachable: Failed to restore the pool connection floor "
        "(connection refused); retrying"
    )
