-- Who a booking id belongs to: the booking that committed it, or the reconciler that gave
-- up on it and refunded its payment. Both insert here in their transaction; the primary
-- key lets exactly one of them win, so a booking can never commit over a refund.
CREATE TABLE booking_claims (
    book_id TEXT PRIMARY KEY,
    claim   TEXT NOT NULL CHECK (claim IN ('BOOKED', 'ABANDONED'))
);
