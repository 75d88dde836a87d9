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

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use rdkafka::producer::{FutureProducer, Producer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::consumer::{ConsumerLoop, EventHandler};
use crate::db::{Db, MigrationSql};
use crate::health::{self, Health};
use crate::metrics::{self, Metrics};
use crate::outbox::{self, Outbox};
use crate::settings::{CommonSettings, HttpSettings};

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

impl Runtime {
    /// Connects, migrates, creates topics and binds; nothing is served yet.
    pub async fn build(
        service: &'static str,
        settings: &CommonSettings,
        migrations: &[MigrationSql],
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new(service)?;
        let db = Db::connect(&settings.database, migrations).await?;
        if settings.kafka.create_topics {
            crate::kafka::ensure_topics(&settings.kafka).await?;
        }
        let producer = crate::kafka::producer(&settings.kafka)?;
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port)).await?;
        Ok(Self {
            health: Health::new(Some(db.clone())),
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

/// Serves `api` beside `/healthz`, `/readyz` and `/metrics` (the last only on
/// `http.admin_port` when one is set, which serves all three), with request ids, route metrics, JSON
/// fallbacks, the body limit and the bounds of [`crate::server`], until `shutdown`; then
/// readiness turns false, the listeners keep accepting for `drain_secs`, and in-flight
/// requests finish.
pub async fn serve_http(
    listener: TcpListener,
    api: Router,
    http: &HttpSettings,
    metrics: Metrics,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_http_with_internal(listener, api, None, http, metrics, health, shutdown).await
}

/// [`serve_http`], and `internal`'s router (with the same bounds, metrics and request ids)
/// on a listener of its own that a deployment keeps from the public edge; it stops with
/// the others.
pub async fn serve_http_with_internal(
    listener: TcpListener,
    api: Router,
    internal: Option<(TcpListener, Router)>,
    http: &HttpSettings,
    metrics: Metrics,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let probes = Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready).with_state(health.clone()));
    let ops = probes.clone().route(
        "/metrics",
        get(metrics::handler).with_state(metrics.clone()),
    );
    let bounded = |router: Router| {
        router.route_layer(axum::middleware::from_fn_with_state(
            crate::server::Bounds::new(http),
            crate::server::bound,
        ))
    };
    let api = bounded(api);
    let admin = match http.admin_port {
        Some(port) => Some(TcpListener::bind((http.host.as_str(), port)).await?),
        None => None,
    };
    // With an admin port, the public one keeps the probes (a load balancer checks the
    // port it sends to, and they say only "ok" or "draining") but not the metrics.
    let (app, ops) = if admin.is_some() {
        (api.merge(probes), Some(ops))
    } else {
        (api.merge(ops), None)
    };
    let finish = |router: Router| {
        router
            .method_not_allowed_fallback(crate::http::method_not_allowed)
            .route_layer(axum::middleware::from_fn_with_state(
                crate::http::Observer {
                    metrics: metrics.clone(),
                    trust_trace_context: http.trust_trace_context,
                },
                crate::http::observe,
            ))
            .fallback(crate::http::not_found)
            .layer(DefaultBodyLimit::max(http.body_limit_bytes))
            .layer(axum::middleware::from_fn_with_state(
                http.body_limit_bytes,
                crate::http::reject_oversized,
            ))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(axum::middleware::from_fn(crate::http::bound_request_id))
    };
    tracing::info!(
        port = listener.local_addr().map(|a| a.port()).unwrap_or(0),
        admin_port = admin
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port()),
        "listening"
    );
    // Stops every listener together, after the drain.
    let stop_accepting = CancellationToken::new();
    let drain = Duration::from_secs(http.drain_secs);
    let drained = stop_accepting.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        health.start_draining();
        tokio::time::sleep(drain).await;
        drained.cancel();
    });
    // Every listener is served alike and stops with the others.
    let mut listeners = vec![(listener, app)];
    if let (Some(admin), Some(ops)) = (admin, ops) {
        listeners.push((admin, ops));
    }
    if let Some((listener, router)) = internal {
        listeners.push((listener, bounded(router)));
    }
    let servers = listeners.into_iter().map(|(listener, router)| {
        crate::server::serve(
            listener,
            finish(router),
            http,
            stop_accepting.clone().cancelled_owned(),
        )
    });
    futures::future::join_all(servers)
        .await
        .into_iter()
        .collect()
}
