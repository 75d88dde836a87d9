//! The same-hop limit: a chain of three processes that do nothing but pass a request on
//! (the services' own server, `platform::server`, and pooled reqwest clients), as the
//! booking path does (client → gateway →
//! book → payment). What the chain reaches under the same load is the ceiling for a
//! three-hop synchronous path on this machine, next to which the fleet's figures mean
//! something.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

/// Serves one hop on `port`: answers `{}` itself, or passes the body on to `next`.
pub async fn serve_hop(port: u16, next: Option<String>) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_idle_timeout(platform::server::CLIENT_IDLE_TIMEOUT)
        .build()?;
    let app = Router::new()
        .route("/hop", post(hop))
        .with_state((http, next));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let settings = platform::settings::HttpSettings::default();
    let connections = platform::server::Connections::http(&settings);
    platform::server::serve(
        listener,
        app,
        &settings,
        connections,
        std::future::pending(),
    )
    .await?;
    Ok(())
}

async fn hop(
    State((http, next)): State<(reqwest::Client, Option<String>)>,
    body: Bytes,
) -> (StatusCode, Bytes) {
    let Some(next) = next else {
        return (StatusCode::CREATED, Bytes::from_static(b"{}"));
    };
    match http.post(&next).body(body).send().await {
        Ok(r) => {
            let status =
                StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, r.bytes().await.unwrap_or_default())
        }
        Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
    }
}

/// Three hop processes (this binary, `hop` mode); killed when dropped.
pub struct Chain {
    children: Vec<Child>,
    /// Where the first hop listens.
    pub url: String,
}

impl Chain {
    /// Starts the three processes, last hop first, and waits until the first answers.
    pub async fn start() -> anyhow::Result<Self> {
        let me = std::env::current_exe()?;
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<anyhow::Result<_>>()?;
        let mut children = Vec::new();
        for i in (0..3).rev() {
            let mut cmd = Command::new(&me);
            cmd.args(["hop", &ports[i].to_string()]);
            if let Some(next) = ports.get(i + 1) {
                cmd.arg(format!("http://127.0.0.1:{next}/hop"));
            }
            children.push(cmd.stdout(Stdio::null()).spawn()?);
        }
        let chain = Self {
            children,
            url: format!("http://127.0.0.1:{}/hop", ports[0]),
        };
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = http.post(&chain.url).body("{}").send().await {
                if r.status() == reqwest::StatusCode::CREATED {
                    return Ok(chain);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the no-op chain did not start")
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
