//! The database layer: one [`Db`] over SQLite (a file) or PostgreSQL, chosen by URL.
//!
//! Both run through sqlx's `Any` driver, so a service writes its SQL once in the subset the
//! two share (`$1` placeholders, `ON CONFLICT`, `RETURNING`, BIGINT and TEXT columns) and
//! ships one migration set per backend. Timestamps are stored as RFC 3339 text.

use std::borrow::Cow;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor};

use crate::settings::DatabaseSettings;

/// Which engine a [`Db`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (the local default).
    Sqlite,
    /// A PostgreSQL server (what a cluster uses).
    Postgres,
}

/// A connection pool plus the backend it talks to.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// One migration, written for each backend.
#[derive(Debug, Clone, Copy)]
pub struct MigrationSql {
    /// Ordered version.
    pub version: i64,
    /// Short description.
    pub description: &'static str,
    /// SQLite dialect.
    pub sqlite: &'static str,
    /// PostgreSQL dialect.
    pub postgres: &'static str,
}

/// The platform's own tables: the transactional outbox and the consumer inbox.
pub const PLATFORM_MIGRATION: MigrationSql = MigrationSql {
    version: 1,
    description: "outbox and inbox",
    sqlite: include_str!("../migrations/sqlite/0001_outbox_inbox.sql"),
    postgres: include_str!("../migrations/postgres/0001_outbox_inbox.sql"),
};

/// The most parameters one multi-row statement binds: far under SQLite's limit (32 766)
/// and PostgreSQL's (65 535), and enough that a consumed batch
/// (the consumer's `MAX_BATCH`) of rows up to 8 columns wide is one statement.
pub const PARAMS_PER_STATEMENT: usize = 2048;

/// How many rows of `params` parameters each fit one statement ([`PARAMS_PER_STATEMENT`]):
/// the chunk size for a multi-row `VALUES` or `IN` list.
pub fn rows_per_statement(params: usize) -> usize {
    (PARAMS_PER_STATEMENT / params.max(1)).max(1)
}

/// `$from, $from+1, …` for `n` parameters (an `IN (…)` list).
pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $cols), ($cols+1, …), …` for `rows` rows: a multi-row `VALUES` list, bound
/// row by row.
pub fn values(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(r * cols + 1, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A PostgreSQL URL with TLS only where it asks for it (`sslmode=require`, `verify-ca`,
/// `verify-full`, or `prefer`): without an `sslmode`, `disable`. sqlx's own default is
/// `prefer`, which (now that the build speaks TLS) would quietly encrypt every local
/// connection — a TLS handshake per pooled connection and the cost on every query —
/// while verifying nothing; a deployment that wants TLS says so, and then gets it checked.
fn postgres_url(url: &str) -> String {
    if url.contains("sslmode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

impl Db {
    /// Connects and runs the platform migration followed by the service's.
    pub async fn connect(
        settings: &DatabaseSettings,
        migrations: &[MigrationSql],
    ) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let url = settings.url.expose_secret();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("database url must start with sqlite: or postgres:");
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => postgres_url(url),
        };
        let options: AnyConnectOptions = url.parse()?;
        let max = settings.max_connections.unwrap_or(match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 10,
        });
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL sync in WAL mode is
                        // durable across process crashes (I1), only not across power loss.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let db = Self { pool, backend };
        db.migrate(migrations).await?;
        Ok(db)
    }

    async fn migrate(&self, migrations: &[MigrationSql]) -> anyhow::Result<()> {
        let list = std::iter::once(&PLATFORM_MIGRATION)
            .chain(migrations)
            .map(|m| {
                let sql = match self.backend {
                    Backend::Sqlite => m.sqlite,
                    Backend::Postgres => m.postgres,
                };
                Migration::new(
                    m.version,
                    Cow::Borrowed(m.description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect::<Vec<_>>();
        let mut migrator = Migrator::DEFAULT;
        migrator.migrations = Cow::Owned(list);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that read first and then writes fails at once with
    /// `database is locked` when another process (a second replica on the same file)
    /// wrote meanwhile, whereas an immediate one waits its turn (`busy_timeout`).
    ///
    /// Cancel-safe: a caller dropped while `BEGIN` is in flight (a client that hung up, a
    /// timeout) must not leave the connection inside a transaction. sqlx 0.8.6 does, on
    /// both backends: on PostgreSQL the rollback guard counts the transaction only once
    /// `BEGIN`'s answer is read (launchbadge/sqlx#4393), and the pool then hands the
    /// connection on, so later autocommit statements run uncommitted inside the stale
    /// transaction (the outbox relay's own among them); on
    /// SQLite the connection is left counting a transaction nobody holds, and every later
    /// `BEGIN IMMEDIATE` on it fails (`InvalidSavePointStatement`). So the `BEGIN` runs
    /// in a task of its own, which finishes even when its caller is gone; the transaction
    /// it yields is then dropped, and rolled back.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        let (pool, backend) = (self.pool.clone(), self.backend);
        tokio::spawn(async move {
            match backend {
                Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => pool.begin().await,
            }
        })
        .await
        .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?
    }

    /// One page of `SELECT … FROM …` (`select`), of one owner's rows (`owner_column =
    /// owner`) or of all, in `order_by` order: the owner-filtered listing every read API
    /// of the fleet serves.
    pub async fn page(
        &self,
        select: &str,
        owner_column: &str,
        owner: Option<&str>,
        order_by: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
        match owner {
            Some(o) => {
                let sql = format!(
                    "{select} WHERE {owner_column} = $1 ORDER BY {order_by} LIMIT $2 OFFSET $3"
                );
                sqlx::query(&sql)
                    .bind(o.to_owned())
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                let sql = format!("{select} ORDER BY {order_by} LIMIT $1 OFFSET $2");
                sqlx::query(&sql)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
            }
        }
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Makes the SQLite file's folder and asks for the file to be created if missing.
fn sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if !path.is_empty() && path != ":memory:" {
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// Now, to the microsecond the tables store (so what a write returns equals what a read
/// returns later).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use crate::clock::Clock as _;
    crate::clock::SystemClock.now()
}

/// A time as the RFC 3339 text the tables store.
pub fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    crate::clock::text(t)
}

/// A stored time back.
pub fn parse_time(text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    Ok(chrono::DateTime::parse_from_rfc3339(text)?.with_timezone(&chrono::Utc))
}

/// Now, as the RFC 3339 text the tables store.
pub fn now_text() -> String {
    time_text(now())
}

/// A secret URL for tests and tools.
pub fn url(text: impl Into<String>) -> SecretString {
    SecretString::from(text.into())
}

/// Whether an error is a uniqueness violation (SQLite and PostgreSQL alike).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db
                    .code()
                    .is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
        }
        _ => false,
    }
}

#[async_trait::async_trait]
impl crate::health::Dependency for Db {
    async fn ready(&self) -> Result<(), &'static str> {
        self.ping().await.map_err(|_| "database unavailable")
    }
}
