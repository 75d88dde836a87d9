//! CPU time per process, from `/proc/PID/stat` (user + system), and the fleet's own
//! gauges: outbox backlogs from `/metrics`, consumer lag from the broker.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Linux's `USER_HZ`: the unit of `/proc/PID/stat` times, 100 on every architecture Rust
/// targets.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds a process has used so far (`None` once it is gone).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields we want come after its ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// A process's resident memory in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds of named processes at one moment.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot(pub HashMap<String, f64>);

impl CpuSnapshot {
    /// Reads every `(name, pid)`.
    pub fn take(pids: &[(String, u32)]) -> Self {
        Self(
            pids.iter()
                .filter_map(|(n, p)| Some((n.clone(), cpu_seconds(*p)?)))
                .collect(),
        )
    }

    /// Share of one core each process used between `self` and `later`, over `wall`.
    pub fn busy(&self, later: &Self, wall: Duration) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = later
            .0
            .iter()
            .filter_map(|(n, t)| {
                let before = self.0.get(n)?;
                Some((n.clone(), (t - before) / wall.as_secs_f64()))
            })
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }
}

/// The value of the first sample line of `name` in a Prometheus text page whose labels
/// contain every one of `labels` (0 when there is none).
pub fn metric_sum(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                && labels.iter().all(|x| l.contains(x))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Reads the committed offsets of consumer groups against the topics' ends, without
/// joining the groups.
pub struct LagReader {
    groups: Vec<(String, BaseConsumer)>,
    topics: Vec<String>,
    partitions: i32,
}

impl LagReader {
    /// One reader per `group`, over `topics` of `partitions` partitions each.
    pub fn new(
        brokers: &str,
        groups: &[String],
        topics: &[String],
        partitions: i32,
    ) -> anyhow::Result<Self> {
        let groups = groups
            .iter()
            .map(|g| {
                let c: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", brokers)
                    .set("group.id", g)
                    .set("enable.auto.commit", "false")
                    .create()?;
                Ok((g.clone(), c))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            groups,
            topics: topics.to_vec(),
            partitions,
        })
    }

    /// Messages not yet committed, per group, on the topics it has committed on (blocking
    /// calls: run off the async threads).
    pub fn lags(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let timeout = Duration::from_secs(5);
        let mut ends = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        let Some((_, first)) = self.groups.first() else {
            return Ok(Vec::new());
        };
        for t in &self.topics {
            for p in 0..self.partitions {
                let (_, high) = first.fetch_watermarks(t, p, timeout)?;
                ends.insert((t.clone(), p), high);
                tpl.add_partition(t, p);
            }
        }
        let mut out = Vec::new();
        for (g, c) in &self.groups {
            let committed = c.committed_offsets(tpl.clone(), timeout)?;
            let mut lag = 0;
            for e in committed.elements() {
                let end = ends
                    .get(&(e.topic().to_owned(), e.partition()))
                    .copied()
                    .unwrap_or(0);
                // A topic the group has committed nothing on is one it does not read (each
                // service reads only the contexts it handles); the groups of a benchmark
                // fleet commit within half a second of their first event.
                if let Offset::Offset(at) = e.offset() {
                    lag += (end - at).max(0);
                }
            }
            out.push((g.clone(), lag));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_sums_metric_lines() {
        assert!(cpu_seconds(std::process::id()).is_some());
        assert!(rss_mib(std::process::id()).unwrap() > 0.0);
        let page = "housebook_events_total{event_type=\"Paid\",outcome=\"applied\"} 3\n\
                    housebook_events_total{event_type=\"Paid\",outcome=\"ignored\"} 5\n\
                    housebook_events_total{event_type=\"HouseRented\",outcome=\"applied\"} 4\n\
                    housebook_events_total_x 100\n\
                    housebook_outbox_backlog 7\n";
        assert_eq!(
            metric_sum(page, "housebook_events_total", &["outcome=\"applied\""]),
            7.0
        );
        assert_eq!(metric_sum(page, "housebook_outbox_backlog", &[]), 7.0);
        assert_eq!(metric_sum(page, "housebook_nothing", &[]), 0.0);
    }
}
