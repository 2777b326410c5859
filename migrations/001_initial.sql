-- Core schema: servers, rounds with per-player and per-weapon stats, endstats,
-- gaming sessions and the processed-files ledger. server_id everywhere.

CREATE TABLE servers (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    enabled       boolean NOT NULL DEFAULT true,
    last_seen     timestamptz,
    last_error    text,
    last_error_at timestamptz,
    files_count   integer NOT NULL DEFAULT 0,
    api_key_hash  text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A gaming session: rounds on one server with no gap over SESSION_GAP_MINUTES.
CREATE TABLE gaming_sessions (
    id          bigserial PRIMARY KEY,
    server_id   text NOT NULL REFERENCES servers (id),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz NOT NULL,
    round_count integer NOT NULL DEFAULT 0
);
CREATE INDEX gaming_sessions_server_ended ON gaming_sessions (server_id, ended_at DESC);
CREATE INDEX gaming_sessions_ended ON gaming_sessions (ended_at DESC);

CREATE TABLE rounds (
    id                 bigserial PRIMARY KEY,
    server_id          text NOT NULL REFERENCES servers (id),
    filename           text NOT NULL,
    map_name           text NOT NULL,            -- from the header (authoritative)
    round_number       smallint NOT NULL CHECK (round_number IN (1, 2)),
    status             text NOT NULL CHECK (status IN ('complete', 'paired', 'orphan_r2')),
    r1_round_id        bigint REFERENCES rounds (id),
    server_name        text NOT NULL,
    config             text NOT NULL,
    defender           smallint NOT NULL,
    winner             smallint NOT NULL,
    time_limit         text NOT NULL,
    time_limit_seconds integer,
    next_time_limit    text NOT NULL,
    duration_ms        integer,                  -- header field 8; NULL = unknown
    duration_seconds   integer,                  -- with the §2.1 fallbacks
    aborted            boolean NOT NULL DEFAULT false,
    partial            boolean NOT NULL DEFAULT false,
    player_count       integer NOT NULL,
    rejected_lines     jsonb NOT NULL DEFAULT '[]',
    file_time          timestamp NOT NULL,       -- the file name's local wall clock
    played_at          timestamptz NOT NULL,     -- file_time in the server's time zone
    gaming_session_id  bigint REFERENCES gaming_sessions (id),
    sha256             text NOT NULL,
    content            bytea NOT NULL,           -- kept to redo the differential on re-pairing
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (server_id, filename)
);
-- An R1 belongs to at most one R2.
CREATE UNIQUE INDEX rounds_r1_once ON rounds (r1_round_id) WHERE r1_round_id IS NOT NULL;
CREATE INDEX rounds_pairing ON rounds (server_id, lower(map_name), round_number, played_at);
CREATE INDEX rounds_server_played ON rounds (server_id, played_at);
CREATE INDEX rounds_session ON rounds (gaming_session_id);

-- One row per player per round with the values of THAT round (a paired R2
-- holds R2-only values; an orphan R2 holds the file's cumulative values).
CREATE TABLE player_round_stats (
    round_id              bigint NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    server_id             text NOT NULL,
    player_key            text NOT NULL,         -- guid8, or guid8:name for bots
    guid                  text NOT NULL,
    name                  text NOT NULL,
    raw_name              text NOT NULL,
    name_ascii            text NOT NULL,
    is_bot                boolean NOT NULL,
    team                  smallint NOT NULL,
    rounds                integer NOT NULL,
    source                text NOT NULL,         -- file | differential | r2_file | orphan
    kills                 integer NOT NULL,
    deaths                integer NOT NULL,
    headshots             integer NOT NULL,
    shots                 integer NOT NULL,
    hits                  integer NOT NULL,
    time_played_seconds   integer,
    damage_given          integer,
    damage_received       integer,
    team_damage_given     integer,
    team_damage_received  integer,
    gibs                  integer,
    self_kills            integer,
    team_kills            integer,
    team_gibs             integer,
    alive_percent         double precision,
    xp                    integer,
    killing_spree         integer,
    death_spree           integer,
    kill_assists          integer,
    kill_steals           integer,
    headshot_kills        integer,
    objectives_stolen     integer,
    objectives_returned   integer,
    dynamites_planted     integer,
    dynamites_defused     integer,
    times_revived         integer,
    bullets_fired         integer,
    dpm_module            double precision,
    time_played_minutes   double precision,
    tank_ratio            double precision,
    time_dead_ratio       double precision,
    time_dead_minutes     double precision,
    kd_ratio              double precision,
    useful_kills          integer,
    denied_playtime       integer,
    multikill_2           integer,
    multikill_3           integer,
    multikill_4           integer,
    multikill_5           integer,
    multikill_6           integer,
    useless_kills         integer,
    full_selfkills        integer,
    repairs_constructions integer,
    revives_given         integer,
    PRIMARY KEY (round_id, player_key)
);
CREATE INDEX player_round_stats_guid ON player_round_stats (guid);

CREATE TABLE weapon_round_stats (
    round_id   bigint NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    server_id  text NOT NULL,
    player_key text NOT NULL,
    weapon     text NOT NULL,
    hits       integer NOT NULL,
    shots      integer NOT NULL,
    kills      integer NOT NULL,
    deaths     integer NOT NULL,
    headshots  integer NOT NULL,
    PRIMARY KEY (round_id, player_key, weapon)
);

-- Endstats files; round_id is set on the one file linked to its round. Awards
-- and head-to-head rows hang off the file, so relinking touches one row.
CREATE TABLE endstats (
    id           bigserial PRIMARY KEY,
    server_id    text NOT NULL REFERENCES servers (id),
    filename     text NOT NULL,
    map_name     text NOT NULL,
    round_number smallint NOT NULL,
    file_time    timestamp NOT NULL,
    played_at    timestamptz NOT NULL,
    line_count   integer NOT NULL,
    round_id     bigint REFERENCES rounds (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (server_id, filename)
);
CREATE UNIQUE INDEX endstats_round_once ON endstats (round_id) WHERE round_id IS NOT NULL;
CREATE INDEX endstats_linking ON endstats (server_id, lower(map_name), round_number, played_at);

CREATE TABLE round_awards (
    endstats_id  bigint NOT NULL REFERENCES endstats (id) ON DELETE CASCADE,
    server_id    text NOT NULL,
    position     integer NOT NULL,
    title        text NOT NULL,
    player       text NOT NULL,
    value        text NOT NULL,
    value_number double precision,
    PRIMARY KEY (endstats_id, position)
);

CREATE TABLE round_vs_stats (
    endstats_id  bigint NOT NULL REFERENCES endstats (id) ON DELETE CASCADE,
    server_id    text NOT NULL,
    position     integer NOT NULL,
    subject      text NOT NULL,
    subject_guid text NOT NULL,
    opponent     text NOT NULL,
    kills        integer NOT NULL,
    deaths       integer NOT NULL,
    PRIMARY KEY (endstats_id, position)
);

-- The ledger: a file is processed only when the transaction that stored its
-- data also wrote its row here.
CREATE TABLE processed_files (
    server_id    text NOT NULL REFERENCES servers (id),
    filename     text NOT NULL,
    sha256       text,
    status       text NOT NULL CHECK (status IN ('done', 'failed', 'rejected')),
    source       text NOT NULL,
    attempts     integer NOT NULL DEFAULT 1,
    error        text,
    duplicate_of text,
    round_id     bigint REFERENCES rounds (id) ON DELETE SET NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, filename)
);
CREATE INDEX processed_files_hash ON processed_files (server_id, sha256);
CREATE INDEX processed_files_status ON processed_files (status, updated_at);
