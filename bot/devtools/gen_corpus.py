"""Synthetic stats/endstats files for benchmarks and load tests.

`generate_corpus(n_pairs, servers, seed)` returns (basename, content) tuples:
for every match an R1 stats file, an R2 stats file and both endstats files,
named with the server prefix (`eu1-2025-...-round-1.txt`). The content follows
stats-format.md: 12-20 players (some bots on every other server, colour codes
and non-ASCII names), realistic weapon groups, 38 extended fields, R2 values
cumulative where §5 says so. Timestamps: one evening session per server and
day from about 20:00, a match every 25-35 minutes, R2 written 10-25 minutes
after R1, endstats 0-3 s before its stats file.

Deterministic for a given seed; pure Python, no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MAPS = ("etl_frostbite", "supply", "mp_sub-rc1", "etl_adlernest", "radar", "et_ice", "karsiah_te2")
NAMES = (
    "Brick", "Nightowl", "^2M^0r^b. ^8T", "Frosty77", "^4Søren", "^2José34", "M^^oose84",
    "^>Doc59^<", "^:-^9=^7Grumpy", "Yeti", "Wombat", "^5Pixel", "Havoc", "Vortex", "Noodle",
    "^3Ł^8u^Bk^0a^0s^bz", "Biscuit", "|XY| Turbo", "Gizmo", "Pretzel79", "Sprocket71", "Ghost",
)  # fmt: skip
BOT_NAMES = ("Hans", "Heinz", "Klaus", "Jerry", "Carter", "Jones", "Baker", "Dawson")
HOSTNAMES = ("^1ET^7:^4Legacy ^7Competitive #1", "^a#^7p^au^7blic^a.^7fun ^3(omnibots)")
# Weapon loadouts: (axis weapons, allies weapons) share pistols/grenades by side.
AXIS = (2, 4, 11, 7, 8, 23, 25, 18)
ALLIES = (3, 5, 11, 22, 9, 24, 6, 27)
CUMULATIVE = (0, 1, 2, 3, 4, 5, 6, 7, 20)  # extended indexes summed over rounds (§5)


@dataclass
class _Player:
    guid: str
    name: str
    is_bot: bool
    team: int  # in R1; swapped in R2
    weapons: dict[int, list[int]] = field(default_factory=dict)  # R1 values
    ext: list[float] = field(default_factory=list)


def _weapon_group(rng: random.Random, minutes: float) -> list[int]:
    shots = rng.randint(0, int(15 * minutes))
    hits = rng.randint(0, shots // 2 + 3)
    kills = rng.randint(0, max(1, hits // 12))
    return [hits, shots, kills, 0, rng.randint(0, hits // 5 + 1)]  # deaths: _assign_deaths


def _extended(rng: random.Random, minutes: float, kills: int, deaths: int) -> list[float]:
    ext: list[float] = [float(rng.randint(0, 3)) for _ in range(38)]
    ext[0] = rng.randint(300, 700) * minutes / 2  # damage given
    ext[1] = rng.randint(300, 700) * minutes / 2  # damage received
    ext[2], ext[3] = rng.randint(0, 200), rng.randint(0, 200)
    ext[8] = round(rng.uniform(70, 98), 1)  # alive percent
    ext[9] = rng.randint(5, 80)  # xp
    ext[20] = rng.randint(50, 900)  # bullets fired
    ext[21] = 0.0
    ext[22] = round(minutes, 1)
    ext[23] = 0.0
    ext[24] = round(rng.uniform(0, 25), 1)
    ext[25] = round(minutes * rng.uniform(0.02, 0.25), 1)
    ext[26] = round(kills / deaths, 1) if deaths else float(kills + 1)
    ext[28] = rng.randint(0, 300)
    return ext


def _regulars(rng: random.Random) -> list[tuple[str, str]]:
    """A server's community: (GUID8, name) of ~90 humans who come back every evening."""
    names = [*NAMES, *(f"{name}{n}" for n in (2, 7, 9) for name in NAMES)]
    return [(f"{rng.getrandbits(32):08X}", name) for name in names]


