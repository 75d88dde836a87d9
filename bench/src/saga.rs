//! The saga under load, through the gateway of a fleet of real processes: bookings on
//! distinct nights, then the wait until everything they set off has settled, then each
//! booking's `201 → CONFIRMED` time read from the events themselves (`Booked` and
//! `BookConfirmed` both carry the time book committed them).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use e2e::Fleet;
use events::Envelope;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::json;

use crate::procs::{metric_sum, LagReader};
use crate::stats::Samples;

/// Services with an outbox, and services with a consumer group.
const PRODUCERS: [&str; 3] = ["book", "payment", "house"];
const CONSUMERS: [&str; 3] = ["book", "house", "mypage"];

/// The asynchronous half's state at one moment.
#[derive(Debug, Default, Clone)]
pub struct Backlog {
    /// Unpublished outbox rows, all services.
    pub outbox: i64,
    /// Uncommitted messages, all consumer groups.
    pub lag: i64,
    /// Uncommitted messages per consuming service.
    pub lags: Vec<(&'static str, i64)>,
    /// House decisions book has applied.
    pub decisions: i64,
}

/// Reads the backlog gauges of a fleet.
pub struct Gauges {
    http: reqwest::Client,
    urls: Vec<String>,
    book: String,
    lags: std::sync::Arc<LagReader>,
}

impl Gauges {
    /// Gauges over `fleet`'s producers and consumer groups.
    pub fn new(fleet: &Fleet) -> anyhow::Result<Self> {
        let groups: Vec<String> = CONSUMERS.iter().map(|s| fleet.consumer_group(s)).collect();
        Ok(Self {
            http: testkit::http(),
            urls: PRODUCERS.iter().map(|s| fleet.metrics_url(s)).collect(),
            book: fleet.metrics_url("book"),
            lags: std::sync::Arc::new(LagReader::new(
                fleet.brokers(),
                &groups,
                &fleet.topics(),
                3,
            )?),
        })
    }

    async fn page(&self, url: &str) -> anyhow::Result<String> {
        Ok(self.http.get(url).send().await?.text().await?)
    }

    /// Reads them all now.
    pub async fn read(&self) -> anyhow::Result<Backlog> {
        let mut b = Backlog::default();
        for url in &self.urls {
            b.outbox += metric_sum(&self.page(url).await?, "housebook_outbox_backlog", &[]) as i64;
        }
        let book = self.page(&self.book).await?;
        b.decisions = ["HouseRented", "HouseRentRejected"]
            .iter()
            .map(|t| {
                metric_sum(
                    &book,
                    "housebook_events_total",
                    &[&format!("event_type=\"{t}\""), "outcome=\"applied\""],
                ) as i64
            })
            .sum();
        let lags = self.lags.clone();
        let per_group = tokio::task::spawn_blocking(move || lags.lags()).await??;
        b.lags = CONSUMERS
            .iter()
            .copied()
            .zip(per_group.iter().map(|(_, l)| *l))
            .collect();
        b.lag = b.lags.iter().map(|(_, l)| l).sum();
        Ok(b)
    }
}

/// Peaks seen while sampling.
#[derive(Debug, Default, Clone)]
pub struct Peaks {
    /// Highest outbox backlog.
    pub outbox: i64,
    /// Highest consumer lag, all groups.
    pub lag: i64,
    /// Highest consumer lag per consuming service.
    pub lags: std::collections::BTreeMap<&'static str, i64>,
}

impl Peaks {
    fn see(&mut self, b: &Backlog) {
        self.outbox = self.outbox.max(b.outbox);
        self.lag = self.lag.max(b.lag);
        for (s, l) in &b.lags {
            let peak = self.lags.entry(s).or_default();
            *peak = (*peak).max(*l);
        }
    }

