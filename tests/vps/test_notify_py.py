"""stats_webhook_notify.py (the stdlib-only watcher) against the local endpoint.

main() runs in a worker thread (it uses blocking urllib) while the aiohttp
recorder answers on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path

import pytest

from tests.vps.conftest import (
    WEBHOOK_ID,
    WEBHOOK_TOKEN,
    Recorder,
    load_notify_module,
)

notify = load_notify_module()

STATS = "\U0001f4ca"
TROPHY = "\U0001f3c6"
API_KEY = "etk_live_PYKEY_fedcba9876543210"

S1 = "2025-03-03-214223-etl_frostbite-round-1.txt"
E1 = "2025-03-03-214222-etl_frostbite-round-1-endstats.txt"
S2 = "2025-03-03-224658-mp_sub-rc1-round-2.txt"
INVALID = [
    "2025-03-03-214223-etl_frostbite-round-1_ws.txt",
    "2025-02-30-214223-etl_frostbite-round-1.txt",
    "2025-03-03-214223-etl_frostbite-round-3.txt",
    "server.log",
    ".etstats-notify-webhook.json.tmp",
]


def make_dir(tmp_path: Path, names: list[str], age: float = 60.0) -> Path:
    stats_dir = tmp_path / "gamestats"
    stats_dir.mkdir(exist_ok=True)
    stamp = time.time() - age
    for name in names:
        path = stats_dir / name
        path.write_bytes(f"content of {name}\n".encode() + b"\xe9\\\t\r\n")
        os.utime(path, (stamp, stamp))
    return stats_dir


async def run_main(argv: list[str], env: dict[str, str] | None = None) -> int:
    return await asyncio.to_thread(notify.main, argv, env or {})


def webhook_args(rec: Recorder, stats_dir: Path, *extra: str) -> list[str]:
    return [
        "--once",
        "--stats-dir",
        str(stats_dir),
        "--webhook-url",
        rec.webhook_url,
        "--settle",
        "0",
        "--retry-base",
        "0.05",
        *extra,
    ]


def api_args(base_url: str, stats_dir: Path, key_file: Path, *extra: str) -> list[str]:
    return [
        "--once",
        "--mode",
        "api",
        "--stats-dir",
        str(stats_dir),
        "--api-url",
        base_url,
        "--server-id",
        "eu1",
        "--api-key-file",
        str(key_file),
        "--settle",
        "0",
        "--retry-base",
        "0.05",
        *extra,
    ]


def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_text(API_KEY + "\n")
    path.chmod(0o600)
    return path


async def test_webhook_once_posts_valid_files_only(
    recorder: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats_dir = make_dir(tmp_path, [S1, E1, S2, *INVALID])
    (stats_dir / "2025-03-03-230000-dir-round-1.txt").mkdir()  # not a regular file
    assert await run_main(webhook_args(recorder, stats_dir)) == 0
    # oldest first: the endstats file is stamped a second before its stats file
    assert [r.json() for r in recorder.requests] == [
        {"username": "ET Stats", "content": f"{TROPHY} `{E1}`"},
        {"username": "ET Stats", "content": f"{STATS} `{S1}`"},
        {"username": "ET Stats", "content": f"{STATS} `{S2}`"},
    ]
    for req in recorder.requests:
        assert req.method == "POST"
        assert req.path == f"/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"
        assert req.query == {"wait": "true"}
        assert req.headers["Content-Type"] == "application/json"
    state = json.loads((stats_dir / ".etstats-notify-webhook.json").read_text())
    assert sorted(state["sent"]) == sorted([S1, E1, S2])
    assert state["dropped"] == {}
    assert WEBHOOK_TOKEN not in capsys.readouterr().err


async def test_state_file_prevents_resending_after_restart(
    recorder: Recorder, tmp_path: Path
) -> None:
    stats_dir = make_dir(tmp_path, [S1])
    state = tmp_path / "state" / "notify.json"
    args = webhook_args(recorder, stats_dir, "--state-file", str(state))
    assert await run_main(args) == 0
    assert await run_main(args) == 0  # a restart: nothing new
    assert len(recorder.requests) == 1
    make_dir(tmp_path, [S2])
    assert await run_main(args) == 0
    assert [r.json()["content"] for r in recorder.requests] == [  # type: ignore[index]
        f"{STATS} `{S1}`",
        f"{STATS} `{S2}`",
    ]
    # written atomically: no temporary files left behind
    assert [p.name for p in state.parent.iterdir()] == ["notify.json"]


async def test_configuration_from_environment(recorder: Recorder, tmp_path: Path) -> None:
    stats_dir = make_dir(tmp_path, [S1])
    env = {
        "ETSTATS_STATS_DIR": str(stats_dir),
        "ETSTATS_WEBHOOK_URL": recorder.webhook_url,
        "ETSTATS_WEBHOOK_USERNAME": 'Stats "bot" \\ \x01',
        "ETSTATS_SERVER_ID": "eu1",
        "ETSTATS_PREFIX_FILENAMES": "1",
        "ETSTATS_SETTLE": "0",
    }
    assert await run_main(["--once"], env) == 0
    assert [r.json() for r in recorder.requests] == [
        {"username": 'Stats "bot" \\ \x01', "content": f"{STATS} `eu1-{S1}`"}
    ]


async def test_api_mode_retries_429_then_succeeds(recorder: Recorder, tmp_path: Path) -> None:
    stats_dir = make_dir(tmp_path, [S1])
    recorder.script = [(429, '{"error": "rate limited"}')]
    args = api_args(recorder.base_url, stats_dir, key_file(tmp_path))
    assert await run_main(args) == 0
    assert [r.status for r in recorder.requests] == [429, 200]
    body = (stats_dir / S1).read_bytes()
    for req in recorder.requests:
        assert req.method == "POST"
        assert req.path == "/api/ingest/stats"
        assert req.headers["X-Server-ID"] == "eu1"
        assert req.headers["X-API-Key"] == API_KEY
        assert req.headers["X-Filename"] == S1
        assert req.headers["Content-Type"] == "text/plain"
        assert req.body == body
    state = json.loads((stats_dir / ".etstats-notify-api.json").read_text())
    assert list(state["sent"]) == [S1]


async def test_api_mode_drops_client_errors_for_good(
    recorder: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats_dir = make_dir(tmp_path, [S1, S2])
    # a server echoing the key back must not get it into our logs either
    recorder.script = [(401, json.dumps({"error": f"unknown key {API_KEY}"}))]
    args = api_args(recorder.base_url, stats_dir, key_file(tmp_path))
    assert await run_main(args) == 0
    assert await run_main(args) == 0  # restart: the dropped file stays dropped
    assert [(r.headers["X-Filename"], r.status) for r in recorder.requests] == [
        (S1, 401),
        (S2, 200),
    ]
    state = json.loads((stats_dir / ".etstats-notify-api.json").read_text())
    assert list(state["dropped"]) == [S1]
    err = capsys.readouterr().err
    assert f"dropped {S1}: HTTP 401" in err
    assert API_KEY not in err


async def test_server_errors_exhaust_attempts_then_next_run_delivers(
    recorder: Recorder, tmp_path: Path
) -> None:
    stats_dir = make_dir(tmp_path, [S1])
    recorder.default = (500, '{"error": "down"}')
    args = webhook_args(recorder, stats_dir, "--max-attempts", "3")
    assert await run_main(args) == 1
    assert [r.status for r in recorder.requests] == [500, 500, 500]
    recorder.default = (204, "")
    assert await run_main(args) == 0
    assert [r.status for r in recorder.requests][-1] == 204
    assert len(recorder.requests) == 4


async def test_no_answer_is_retried_and_urls_are_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stats_dir = make_dir(tmp_path, [S1])
    url = f"http://127.0.0.1:{port}/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"
    args = [
        "--once",
        "--stats-dir",
        str(stats_dir),
        "--webhook-url",
        url,
        "--settle",
        "0",
        "--retry-base",
        "0.01",
        "--max-attempts",
        "2",
    ]
    assert await run_main(args) == 1
    err = capsys.readouterr().err
    assert "no answer" in err
    assert "attempt 2" in err
    assert f"/api/webhooks/{WEBHOOK_ID}/***" in err
    assert WEBHOOK_TOKEN not in err


def test_redact_url() -> None:
    assert (
        notify.redact_url("https://discord.com/api/webhooks/123/abc-DEF?wait=true")
        == "https://discord.com/api/webhooks/123/***?***"
    )
    assert notify.redact_url("https://stats.example.org/api") == "https://stats.example.org/api"


async def test_young_and_old_files_are_left_alone(recorder: Recorder, tmp_path: Path) -> None:
    stats_dir = make_dir(tmp_path, [S1], age=0)  # still being written, maybe
    make_dir(tmp_path, [S2], age=3 * 86400)  # history from before the install
    args = webhook_args(recorder, stats_dir)
    args[args.index("--settle") + 1] = "30"
    assert await run_main(args) == 0
    assert recorder.requests == []


async def test_corrupt_state_file_starts_empty(recorder: Recorder, tmp_path: Path) -> None:
    stats_dir = make_dir(tmp_path, [S1])
    (stats_dir / ".etstats-notify-webhook.json").write_text("{not json")
    assert await run_main(webhook_args(recorder, stats_dir)) == 0
    assert len(recorder.requests) == 1


def test_help_documents_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        notify.main(["--help"], {})
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for var in ("ETSTATS_WEBHOOK_URL", "ETSTATS_API_KEY", "ETSTATS_STATS_DIR", "--once"):
        assert var in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--once"],  # no stats dir
        ["--once", "--stats-dir", "/x"],  # webhook mode without URL
        ["--once", "--stats-dir", "/x", "--mode", "api", "--api-url", "http://x"],
        ["--once", "--stats-dir", "/x", "--webhook-url", "http://x", "--server-id", "EU-1"],
    ],
)
def test_bad_configuration_exits_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        notify.main(argv, {})
    assert exc.value.code == 2


def test_run_forever_polls_and_backs_off(tmp_path: Path) -> None:
    """The service loop, with a fake clock and sleep: 500 -> retried after the
    backoff, then the normal poll interval."""
    stats_dir = make_dir(tmp_path, [S1])
    argv = ["--stats-dir", str(stats_dir), "--webhook-url", "http://127.0.0.1:9/api/webhooks/1/t"]
    argv += ["--settle", "0", "--retry-base", "2", "--interval", "5"]
    cfg = notify.load_config(argv, {})
    now = [time.time()]
    statuses = iter([500, 200])
    posted: list[bytes] = []

    def post(url: str, body: bytes, headers: object, timeout: float) -> object:
        posted.append(body)
        return notify.Response(next(statuses), None, b"")

    class Stop(Exception):
        pass

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 3))
        now[0] += seconds
        if len(sleeps) == 3:
            raise Stop

    notifier = notify.Notifier(
        cfg,
        notify.State.load(cfg.state_file),
        notify.Sender(cfg, post),
        clock=lambda: now[0],
        sleep=sleep,
    )
    with pytest.raises(Stop):
        notifier.run_forever()
    assert sleeps == [2.0, 5.0, 5.0]
    assert len(posted) == 2 and posted[0] == posted[1]
    state = json.loads(cfg.state_file.read_text())
    assert list(state["sent"]) == [S1]
