-- One file for both backends: this schema uses only what SQLite and PostgreSQL share.
-- One row per booking, owned by its customer, updated in place by every event of it.
CREATE TABLE mypages (
    book_id          TEXT PRIMARY KEY,
    customer_id      TEXT,
    house_id         BIGINT,
    house_name       TEXT,
    house_price      BIGINT,
    check_in         TEXT,
    check_out        TEXT,
    book_status      TEXT,
    payment_id       BIGINT,
    payment_status   TEXT,
    house_status     TEXT,
    reason           TEXT,
    paid_at          TEXT,
    refunded_at      TEXT,
    book_cancel_date TEXT,
    updated_at       TEXT NOT NULL
);
CREATE INDEX mypages_customer ON mypages (customer_id);

-- Per-house availability by night (F7), from HouseRented / HouseRentCanceled.
CREATE TABLE house_nights (
    house_id BIGINT NOT NULL,
    night    TEXT   NOT NULL,
    book_id  TEXT   NOT NULL,
    PRIMARY KEY (house_id, night)
);
CREATE INDEX house_nights_book ON house_nights (book_id);

CREATE TABLE houses (
    house_id    BIGINT PRIMARY KEY,
    house_name  TEXT   NOT NULL,
    house_price BIGINT NOT NULL
);