    /// `book 12, house 3, mypage 40`.
    pub fn per_group(&self) -> String {
        self.lags
            .iter()
            .map(|(s, l)| format!("{s} {l}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Samples the gauges every `every` until `stop` resolves; returns the peaks.
pub async fn sample_until(
    gauges: &Gauges,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Peaks {
    let mut peaks = Peaks::default();
    tokio::pin!(stop);
    loop {
        if let Ok(b) = gauges.read().await {
            peaks.see(&b);
        }
        tokio::select! {
            () = &mut stop => return peaks,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Waits until every outbox is empty, every group has committed everything, and book has
/// applied `decisions` house decisions (no booking is left `BOOKED`). Returns how long it
/// took and the peaks on the way, or `None` if it did not settle within `limit`.
pub async fn drain(gauges: &Gauges, decisions: i64, limit: Duration) -> (Option<Duration>, Peaks) {
    let started = Instant::now();
    let mut peaks = Peaks::default();
    while started.elapsed() < limit {
        if let Ok(b) = gauges.read().await {
            peaks.see(&b);
            if b.outbox == 0 && b.lag == 0 && b.decisions >= decisions {
                return (Some(started.elapsed()), peaks);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (None, peaks)
}

/// The body of a one-night booking of `house` on `night`.
pub fn booking(house: i64, night: NaiveDate) -> serde_json::Value {
    let out = night + chrono::Days::new(1);
    json!({"houseId": house, "checkIn": night.to_string(), "checkOut": out.to_string()})
}

/// Registers `n` houses and waits until book can take bookings for each (one booking per
/// house on `night`).
pub async fn houses(fleet: &Fleet, admin: &str, customer: &str, n: usize) -> Vec<i64> {
    let night = NaiveDate::from_ymd_opt(2099, 12, 30).unwrap_or_default();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let house = json!({"houseName": format!("bench house {i}"), "housePrice": 100_000});
        let (id, _) = fleet
            .house_with_booking(admin, customer, house, &night.to_string(), "2099-12-31")
            .await;
        ids.push(id);
    }
    ids
}

/// When each booking was committed `BOOKED` and when it was decided, from book's events.
#[derive(Debug, Default)]
pub struct Timeline {
    booked: HashMap<String, DateTime<Utc>>,
    decided: HashMap<String, (DateTime<Utc>, bool)>,
}

impl Timeline {
    /// Reads `topic` from the beginning to its current end.
    pub async fn read(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<Self> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", testkit::unique("bench-timeline-"))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()?;
        let mut ends = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(5))?;
            if high > low {
                ends.insert(p, high);
                tpl.add_partition_offset(topic, p, Offset::Offset(low))?;
            }
        }
        consumer.assign(&tpl)?;
        let mut t = Self::default();
        while !ends.is_empty() {
            let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
            if ends
                .get(&m.partition())
                .is_some_and(|end| m.offset() + 1 >= *end)
            {
                ends.remove(&m.partition());
            }
            let Some(e) = m.payload().and_then(|b| Envelope::from_slice(b).ok()) else {
                continue;
            };
            t.see(e);
        }
        Ok(t)
    }

    /// Adds what another read saw.
    pub fn merge(&mut self, other: Self) {
        self.booked.extend(other.booked);
        self.decided.extend(other.decided);
    }

    fn see(&mut self, e: Envelope) {
        match e.event_type.as_str() {
            "Booked" => {
                self.booked.insert(e.correlation_id, e.occurred_at);
            }
            "BookConfirmed" => {
                self.decided.insert(e.correlation_id, (e.occurred_at, true));
            }
            "BookRejected" => {
                self.decided
                    .insert(e.correlation_id, (e.occurred_at, false));
            }
            _ => {}
        }
    }

    /// `BOOKED → CONFIRMED` of `ids`, how many were rejected, and the ids never decided.
    pub fn confirmation(&self, ids: &[String]) -> (Samples, usize, Vec<String>) {
        let mut s = Samples::default();
        let mut rejected = 0;
        let mut open = Vec::new();
        for id in ids {
            match (self.booked.get(id), self.decided.get(id)) {
                (Some(b), Some((d, true))) => {
                    s.push((*d - *b).to_std().unwrap_or_default());
                }
                (_, Some((_, false))) => rejected += 1,
                _ => open.push(id.clone()),
            }
        }
        (s, rejected, open)
    }
}
