"""The demo's evening as data: two game servers, three maps each, and when every file appears.

Pure: no I/O, no clock. `build_script()` turns a generated corpus (bot.devtools.gen_corpus) into
time-ordered steps, "seconds after the evening began"; the driver (bot.devtools.demo) names
the files with real local times only when it runs, so every run is "today".

The timing is realistic (round lengths come from the files' own headers) and is what makes
the failover story happen with the production thresholds: eu1's webhook notifier goes silent
after its second map, the third map's Round 1 takes longer than nothing, and 15 minutes
(WEBHOOK_HEARTBEAT_TIMEOUT) after the last webhook success the heartbeat fires while players
are still on the server.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.devtools.gen_corpus import generate_corpus
from bot.stats import parse_filename, parse_stats_file

SEED = 46  # six matches on different maps per server, one GUID per bot name
MATCHES_PER_SERVER = 3
COMMUNITY = 12  # the same dozen regulars in every match, as on a real evening
INTERMISSION_S = 90  # Round 1 ends -> Round 2 starts
MAP_CHANGE_S = 180  # Round 2 ends -> next map's Round 1 starts
WRITE_DELAY_S = 3  # the Lua module writes the file a few seconds after the round ends
SILENCE_AFTER_S = 30  # the notifier dies this long after its last message
TAIL_MINUTES = 4  # played after the last round: longer than the unannounced grace (120 s)


@dataclass(frozen=True, slots=True)
class DemoServer:
    server_id: str
    name: str
    timezone: str
    webhook: bool  # True: the game server's notifier announces its files
    first_map_s: int  # when its first map starts, seconds after the evening began
    silent_after_maps: int | None = None  # the notifier goes silent after this many maps

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


SERVERS = (
    DemoServer("eu1", "Demo EU", "Europe/Ljubljana", True, 60, silent_after_maps=2),
    DemoServer("us1", "Demo US", "America/New_York", False, 120),
)


@dataclass(frozen=True, slots=True)
class GameRound:
    map_name: str
    number: int
    duration_s: int
    stats: bytes
    endstats: bytes
    endstats_lead_s: int  # the endstats file is written this long before the stats file

    def names(self, server_id: str, written_at: datetime) -> tuple[str, str]:
        """(stats, endstats) file names for a round written at `written_at` (server-local)."""
        stem = f"{self.map_name}-round-{self.number}"
        es_at = written_at - timedelta(seconds=self.endstats_lead_s)
        return (
            f"{server_id}-{written_at:%Y-%m-%d-%H%M%S}-{stem}.txt",
            f"{server_id}-{es_at:%Y-%m-%d-%H%M%S}-{stem}-endstats.txt",
        )


@dataclass(frozen=True, slots=True)
class Step:
    at: int  # seconds after the evening began
    server: DemoServer
    round: GameRound | None = None  # None: the server's webhook notifier goes silent


def demo_corpus() -> list[tuple[str, bytes]]:
    n = MATCHES_PER_SERVER * len(SERVERS)
    return generate_corpus(n, [s.server_id for s in SERVERS], SEED, community=COMMUNITY)


def group_rounds(corpus: list[tuple[str, bytes]]) -> dict[str, list[GameRound]]:
    """Per server id, its rounds in play order, with each stats file's endstats file."""
    parsed = [(parse_filename(name), data) for name, data in corpus]
    endstats = {
        (f.server_id, f.map_name, f.round_number): (f.timestamp, data)
        for f, data in parsed
        if f.is_endstats
    }
    # The corpus's own times interleave matches; play them map after map, R1 then R2.
    match_start = {(f.server_id, f.map_name): f.timestamp for f, _ in parsed if f.round_number == 1}
    rounds: dict[str, list[tuple[datetime, int, GameRound]]] = defaultdict(list)
    for f, data in parsed:
        if f.is_endstats:
            continue
        es_time, es_data = endstats[(f.server_id, f.map_name, f.round_number)]
        played = parse_stats_file(data, f.basename).duration_seconds or 0
        lead = int((f.timestamp - es_time).total_seconds())
        rnd = GameRound(f.map_name, f.round_number, played, data, es_data, lead)
        start = match_start[(f.server_id, f.map_name)]
        rounds[f.server_id or ""].append((start, f.round_number, rnd))
    return {
        sid: [r for *_key, r in sorted(items, key=lambda x: x[:2])] for sid, items in rounds.items()
    }


def server_steps(server: DemoServer, rounds: list[GameRound]) -> list[Step]:
    """One server's evening: each round's files appear when that round ends."""
    steps: list[Step] = []
    starts = server.first_map_s
    for i, rnd in enumerate(rounds):
        written = starts + rnd.duration_s + WRITE_DELAY_S
        steps.append(Step(written, server, rnd))
        starts = written + (INTERMISSION_S if rnd.number == 1 else MAP_CHANGE_S)
        maps_done = (i + 1) // 2
        if rnd.number == 2 and maps_done == server.silent_after_maps:
            steps.append(Step(written + SILENCE_AFTER_S, server))
    return steps


def build_script(corpus: list[tuple[str, bytes]] | None = None) -> list[Step]:
    """Every server's steps, merged in time order (server order breaks ties)."""
    rounds = group_rounds(demo_corpus() if corpus is None else corpus)
    steps = [step for s in SERVERS for step in server_steps(s, rounds[s.server_id])]
    order = {s.server_id: i for i, s in enumerate(SERVERS)}
    return sorted(steps, key=lambda st: (st.at, order[st.server.server_id]))
