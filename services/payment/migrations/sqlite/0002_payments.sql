CREATE TABLE payments (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    book_id             TEXT    NOT NULL UNIQUE,
    house_id            BIGINT  NOT NULL,
    customer_id         TEXT    NOT NULL,
    house_price         BIGINT  NOT NULL CHECK (house_price > 0),
    check_in            TEXT    NOT NULL,
    check_out           TEXT    NOT NULL,
    status              TEXT    NOT NULL CHECK (status IN ('PAID', 'PAYMENT_CANCELED')),
    payment_date        TEXT    NOT NULL,
    payment_cancel_date TEXT
);
CREATE INDEX payments_customer ON payments (customer_id);
