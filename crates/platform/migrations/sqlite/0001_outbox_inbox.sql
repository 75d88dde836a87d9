-- The transactional outbox: written in the same transaction as the state change,
-- published by the relay, marked only after the broker acknowledged it.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    event_type   TEXT    NOT NULL,
    topic        TEXT    NOT NULL,
    msg_key      TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    published_at TEXT
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- The consumer inbox: one row per applied event, in the handler's transaction.
CREATE TABLE inbox (
    event_id   TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    handled_at TEXT NOT NULL
);
