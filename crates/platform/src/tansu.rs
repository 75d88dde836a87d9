//! Upkeep of the local Tansu broker's SQLite storage.
//!
//! Tansu 0.6.0 (the newest release) creates `header (topition, offset_id, k, v, ...)`
//! without an index, and looks headers up by `(topition, offset_id)` for every record it
//! fetches: each record scans the whole table, so fetching gets slower with every event
//! ever published (measured: relays fell to ≈50 events/s after ≈50,000 events, the broker
//! at 100 % CPU in `sqlite3VdbeExec`). [`add_missing_indexes`] adds that index to a
//! running broker's database once Tansu has created its schema. It changes no behaviour,
//! only the plan of the lookup, and is idempotent. `./dev` and the test fleets run it
//! (through the `tansu-index` binary) every time they start a broker.
//!
//! Only the `sqlite://` engine is used here. Tansu's PostgreSQL engine reads a schema the
//! operator creates, so the same index belongs in that schema; a cluster runs Apache
//! Kafka, not Tansu.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// The indexes Tansu 0.6.0's queries need and its DDL lacks.
pub const MISSING_INDEXES: &[&str] =
    &["CREATE INDEX IF NOT EXISTS header_record ON header (topition, offset_id)"];

/// Waits up to `wait` for Tansu to create its `header` table in the SQLite file at `path`,
/// then creates the [`MISSING_INDEXES`]. Safe to run against a live broker (SQLite's own
/// locking; the broker's database is in WAL mode) and to run again.
pub async fn add_missing_indexes(path: &Path, wait: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if path.exists() {
            let mut conn = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(false)
                .busy_timeout(Duration::from_secs(10))
                .disable_statement_logging()
                .connect()
                .await?;
            let ready: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'header'",
            )
            .fetch_optional(&mut conn)
            .await?;
            if ready.is_some() {
                for sql in MISSING_INDEXES {
                    sqlx::query(sql).execute(&mut conn).await?;
                }
                conn.close().await?;
                return Ok(());
            }
            conn.close().await?;
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{} has no Tansu schema after {wait:?}: is a broker using it?",
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn adds_the_header_index_once_the_schema_exists_and_again_is_harmless() {
        let dir = std::env::temp_dir().join(format!("tansu-index-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tansu.db");
        // No file yet: it waits, then says why it gave up.
        let err = add_missing_indexes(&path, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no Tansu schema"), "{err}");

        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE header (topition INTEGER, offset_id INTEGER, k BLOB, v BLOB)")
            .execute(&mut conn)
            .await
            .unwrap();
        let plan = || async {
            let mut c = SqliteConnectOptions::new()
                .filename(&path)
                .connect()
                .await
                .unwrap();
            let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(
                "EXPLAIN QUERY PLAN SELECT k, v FROM header WHERE topition = 1 AND offset_id = 2",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
        };
        assert!(plan().await.contains("SCAN"), "before: {}", plan().await);
        add_missing_indexes(&path, Duration::from_secs(1))
            .await
            .unwrap();
        add_missing_indexes(&path, Duration::from_secs(1))
            .await
            .unwrap();
        let after = plan().await;
        assert!(
            after.contains("USING INDEX header_record"),
            "after: {after}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
