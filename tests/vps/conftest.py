"""Fixtures for the game-server script tests.

A local aiohttp server on 127.0.0.1 (port 0) stands in for both Discord's
webhook endpoint and the bot's ingest API: it records every request and answers
with scripted statuses. The Lua scripts run for real under lua5.4 with a stub
`et` table (et_stub.lua); their background curl jobs post to that server.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
from aiohttp import web
from multidict import CIMultiDict

REPO_ROOT = Path(__file__).resolve().parents[2]
VPS = REPO_ROOT / "vps_scripts"
WEBHOOK_LUA = VPS / "stats_discord_webhook.lua"
UPLOAD_LUA = VPS / "stats_upload.lua"
COMMON_LUA = VPS / "etstats_common.lua"
NOTIFY_PY = VPS / "stats_webhook_notify.py"
STUB_LUA = Path(__file__).resolve().parent / "et_stub.lua"

WEBHOOK_ID = "112233445566778899"
WEBHOOK_TOKEN = "tok3n-S3CRET_value"


def require_tool(name: str, package: str) -> str:
    """The tool's path; a clear failure (never a skip) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: apt-get install -y {package}")
    return path


def lua_str(value: str | bytes | Path) -> str:
    """A Lua string literal holding exactly these bytes (decimal escapes)."""
    if isinstance(value, Path):
        value = str(value)
    data = value.encode("utf-8") if isinstance(value, str) else value
    out = []
    for byte in data:
        ch = chr(byte)
        if 32 <= byte < 127 and ch not in '"\\':
            out.append(ch)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]  # header names are case-insensitive
    body: bytes
    status: int

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Recorder:
    """Records requests; answers them from `script` in order, then `default`."""

    requests: list[Recorded] = field(default_factory=list)
    script: list[tuple[int, str]] = field(default_factory=list)
    default: tuple[int, str] = (200, '{"status": "success"}')
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status, text = self.script.pop(0) if self.script else self.default
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=CIMultiDict(request.headers),
                body=body,
                status=status,
            )
        )
        return web.Response(status=status, text=text, content_type="application/json")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = runner.addresses[0][1]
    try:
        yield rec
    finally:
        await runner.cleanup()


@dataclass
class LuaRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and "RESULT ok" in self.stdout

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def lines(self, prefix: str) -> list[str]:
        return [line[len(prefix) :] for line in self.stdout.splitlines() if line.startswith(prefix)]


class LuaRunner:
    """Runs Lua code in a lua5.4 subprocess without blocking the event loop
    (the aiohttp recorder must keep answering while the script runs)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.count = 0
        self.lua = require_tool("lua5.4", "lua5.4")
        require_tool("curl", "curl")

    async def run(self, code: str, time_limit: float = 20.0) -> LuaRun:
        self.count += 1
        script = self.workdir / f"scenario_{self.count}.lua"
        script.write_text(code, encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            self.lua,
            str(script),
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), time_limit)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
            pytest.fail(f"lua scenario timed out:\n{out.decode(errors='replace')}")
        return LuaRun(
            proc.returncode or 0,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
        )


@pytest.fixture
def lua(tmp_path: Path) -> LuaRunner:
    work = tmp_path / "lua"
    work.mkdir()
    return LuaRunner(work)


def scenario_preamble(script: Path, cvars: dict[str, str]) -> str:
    """Lua that loads the stub, sets cvars, loads `script` and calls et_InitGame."""
    lines = [f"local stub = dofile({lua_str(STUB_LUA)})", "local GS = stub.GS"]
    for key, value in cvars.items():
        lines.append(f"stub.cvars[{lua_str(key)}] = {lua_str(value)}")
    lines += [
        f"local mod = stub.load({lua_str(script)})",
        "local C = mod.common",
        "stub.init()",
        "local app = mod.app()",
    ]
    return "\n".join(lines) + "\n"


PLAY_ROUND = """
-- warmup, then play; G_LogExit flips g_currentRound while the state is still
-- "playing", and the intermission starts a moment later.
local function end_round(round)
    stub.set_gamestate(GS.WARMUP); stub.advance(500)
    stub.set_gamestate(GS.PLAYING); stub.advance(1000)
    stub.cvars.g_currentRound = (round == 1) and "1" or "0"
    stub.advance(100)
    stub.set_gamestate(GS.INTERMISSION); stub.frame()
end
"""


def load_notify_module() -> ModuleType:
    """vps_scripts/stats_webhook_notify.py is a script, not a package module."""
    name = "stats_webhook_notify"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, NOTIFY_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
