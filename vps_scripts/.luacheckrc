-- luacheck configuration for the game-server scripts: run `luacheck .` here,
-- or `luacheck --config vps_scripts/.luacheckrc vps_scripts` from the repo root.
std = "lua54"
max_line_length = 120

-- The ET:Legacy Lua API table (read only) and the callbacks the game calls,
-- which the modules must define as globals.
read_globals = { "et" }
globals = { "et_InitGame", "et_RunFrame", "et_ShutdownGame" }
