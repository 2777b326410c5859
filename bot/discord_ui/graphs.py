"""`!last_session graphs`: ONE PNG with per-player DPM per round and running K/D.

Pure and blocking (about 100-300 ms): the cog calls it through
`asyncio.to_thread`. It uses matplotlib's object API with the Agg canvas and
never pyplot, so there is no global figure state, no display is needed
(headless servers) and concurrent calls from threads do not interfere.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.discord_ui import tables
from bot.discord_ui.models import PlayerRoundPoint, RoundInfo, combine_points

MAX_PLAYERS = 10  # more lines than this is unreadable
WIDTH_IN, HEIGHT_IN, DPI = 11.0, 7.5, 100  # 1100 x 750 px: sharp in Discord's preview


def _label(text: str) -> str:
    """A name safe for matplotlib: '$' would start mathtext, '_' legend-hides."""
    return tables.clean_name(text, 20).replace("$", r"\$").lstrip("_") or "?"


def _chosen_players(points: Sequence[PlayerRoundPoint], limit: int) -> list[str]:
    """Idents of the best `limit` players: humans first, then by session DPM."""
    totals = combine_points(points)
    totals.sort(key=lambda p: (p.is_bot, tables.dpm_order_key(p)))
    return [p.ident for p in totals[:limit]]


def _series(
    round_ids: Sequence[int], points: Sequence[PlayerRoundPoint], ident: str
) -> tuple[list[float], list[float]]:
    """DPM per round (NaN where absent) and running K/D after each round played."""
    mine = {p.round_id: p for p in points if p.ident == ident}
    dpm_values, kd_values = [], []
    kills = deaths = 0
    for rid in round_ids:
        p = mine.get(rid)
        if p is None:
            dpm_values.append(math.nan)
            kd_values.append(math.nan)
            continue
        kills, deaths = kills + p.kills, deaths + p.deaths
        dpm_values.append(p.dpm if p.dpm is not None else math.nan)
        kd_values.append(tables.kd_ratio(kills, deaths))
    return dpm_values, kd_values


def session_graph_png(
    rounds: Sequence[RoundInfo],
    points: Sequence[PlayerRoundPoint],
    *,
    title: str = "",
    max_players: int = MAX_PLAYERS,
) -> bytes:
    """PNG bytes: top panel DPM per round, bottom panel running K/D, one line per
    player (the best `max_players`). Orphan R2 rounds are not plotted: their
    values are two rounds' totals. With no data the image says so."""
    counted = [r for r in rounds if not r.is_orphan]
    round_ids = [r.id for r in counted]
    labels = [f"{i}. {r.map_name[:14]} R{r.round_number}" for i, r in enumerate(counted, 1)]
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    fig.suptitle(_label_text(title) or "Session", fontsize=13)
    idents = _chosen_players(points, max_players) if round_ids else []
    names = {p.ident: p.name for p in points}
    x = list(range(len(round_ids)))
    for ident in idents:
        dpm_values, kd_values = _series(round_ids, points, ident)
        line = top.plot(x, dpm_values, marker="o", label=_label(names[ident]))[0]
        bottom.plot(x, kd_values, marker="o", color=line.get_color())
    _decorate(top, bottom, labels, has_data=bool(idents))
    if idents:
        fig.legend(loc="outside right upper", fontsize=9, title="Players")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _label_text(text: str) -> str:
    return tables.clean_name(text, 90).replace("$", r"\$") if text else ""


def _decorate(top: Axes, bottom: Axes, labels: Sequence[str], *, has_data: bool) -> None:
    top.set_ylabel("DPM (this round)")
    bottom.set_ylabel("K/D (running)")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    if labels:
        bottom.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    if not has_data:
        top.text(0.5, 0.5, "no player stats in this session", ha="center", transform=top.transAxes)
