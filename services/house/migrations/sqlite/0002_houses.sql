CREATE TABLE houses (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    house_name        TEXT    NOT NULL,
    house_price       BIGINT  NOT NULL CHECK (house_price > 0),
    house_description TEXT    NOT NULL DEFAULT '',
    created_at        TEXT    NOT NULL
);

-- One row per reserved night: the primary key is what makes a double booking impossible
-- (I3), whatever the concurrency and however many replicas.
CREATE TABLE reserved_nights (
    house_id BIGINT NOT NULL REFERENCES houses (id),
    night    TEXT   NOT NULL,
    book_id  TEXT   NOT NULL,
    PRIMARY KEY (house_id, night)
);
CREATE INDEX reserved_nights_book ON reserved_nights (book_id);

-- The decision taken for each booking, so a repeated request gets the same answer and a
-- release knows what to release.
CREATE TABLE rentals (
    book_id    TEXT   PRIMARY KEY,
    house_id   BIGINT NOT NULL,
    check_in   TEXT   NOT NULL,
    check_out  TEXT   NOT NULL,
    status     TEXT   NOT NULL CHECK (status IN ('RENTED', 'REJECTED', 'RELEASED')),
    reason     TEXT,
    updated_at TEXT   NOT NULL
);

-- Bookings cancelled before their payment reached us: a late Paid must not reserve.
CREATE TABLE canceled_bookings (
    book_id     TEXT PRIMARY KEY,
    canceled_at TEXT NOT NULL
);
