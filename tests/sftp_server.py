"""The in-process SFTP test server now lives in bot.devtools.sftp_server (the demo uses it
too); this module keeps `from tests.sftp_server import ...` working for tests and benchmarks."""

from bot.devtools.sftp_server import (
    HOST,
    USER,
    Faults,
    ServerStats,
    SFTPTestServer,
    serve_sftp,
)

__all__ = ["HOST", "USER", "Faults", "SFTPTestServer", "ServerStats", "serve_sftp"]