def _players(rng: random.Random, regulars: list[tuple[str, str]], bots: bool) -> list[_Player]:
    count = rng.randint(12, 20)
    n_bots = rng.randint(2, 6) if bots else 0
    # min(): a small community (generate_corpus(community=...)) fields everyone it has.
    people = rng.sample(regulars, min(count - n_bots, len(regulars)))
    players = [_Player(guid, name, False, 1 + i % 2) for i, (guid, name) in enumerate(people)]
    for i, name in enumerate(rng.sample(BOT_NAMES, n_bots)):
        players.append(_Player(f"OMNIBOT{rng.randint(0, 1)}", f"[BOT]{name}", True, 1 + i % 2))
    return players


def _fill_round(rng: random.Random, players: list[_Player], minutes: float) -> None:
    """This round's values for everyone (R2: R2-only; the caller adds R1 where cumulative)."""
    for p in players:
        pool = AXIS if p.team == 1 else ALLIES
        p.weapons = {w: _weapon_group(rng, minutes) for w in rng.sample(pool, rng.randint(3, 6))}
    _assign_deaths(rng, players)
    for p in players:
        kills = sum(g[2] for g in p.weapons.values())
        deaths = sum(g[3] for g in p.weapons.values())
        p.ext = _extended(rng, minutes, kills, deaths)


def _assign_deaths(rng: random.Random, players: list[_Player]) -> None:
    """Every kill is somebody's death, counted in the victim's group for the killer's
    weapon (§2.2: a medic killed by a Panzerfaust gets a Panzerfaust group)."""
    for killer in players:
        victims = [q for q in players if q.team != killer.team]
        for weapon, group in list(killer.weapons.items()):
            for _ in range(group[2] if victims else 0):
                rng.choice(victims).weapons.setdefault(weapon, [0, 0, 0, 0, 0])[3] += 1


def _fmt(value: float, index: int) -> str:
    return f"{value:.1f}" if index in (8, 21, 22, 23, 24, 25, 26) else str(int(value))


def _line(
    p: _Player, rounds: int, team: int, weapons: dict[int, list[int]], ext: list[float]
) -> str:
    mask = sum(1 << w for w in weapons)
    groups = "".join(" " + " ".join(map(str, weapons[w])) for w in sorted(weapons))
    tail = "\t".join(_fmt(v, i) for i, v in enumerate(ext))
    return f"{p.guid}\\{p.name}\\{rounds}\\{team}\\{mask}{groups} \t{tail}"


def _r2_values(
    p: _Player, r1_weapons: dict[int, list[int]], r1_ext: list[float]
) -> tuple[dict, list[float]]:
    """R2 line values: R1 + R2 for the cumulative group, R2 alone otherwise."""
    weapons = {w: list(g) for w, g in r1_weapons.items()}
    for w, g in p.weapons.items():
        weapons[w] = [a + b for a, b in zip(weapons.get(w, [0] * 5), g, strict=True)]
    ext = list(p.ext)
    for i in CUMULATIVE:
        ext[i] = r1_ext[i] + p.ext[i]
    ext[22] = round(r1_ext[22] + p.ext[22], 1)
    alive = (r1_ext[8] * r1_ext[22] + p.ext[8] * p.ext[22]) / ext[22]
    ext[8] = round(alive, 1)
    return weapons, ext


# (title, value of a player) for the awards the generator writes, from this round's values
_AWARDS: tuple[tuple[str, Callable[[_Player, float], float]], ...] = (
    ("Most damage given", lambda p, _m: int(p.ext[0])),
    ("Most deaths", lambda p, _m: sum(g[3] for g in p.weapons.values())),
    ("Most kills per minute", lambda p, m: round(sum(g[2] for g in p.weapons.values()) / m, 2)),
    ("Best K/D ratio", lambda p, _m: p.ext[26]),
    ("Most bullets fired", lambda p, _m: int(p.ext[20])),
    ("Most revives", lambda p, _m: int(p.ext[37])),
    ("Most panzer kills", lambda p, _m: sum(p.weapons.get(w, [0] * 5)[2] for w in (8, 9))),
)


def _endstats(rng: random.Random, players: list[_Player], minutes: float) -> str:
    clean = {p.guid + p.name: _ascii(p.name) for p in players}
    lines = []
    for title, value in _AWARDS:
        best = max(players, key=lambda p, v=value: v(p, minutes))  # type: ignore[misc]
        amount = value(best, minutes)
        if amount > 1:  # the module only writes awards worth more than 1
            text = f"{amount:g}" if isinstance(amount, float) and amount % 1 else str(int(amount))
            lines.append(f"{title}\t{clean[best.guid + best.name]}\t{text}")
    for p in players:
        foes = [q for q in players if q.team != p.team]
        rows = [(clean[q.guid + q.name], rng.randint(0, 5), rng.randint(0, 5)) for q in foes]
        rows.sort(key=lambda r: -r[1])  # rows come sorted by kills, descending
        lines.append(f"VS_HEADER\t{clean[p.guid + p.name]}\t{p.guid}{rng.getrandbits(96):024X}")
        lines += [f"{n}\t{k}\t{d}" for n, k, d in rows if k or d]
    return "".join(line + "\n" for line in lines)


