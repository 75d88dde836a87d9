-- One file for both backends: this schema uses only what SQLite and PostgreSQL share.
-- One message per event that a customer is told about; the event id is its identity, so
-- an event applied twice (or replayed) adds nothing.
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    book_id     TEXT NOT NULL,
    customer_id TEXT,
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL,
    occurred_at TEXT NOT NULL
);
CREATE INDEX notifications_customer ON notifications (customer_id, occurred_at);
CREATE INDEX notifications_book ON notifications (book_id);

-- Whose booking it is: learnt from Booked or Paid, whichever comes first. A message about
-- a booking whose owner is not known yet is kept without one (an admin sees it) and given
-- its owner when it is learnt.
CREATE TABLE owners (
    book_id     TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL
);
