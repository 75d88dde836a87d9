//! `tansu-index DB_FILE` adds the indexes Tansu 0.6.0's SQLite storage lacks to a broker's
//! database, waiting (up to 20 s) until the broker has created its schema. Idempotent; see
//! `platform::tansu`.

use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args_os()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: tansu-index DB_FILE"))?;
    platform::tansu::add_missing_indexes(path.as_ref(), Duration::from_secs(20)).await
}
