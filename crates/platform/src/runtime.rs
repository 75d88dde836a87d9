//! The service runtime: what `main` (and each integration test) builds for one service.
//!
//! [`Runtime::build`] connects and migrates the database, creates the topics, binds the
//! listener (port 0 picks a free one) and prepares the producer. [`Runtime::run`] serves
//! the service's router beside `/healthz`, `/readyz` and `/metrics`, runs the outbox relay
//! and — for a consumer — the consumer loop, until the shutdown token is cancelled; then
//! readiness turns false, in-flight requests finish, the consumer commits its offsets, the
//! relay publishes what is left, and `run` returns.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rdkafka::producer::{FutureProducer, Producer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::consumer::{ConsumerLoop, EventHandler};
use crate::db::{Db, MigrationSql};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::outbox::{self, Outbox};
use crate::serve::serve_http;
use crate::settings::CommonSettings;

/// One service's shared machinery.
pub struct Runtime {
    settings: CommonSettings,
    db: Db,
    metrics: Metrics,
    health: Health,
    outbox: Outbox,
    producer: FutureProducer,
    listener: TcpListener,
    shutdown: CancellationToken,
}

/// How long a start-up check of the database or the broker waits before it says so.
const REACH_WITHIN: Duration = Duration::from_secs(3);

/// Runs `attempt` until it succeeds or shutdown begins. Each failure is logged at once,
/// naming what cannot be reached and how to start it, and tried again every
/// [`REACH_WITHIN`]: a service started before its database or broker says so within 5 s
/// and comes up when they do.
async fn until_reachable<T, F, Fut>(
    what: &str,
    hint: &str,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    loop {
        let failed = match tokio::time::timeout(REACH_WITHIN, attempt()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => format!("no answer within {} s", REACH_WITHIN.as_secs()),
        };
        tracing::warn!(
            error = failed,
            "{what} cannot be reached: {hint}; trying again"
        );
        tokio::select! {
            () = shutdown.cancelled() => anyhow::bail!("stopped before {what} could be reached"),
            () = tokio::time::sleep(REACH_WITHIN) => {}
        }
    }
}

impl Runtime {
    /// Connects, migrates, creates topics and binds; nothing is served yet. Waits for the
    /// database and the broker, saying what it waits for ([`until_reachable`]).
    pub async fn build(
        service: &'static str,
        settings: &CommonSettings,
        migrations: &[MigrationSql],
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new(service)?;
        // A server may not be up yet; a SQLite file (or a URL that is wrong) will not get
        // better by waiting.
        let db = if secrecy::ExposeSecret::expose_secret(&settings.database.url)
            .starts_with("postgres")
        {
            until_reachable(
                "the database",
                "start PostgreSQL (./dev up --postgres uses the local one) or correct HOUSEBOOK_DATABASE__URL",
                &shutdown,
                || Db::connect(&settings.database, migrations),
            )
            .await?
        } else {
            Db::connect(&settings.database, migrations).await?
        };
        let brokers = settings.kafka.brokers.clone();
        until_reachable(
            &format!("the broker at {brokers}"),
            "start it (./dev start broker, locally) or point HOUSEBOOK_KAFKA__BROKERS at one",
            &shutdown,
            || crate::kafka::reachable(&settings.kafka, REACH_WITHIN),
        )
        .await?;
        if settings.kafka.create_topics {
            crate::kafka::ensure_topics(&settings.kafka).await?;
        }
        let producer = crate::kafka::producer(&settings.kafka)?;
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port)).await?;
        Ok(Self {
            health: Health::new(Some(Arc::new(db.clone()))),
            outbox: Outbox::new(&settings.kafka),
            settings: settings.clone(),
            db,
            metrics,
            producer,
            listener,
            shutdown,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }
    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }
    /// The outbox the service writes its events into.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    /// The token whose cancellation starts the drain.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }
    /// Readiness, for a second listener that reports it (book's gRPC health service).
    pub fn health(&self) -> Health {
        self.health.clone()
    }
    /// The shared settings.
    pub fn settings(&self) -> &CommonSettings {
        &self.settings
    }

    /// Serves until shutdown, then drains in order. `api` is the service's router with its
    /// state applied; `consumer` is its event adapter, if it consumes.
    pub async fn run(
        self,
        api: Router,
        consumer: Option<Arc<dyn EventHandler>>,
    ) -> anyhow::Result<()> {
        let Self {
            settings,
            db,
            metrics,
            health,
            outbox,
            producer,
            listener,
            shutdown,
        } = self;

        let relay_stop = CancellationToken::new();
        let relay = tokio::spawn(outbox::relay(
            db.clone(),
            outbox,
            producer.clone(),
            metrics.clone(),
            settings.kafka.clone(),
            relay_stop.clone(),
        ));

        let consumer_task = consumer.map(|handler| {
            health.require_consumer();
            let lp = ConsumerLoop {
                settings: settings.kafka.clone(),
                handler,
                producer: producer.clone(),
                metrics: metrics.clone(),
                health: health.clone(),
            };
            tokio::spawn(lp.run(shutdown.clone()))
        });

        let served = serve_http(
            listener,
            api,
            &settings.http,
            metrics.clone(),
            health.clone(),
            shutdown.clone(),
        )
        .await;
        // Whatever ended the server, the rest must wind down too.
        health.start_draining();
        shutdown.cancel();

        if let Some(task) = consumer_task {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = format!("{e:#}"), "consumer stopped with an error")
                }
                Err(e) => tracing::error!(error = %e, "consumer task failed"),
            }
        }
        relay_stop.cancel();
        if let Err(e) = relay.await {
            tracing::error!(error = %e, "outbox relay task failed");
        }
        // Blocking, and bounded by its own timeout.
        let flushed =
            tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(2))).await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!("outbox: producer not flushed on shutdown; unpublished rows go out at the next start");
        }
        db.close().await;
        tracing::info!("stopped");
        served.map_err(Into::into)
    }
}
