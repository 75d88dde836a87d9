-- One file for both backends: this schema uses only what SQLite and PostgreSQL share.
-- Listings copied from HouseRegistered: book prices stays itself and keeps taking
-- bookings while house is down.
CREATE TABLE listings (
    house_id    BIGINT PRIMARY KEY,
    house_name  TEXT   NOT NULL,
    house_price BIGINT NOT NULL
);

CREATE TABLE bookings (
    id               TEXT    PRIMARY KEY,
    customer_id      TEXT    NOT NULL,
    house_id         BIGINT  NOT NULL,
    house_name       TEXT    NOT NULL,
    house_price      BIGINT  NOT NULL CHECK (house_price > 0),
    check_in         TEXT    NOT NULL,
    check_out        TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('BOOKED', 'CONFIRMED', 'REJECTED', 'BOOK_CANCELED')),
    payment_id       BIGINT  NOT NULL,
    created_at       TEXT    NOT NULL,
    book_cancel_date TEXT,
    refund_pending   BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX bookings_customer ON bookings (customer_id);
CREATE INDEX bookings_refund_pending ON bookings (refund_pending) WHERE refund_pending = 1;

-- The house's answer for a booking that was not committed yet when it arrived.
CREATE TABLE early_decisions (
    book_id    TEXT PRIMARY KEY,
    outcome    TEXT NOT NULL CHECK (outcome IN ('RENTED', 'REJECTED')),
    reason     TEXT,
    decided_at TEXT NOT NULL
);

-- Payments seen (Paid) for bookings not known here: refunded by the reconciler unless
-- their booking commits within the grace period (I2).
CREATE TABLE unmatched_payments (
    book_id    TEXT   PRIMARY KEY,
    payment_id BIGINT NOT NULL,
    seen_at    TEXT   NOT NULL
);
