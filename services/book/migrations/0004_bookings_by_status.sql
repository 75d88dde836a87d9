-- GET /books?status=...: an operator (or a benchmark) asks which bookings still wait for
-- the house, without reading them all.
CREATE INDEX bookings_status ON bookings (status, id);
