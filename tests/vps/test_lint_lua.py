"""The Lua scripts are luacheck-clean (config: vps_scripts/.luacheckrc).

Never skipped: a missing luacheck fails with the Debian package to install.
"""

from __future__ import annotations

import subprocess

from tests.vps.conftest import VPS, require_tool


def test_luacheck_clean() -> None:
    luacheck = require_tool("luacheck", "lua-check")
    scripts = sorted(p.name for p in VPS.glob("*.lua"))
    assert scripts == ["etstats_common.lua", "stats_discord_webhook.lua", "stats_upload.lua"]
    result = subprocess.run(
        [luacheck, "--no-color", "--config", ".luacheckrc", *scripts],
        cwd=VPS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_lua_scripts_compile_with_lua54() -> None:
    luac = require_tool("lua5.4", "lua5.4")
    for script in sorted(VPS.glob("*.lua")):
        # loadfile compiles without running: a syntax error fails here
        code = f"assert(loadfile({str(script)!r}))"
        result = subprocess.run([luac, "-e", code], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
