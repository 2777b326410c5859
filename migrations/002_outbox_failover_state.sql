-- Outbox of rounds to post (exactly one row per round, written in the import
-- transaction), failover transitions, small bot state, retry backoff.

CREATE TABLE round_outbox (
    id              bigserial PRIMARY KEY,
    round_id        bigint NOT NULL UNIQUE REFERENCES rounds (id) ON DELETE CASCADE,
    server_id       text NOT NULL REFERENCES servers (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    channel_id      bigint,
    message_ids     bigint[],                -- every message the post took (embeds split)
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX round_outbox_pending ON round_outbox (next_attempt_at) WHERE sent_at IS NULL;

CREATE TABLE failover_transitions (
    id        bigserial PRIMARY KEY,
    server_id text NOT NULL,
    from_mode text NOT NULL,
    to_mode   text NOT NULL,
    reason    text NOT NULL,
    at        timestamptz NOT NULL
);
CREATE INDEX failover_transitions_server_at ON failover_transitions (server_id, at DESC);

-- Small key/value state, e.g. the last control-channel message handled.
CREATE TABLE bot_state (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A failed file is retried after this time (exponential backoff).
ALTER TABLE processed_files ADD COLUMN next_attempt_at timestamptz;
