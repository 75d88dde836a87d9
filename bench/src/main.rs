//! `saga-bench`: the whole saga under load, measured until it has settled.
//!
//! Starts a fleet of the release binaries on a private broker (SQLite files, or fresh
//! PostgreSQL databases with `--postgres`), measures a three-hop no-op chain as the
//! ceiling, the idle `201 → CONFIRMED` time, then a closed-loop booking load through the
//! gateway on distinct nights, and waits until every outbox is empty, every consumer group
//! has committed everything and book has applied every booking's decision. Prints the
//! figures; asserts nothing about them (this machine is shared and noisy). The fleet's
//! set-up goes through `e2e::Fleet`, test support that panics on a failed step; the
//! benchmark's own steps return their errors.
//!
//!     cargo build --release --bins && target/release/saga-bench [--postgres]
//!         [--secs 30] [--clients 32] [--idle 40] [--noop-secs 10] [--relay-events 20000]
//!         [--env SERVICE:KEY=VALUE]...
//!
//! `--env` sets a variable for one service (`*` for all), after the fleet's own: for trying
//! a setting by measurement, e.g. `--env '*:HOUSEBOOK_KAFKA__FETCH_WAIT_MS=50'`.

mod closed_loop;
mod noop;
mod procs;
mod relay;
mod saga;
mod stats;

use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use e2e::{Fleet, Options};
use testkit::Backend;