def _ascii(name: str) -> str:
    from bot.stats.colors import ascii_clean

    return ascii_clean(name.encode("utf-8"))


def _match(
    rng: random.Random, server: tuple[str, int, list[tuple[str, str]]], r1_time: datetime
) -> list[tuple[str, bytes]]:
    server_id, index, regulars = server
    players = _players(rng, regulars, bots=index % 2 == 1)  # every other server has bots
    map_name = MAPS[rng.randrange(len(MAPS))]
    host = HOSTNAMES[index % 2]
    limit = rng.choice((10, 12, 15))
    r1_min = rng.uniform(5, limit)
    _fill_round(rng, players, r1_min)
    r1_lines = [_line(p, 1, p.team, p.weapons, p.ext) for p in players]
    rng.shuffle(r1_lines)  # the module writes in hash order
    r1_clock = f"{int(r1_min)}:{int(r1_min * 60) % 60:02d}"
    r1_header = (
        f"{host}\\{map_name}\\legacy3\\1\\1\\2\\{limit}:00\\{r1_clock}\\{int(r1_min * 60000)}"
    )
    r1_endstats = _endstats(rng, players, r1_min)
    r2_min = rng.uniform(3, r1_min)
    r1_values = {id(p): (p.weapons, p.ext) for p in players}
    for p in players:
        p.team = 3 - p.team  # the groups swap sides in stopwatch
    _fill_round(rng, players, r2_min)
    r2_lines = [_line(p, 2, p.team, *_r2_values(p, *r1_values[id(p)])) for p in players]
    rng.shuffle(r2_lines)
    r2_header = f"{host}\\{map_name}\\legacy3\\2\\1\\1\\{r1_clock}\\71:23\\{int(r2_min * 60000)}"
    r2_endstats = _endstats(rng, players, r2_min)
    r2_time = r1_time + timedelta(minutes=rng.uniform(10, 25))
    files = []
    rounds = (
        (1, r1_time, r1_header, r1_lines, r1_endstats),
        (2, r2_time, r2_header, r2_lines, r2_endstats),
    )
    for rnd, when, header, lines, endstats in rounds:
        stamp = when.strftime("%Y-%m-%d-%H%M%S")
        content = "".join(line + "\n" for line in (header, *lines)).encode("utf-8")
        files.append((f"{server_id}-{stamp}-{map_name}-round-{rnd}.txt", content))
        es_stamp = (when - timedelta(seconds=rng.randint(0, 3))).strftime("%Y-%m-%d-%H%M%S")
        es_name = f"{server_id}-{es_stamp}-{map_name}-round-{rnd}-endstats.txt"
        files.append((es_name, endstats.encode("ascii")))
    return files


def generate_corpus(
    n_pairs: int, servers: list[str], seed: int, *, community: int | None = None
) -> list[tuple[str, bytes]]:
    """(basename, content) for n_pairs matches spread over `servers`: per match
    the R1 and R2 stats files and their endstats files, in time order per server.

    `community` caps each server's regulars (default ~90 people) so that a short
    evening shows the same faces in every match, as a real one does (the demo);
    None keeps the outputs of earlier versions byte for byte."""
    rng = random.Random(seed)
    # Slicing after _regulars() keeps the random stream, hence the default corpus, unchanged.
    communities = [(sid, i, _regulars(rng)[:community]) for i, sid in enumerate(servers)]
    files: list[tuple[str, bytes]] = []
    start = datetime(2025, 1, 6, 20, 0, 0)
    per_evening = 8
    for i in range(n_pairs):
        server = communities[i % len(servers)]
        slot = i // len(servers)
        evening = start + timedelta(days=slot // per_evening, minutes=rng.randint(0, 59))
        r1_time = evening + timedelta(minutes=35 * (slot % per_evening), seconds=rng.randint(0, 59))
        files += _match(rng, server, r1_time)
    return files
