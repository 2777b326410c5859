"""Server registry: servers.json (or the single-server env fallback) -> immutable configs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class SSHTarget:
    host: str
    port: int
    user: str
    key_path: Path
    known_hosts: Path | None  # None only with insecure_skip_host_key
    remote_stats_path: str
    insecure_skip_host_key: bool = False


@dataclass(frozen=True, slots=True)
class ServerConfig:
    server_id: str
    server_name: str
    enabled: bool
    timezone: ZoneInfo
    ssh: SSHTarget | None  # None: push-only server, never polled
    trigger_webhook_ids: tuple[int, ...] = ()
    stats_channel_id: int | None = None
    voice_channel_ids: tuple[int, ...] = ()

    @property
    def pollable(self) -> bool:
        return self.enabled and self.ssh is not None