struct Args {
    backend: Backend,
    secs: u64,
    clients: usize,
    idle: usize,
    noop_secs: u64,
    relay_events: usize,
    env: Vec<(&'static str, String, String)>,
}

/// `SERVICE:KEY=VALUE` (`*` for every service) as the fleet's per-service variables.
fn env_flag(arg: &str) -> anyhow::Result<Vec<(&'static str, String, String)>> {
    let (service, kv) = arg
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--env takes SERVICE:KEY=VALUE, got {arg}"))?;
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--env takes SERVICE:KEY=VALUE, got {arg}"))?;
    let services: Vec<&'static str> = fleet::names()
        .filter(|s| service == "*" || *s == service)
        .collect();
    anyhow::ensure!(
        !services.is_empty(),
        "--env: unknown service {service} (one of {:?}, or *)",
        fleet::names().collect::<Vec<_>>()
    );
    Ok(services
        .into_iter()
        .map(|s| (s, k.to_owned(), v.to_owned()))
        .collect())
}

const HELP: &str = "saga-bench: the whole saga under load, measured until it has settled

Usage: saga-bench [--postgres | --sqlite] [--secs 30] [--clients 32] [--idle 40]
                  [--noop-secs 10] [--relay-events 20000] [--env SERVICE:KEY=VALUE]...
       saga-bench --help | --version

Starts the six release binaries (beside this one, or in HOUSEBOOK_BIN_DIR) on a private
broker, with SQLite files or fresh PostgreSQL databases (HOUSEBOOK_TEST_PG_URL), and prints
the no-op chain, the relay alone, idle latency, the saga under load and its drain.
--env sets a variable for one service (`*` for all), e.g. '*:HOUSEBOOK_KAFKA__FETCH_WAIT_MS=50'.
";

fn args() -> anyhow::Result<Option<Args>> {
    let mut a = Args {
        backend: Backend::Sqlite,
        secs: 30,
        clients: 32,
        idle: 40,
        noop_secs: 10,
        relay_events: 20_000,
        env: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = || -> anyhow::Result<u64> {
            Ok(it
                .next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a number"))?
                .parse()?)
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("saga-bench {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--postgres" => a.backend = Backend::Postgres,
            "--sqlite" => a.backend = Backend::Sqlite,
            "--secs" => a.secs = num()?,
            "--clients" => a.clients = usize::try_from(num()?)?.max(1),
            "--idle" => a.idle = usize::try_from(num()?)?,
            "--noop-secs" => a.noop_secs = num()?,
            "--relay-events" => a.relay_events = usize::try_from(num()?)?,
            "--env" => {
                let arg = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--env needs SERVICE:KEY=VALUE"))?;
                a.env.extend(env_flag(&arg)?);
            }
            other => {
                anyhow::bail!("unknown argument {other} (see saga-bench --help)")
            }
        }
    }
    Ok(Some(a))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    if argv.next().as_deref() == Some("hop") {
        let port = argv.next().unwrap_or_default().parse()?;
        return noop::serve_hop(port, argv.next()).await;
    }
    let Some(a) = args()? else {
        return Ok(());
    };
    if std::env::var_os("HOUSEBOOK_BIN_DIR").is_none() {
        // The release binaries beside this one.
        let dir = std::env::current_exe()?
            .parent()
            .map(std::path::Path::to_path_buf);
        if let Some(dir) = dir {
            std::env::set_var("HOUSEBOOK_BIN_DIR", dir);
        }
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.clients * 2)
        .build()?;

    // 1. The ceiling: the same load on a chain of three no-op hops.
    let chain = noop::Chain::start().await?;
    let url = chain.url.clone();
    let h = http.clone();
    let noop = closed_loop::run(a.clients, Duration::from_secs(a.noop_secs), move |_, _| {
        h.post(&url)
            .header("content-type", "application/json")
            .body("{\"houseId\":1}")
    })
    .await;
    drop(chain);
    println!(
        "no-op chain (3 hops, c{}): {:.0} req/s, p50/p99 {}",
        a.clients,
        noop.rate(),
        noop.latency.p50_p99()
    );

    // 2. The fleet, on a broker of its own; the gateway's per-subject limit out of the way
    //    (the benchmark measures the saga, not the limiter).
    let mut options = Options::new(a.backend);
    options.private_broker = true;
    for (k, v) in [
        ("HOUSEBOOK_RATE_LIMIT__API__PER_SECOND", "1000000"),
        ("HOUSEBOOK_RATE_LIMIT__API__BURST", "1000000"),
    ] {
        options.env.push(("gateway", k.into(), v.into()));
    }
    options.env.extend(a.env.iter().cloned());
    let fleet = Fleet::start_with(options).await;
    let relay_rate = relay::run(a.backend, fleet.brokers(), a.relay_events).await?;
    println!(
        "relay alone: {} events from a full outbox at {relay_rate:.0} events/s",
        a.relay_events
    );
    let admin = fleet.token("admin").await;
    let customers = [fleet.token("alice").await, fleet.token("bob").await];
    let houses = saga::houses(&fleet, &admin, &customers[0], a.clients).await;
    let gauges = saga::Gauges::new(&fleet)?;
    let gw = format!("{}/books", fleet.gateway());

    // 3. Idle: one booking at a time, a pause between.
    let first = Utc::now().date_naive() + Days::new(1);
    let mut idle_ids = Vec::new();
    let mut idle_post = stats::Samples::default();
    for i in 0..a.idle {
        let night = first + Days::new(i as u64);
        let sent = Instant::now();
        let r = http
            .post(&gw)
            .bearer_auth(&customers[0])
            .json(&saga::booking(houses[0], night))
            .send()
            .await?;
        idle_post.push(sent.elapsed());
        if r.status() == reqwest::StatusCode::CREATED {
            let v: serde_json::Value = r.json().await?;
            idle_ids.extend(v["id"].as_str().map(str::to_owned));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let settled_before = saga::drain(&gauges, 0, Duration::from_secs(60)).await;
    let baseline = gauges.read().await?;
    anyhow::ensure!(
        settled_before.0.is_some(),
        "the idle phase did not settle within 60 s"
    );

    // 4. The load: client c books house c, one night after another, from a year on.
    let pids: Vec<(String, u32)> = fleet::names()
        .filter_map(|s| Some((s.to_string(), fleet.pid(s)?)))
        .chain(fleet.broker_pid().map(|p| ("broker".to_string(), p)))
        .chain([("bench".to_string(), std::process::id())])
        .collect();
    let cpu0 = procs::CpuSnapshot::take(&pids);
    let t0 = Instant::now();
    let start_night = first + Days::new(400);
    let (h, tokens, hs, url) = (http.clone(), customers.clone(), houses.clone(), gw.clone());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = async {
        saga::sample_until(&gauges, Duration::from_millis(250), async {
            let _ = done_rx.await;
        })
        .await
    };
    let load = async move {
        let out = closed_loop::run(a.clients, Duration::from_secs(a.secs), move |c, n| {
            h.post(&url)
                .bearer_auth(&tokens[c % tokens.len()])
                .json(&saga::booking(hs[c % hs.len()], start_night + Days::new(n)))
        })
        .await;
        let _ = done_tx.send(());
        out
    };
    let (load, load_peaks) = tokio::join!(load, sampler);
    let load_time = t0.elapsed();
    let expected = baseline.decisions + load.created_count() as i64;
    let (drained, drain_peaks) = saga::drain(&gauges, expected, Duration::from_secs(600)).await;
    let cpu1 = procs::CpuSnapshot::take(&pids);
    let wall = t0.elapsed();
    let rss: Vec<String> = pids
        .iter()
        .filter_map(|(n, p)| Some(format!("{n} {:.0}", procs::rss_mib(*p)?)))
        .collect();

    // 5. Each booking's confirmation time, from the events.
    let mut timeline = saga::Timeline::default();
    for topic in fleet.topics() {
        timeline.merge(saga::Timeline::read(fleet.brokers(), &topic, 3).await?);
    }
    let (idle_conf, idle_rej, idle_open) = timeline.confirmation(&idle_ids);
    let (load_conf, load_rej, load_open) = timeline.confirmation(&load.created);

    let created = load.created_count();
    let drain_s = drained.map(|d| d.as_secs_f64());
    let saga_rate = drain_s.map(|d| created as f64 / (load_time.as_secs_f64() + d));
    println!(
        "\nhousebook saga benchmark — {} backend, {} clients, {} s load",
        match a.backend {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        },
        a.clients,
        a.secs
    );
    println!("  idle: POST p50/p99 {}; 201 → CONFIRMED p50/p99 {} ({} bookings, {} rejected, {} undecided)",
        idle_post.p50_p99(), idle_conf.p50_p99(), idle_ids.len(), idle_rej, idle_open.len());
    println!(
        "  load: {} requests, statuses {:?}, {:.0} answers/s",
        load.statuses.values().sum::<usize>(),
        load.statuses,
        load.rate()
    );
    println!(
        "  booking POST p50/p99 {}   (no-op chain {})",
        load.latency.p50_p99(),
        noop.latency.p50_p99()
    );
    println!(
        "  201 → CONFIRMED p50/p99 {} ({} confirmed, {} rejected, {} undecided)",
        load_conf.p50_p99(),
        load_conf.count(),
        load_rej,
        load_open.len()
    );
    println!(
        "  peak outbox backlog {} (load) / {} (drain); peak consumer lag {} / {} (load: {})",
        load_peaks.outbox,
        drain_peaks.outbox,
        load_peaks.lag,
        drain_peaks.lag,
        load_peaks.per_group()
    );
    match (drain_s, saga_rate) {
        (Some(d), Some(r)) => {
            println!("  drained {d:.1} s after the load stopped");
            println!("  SUSTAINED SAGA RATE {r:.0} bookings/s ({created} bookings ÷ ({:.1} s load + {d:.1} s drain))", load_time.as_secs_f64());
            println!("  ratio to the no-op chain: {:.2}", r / noop.rate());
        }
        _ => println!("  NOT SETTLED within 600 s of the load stopping"),
    }
    println!("  relay alone (one service's outbox, full): {relay_rate:.0} events/s");
    println!("  CPU (share of one core, load + drain):");
    for (name, busy) in cpu0.busy(&cpu1, wall) {
        println!("    {name:<8} {:>5.0} %", busy * 100.0);
    }
    println!("  RSS MiB at the end: {}", rss.join(", "));
    if !load_open.is_empty() || !idle_open.is_empty() {
        println!(
            "  WARNING: {} bookings answered 201 were never decided",
            load_open.len() + idle_open.len()
        );
    }
    fleet.shutdown().await;
    Ok(())
}
