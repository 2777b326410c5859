"""`python -m bot demo`, run for real: embedded PostgreSQL, two SFTP servers, the runtime.

No timing asserts: the demo runs with pace 0 (no pauses), and only what it did is checked.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from bot.devtools.demo import DemoResult, run_demo
from bot.devtools.demo_story import demo_corpus
from bot.ingest.failover import FailoverMode
from bot.stats import parse_filename, parse_stats_file

REPO = Path(__file__).resolve().parents[1]
EVENT = re.compile(r"^\[\+\d\d:\d\d\] (\w+)  (.*)$")


def events(out: str) -> list[tuple[str, str]]:
    """(server id, text) of every event line of the evening, in order."""
    return [(m[1], m[2]) for line in out.splitlines() if (m := EVENT.match(line))]


def expected_players() -> dict[str, int]:
    """Distinct players per server in the demo's corpus, identified as !last_session does:
    humans by GUID, bots by GUID + name."""
    players: dict[str, set[object]] = {}
    for name, data in demo_corpus():
        f = parse_filename(name)
        if f.is_endstats or f.server_id is None:
            continue
        for p in parse_stats_file(data, name).players:
            players.setdefault(f.server_id, set()).add((p.guid, p.name) if p.is_bot else p.guid)
    return {sid: len(ids) for sid, ids in players.items()}


def processes_using(path: Path) -> list[str]:
    """Command lines of live processes that mention `path` (a postmaster runs with -D path)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if str(path) in cmd:
            found.append(f"{proc.name}: {cmd}")
    return found


async def test_demo_plays_the_whole_evening() -> None:
    buf = io.StringIO()
    result = await run_demo(pace=0, out=buf)
    out = buf.getvalue()

    assert result.rounds == {"eu1": 6, "us1": 6}
    # eu1: announced by the webhook until its notifier went silent, then found by polling.
    assert result.file_sources == {"eu1": {"webhook": 8, "poll": 4}, "us1": {"poll": 12}}
    _check_failover(result, out)
    _check_event_lines(out)
    _check_posts_and_sessions(result, out)
    assert not result.data_dir.exists()
    assert processes_using(result.data_dir) == []


def _check_failover(result: DemoResult, out: str) -> None:
    moves = [(t.server_id, t.from_mode, t.to_mode) for t in result.transitions]
    assert moves == [
        ("eu1", FailoverMode.POLLING, FailoverMode.WEBHOOK),
        ("eu1", FailoverMode.WEBHOOK, FailoverMode.POLLING),
    ]
    assert "consecutive webhook successes" in result.transitions[0].reason
    assert result.transitions[1].reason.startswith("heartbeat timeout")
    printed = [text for sid, text in events(out) if text.startswith("FAILOVER")]
    assert printed[0].startswith("FAILOVER polling → webhook: 2 consecutive webhook successes")
    assert printed[1].startswith("FAILOVER webhook → polling: heartbeat timeout")
    assert len(printed) == 2


def _check_event_lines(out: str) -> None:
    lines = events(out)
    by_server = {sid: [text for s, text in lines if s == sid] for sid in ("eu1", "us1")}
    eu_webhook = [t for t in by_server["eu1"] if t.startswith("webhook 📊")]
    assert len(eu_webhook) == 4 and all("→ imported" in t for t in eu_webhook)
    assert not any(t.startswith("webhook") for t in by_server["us1"])
    assert sum(t.startswith("poll found") for t in by_server["us1"]) == 12
    # After the heartbeat failover the poller takes eu1's files, counted as unannounced.
    failover_at = next(i for i, (_s, t) in enumerate(lines) if "heartbeat timeout" in t)
    after = [t for s, t in lines[failover_at:] if s == "eu1"]
    assert sum(t.startswith("poll found eu1-") for t in after) == 4
    assert any("counted as webhook failures" in t and "unannounced file" in t for t in after)
    silent_at = next(i for i, (_s, t) in enumerate(lines) if "notifier goes silent" in t)
    assert silent_at < failover_at
    assert not any(t.startswith("webhook") for s, t in lines[silent_at:] if s == "eu1")


def _check_posts_and_sessions(result: DemoResult, out: str) -> None:
    assert result.posts == 12
    headers = re.findall(r"^--- post \d+ · (\w+) stats channel ---$", out, re.M)
    assert sorted(headers) == ["eu1"] * 6 + ["us1"] * 6
    # Every post is a round post: the map line follows its header.
    assert len(re.findall(r"^--- post .*\n\S+ · Round [12] — Demo (EU|US) · ", out, re.M)) == 12
    players = expected_players()
    assert result.sessions == {"eu1": (6, players["eu1"]), "us1": (6, players["us1"])}
    for sid, name in (("eu1", "Demo EU"), ("us1", "Demo US")):
        block = out.split(f"> !last_session {sid}\n", 1)[1]
        assert block.startswith(f"Last session · {name} · ")
        assert f"6 rounds · 3 maps · {players[sid]} players" in block.splitlines()[1]


def test_cli_demo_ignores_the_users_configuration(tmp_path: Path) -> None:
    """A clean environment, and in the working directory a .env naming a database that does
    not exist plus a broken servers.json: the demo uses neither and exits 0."""
    (tmp_path / ".env").write_text(
        "DATABASE_URL=postgresql://nobody@127.0.0.1:9/nothing\nSERVERS_CONFIG_FILE=servers.json\n"
    )
    (tmp_path / "servers.json").write_text("{ this is not json")
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--pace", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    assert "FAILOVER webhook → polling: heartbeat timeout" in out
    assert "eu1: 6 rounds stored (12 files: 8 via webhook, 4 via poll)" in out
    assert "us1: 6 rounds stored (12 files: 12 via poll)" in out
    assert "12 round posts, 2 failover transitions" in out
    found = re.search(r"^embedded PostgreSQL in (\S+)/pgdata ", out, re.M)
    assert found is not None
    data_dir = Path(found[1])
    assert not data_dir.exists()
    assert processes_using(data_dir) == []
