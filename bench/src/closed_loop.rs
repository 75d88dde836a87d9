//! A closed-loop load: `clients` tasks, each sending its next request as soon as the last
//! one was answered, for a fixed time. Every answer's latency and status is kept, and the
//! `id` of every `201` (a booking answered `201` must settle).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::Samples;

/// What a load saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of every answered request.
    pub latency: Samples,
    /// Answers by status (`0`: no answer).
    pub statuses: BTreeMap<u16, usize>,
    /// Ids in the bodies of `201` answers.
    pub created: Vec<String>,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

impl Outcome {
    /// Requests answered `201`.
    pub fn created_count(&self) -> usize {
        self.statuses.get(&201).copied().unwrap_or(0)
    }

    /// Answers per second.
    pub fn rate(&self) -> f64 {
        self.statuses.values().sum::<usize>() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `clients` loops for `duration`; `request(client, n)` builds client's `n`-th request.
pub async fn run<F>(clients: usize, duration: Duration, request: F) -> Outcome
where
    F: Fn(usize, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut out = Outcome::default();
                let mut n = 0;
                while Instant::now() < until {
                    let sent = Instant::now();
                    let res = request(c, n).send().await;
                    n += 1;
                    let Ok(res) = res else {
                        *out.statuses.entry(0).or_default() += 1;
                        continue;
                    };
                    let status = res.status().as_u16();
                    let body = res.bytes().await.unwrap_or_default();
                    out.latency.push(sent.elapsed());
                    *out.statuses.entry(status).or_default() += 1;
                    if status == 201 {
                        let id = serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| v["id"].as_str().map(str::to_owned));
                        out.created.extend(id);
                    }
                }
                out
            })
        })
        .collect();
    let mut all = Outcome::default();
    for t in tasks {
        if let Ok(o) = t.await {
            all.latency.extend(o.latency);
            for (s, n) in o.statuses {
                *all.statuses.entry(s).or_default() += n;
            }
            all.created.extend(o.created);
        }
    }
    all.elapsed = started.elapsed();
    all
}
