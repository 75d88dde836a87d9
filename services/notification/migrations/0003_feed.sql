-- The live feed (GET /notifications/stream): every message gets the number of the unit of
-- work that stored it, or that gave it its owner. Each unit takes the next number from
-- one counter row, whose lock it holds until it commits, so numbers are taken in commit
-- order: a reader that has seen everything up to a number misses nothing that commits
-- later. Existing messages are numbered in the order they happened.
ALTER TABLE notifications ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
UPDATE notifications SET seq = numbered.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY occurred_at, id) AS n FROM notifications) AS numbered
WHERE notifications.id = numbered.id;
CREATE TABLE feed_seq (
    id   INTEGER PRIMARY KEY,
    last BIGINT NOT NULL
);
INSERT INTO feed_seq (id, last) SELECT 1, COUNT(*) FROM notifications;
CREATE INDEX notifications_feed ON notifications (customer_id, seq, id);
CREATE INDEX notifications_seq ON notifications (seq, id);
