//! The circuit breaker's policy and metrics.
//!
//! The breaker looks at the calls of a rolling time window (as Hystrix and Resilience4j
//! do): once at least `min_calls` were made and `failure_rate` of them failed, it opens and
//! calls fail at once until `open_for` has passed; then a probe call is let through, and
//! its success closes the circuit. A slow dependency whose calls mostly succeed keeps the
//! circuit closed; a dead one opens it within a few calls.

use std::time::Duration;

use failsafe::failure_policy;
use prometheus::{IntCounter, IntGauge};

/// Exposes the breaker's state as metrics.
#[derive(Clone)]
pub struct BreakerMetrics {
    circuit: &'static str,
    open: IntGauge,
    rejected: IntCounter,
}

impl BreakerMetrics {
    /// Registers `circuit_open{circuit}` and `circuit_rejected_total{circuit}`.
    pub fn register(
        registry: &prometheus::Registry,
        circuit: &'static str,
    ) -> Result<Self, prometheus::Error> {
        let open = IntGauge::with_opts(
            prometheus::Opts::new(
                "circuit_open",
                "1 while the circuit to a dependency is open",
            )
            .const_label("circuit", circuit),
        )?;
        let rejected = IntCounter::with_opts(
            prometheus::Opts::new(
                "circuit_rejected_total",
                "Calls refused at once by an open circuit",
            )
            .const_label("circuit", circuit),
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        Ok(Self {
            circuit,
            open,
            rejected,
        })
    }
}

impl failsafe::Instrument for BreakerMetrics {
    fn on_call_rejected(&self) {
        self.rejected.inc();
    }
    fn on_open(&self) {
        tracing::warn!(circuit = self.circuit, "circuit opened");
        self.open.set(1);
    }
    fn on_half_open(&self) {
        tracing::info!(circuit = self.circuit, "circuit half-open: probing");
    }
    fn on_closed(&self) {
        tracing::info!(circuit = self.circuit, "circuit closed");
        self.open.set(0);
    }
}

/// A rolling time window of call outcomes (Hystrix's model: a 10 s window, a minimum
/// volume, an error percentage). A short stall that fails a burst of calls does not open
/// the circuit unless the failures are a large share of the whole window.
#[derive(Debug, Clone)]
pub struct FailureRateWindow {
    outcomes: std::collections::VecDeque<(std::time::Instant, bool)>,
    window: Duration,
    min_calls: usize,
    failure_rate: f64,
    open_for: Duration,
}

/// Outcomes kept at most, whatever the rate of calls.
const MAX_OUTCOMES: usize = 100_000;

impl FailureRateWindow {
    /// Opens the circuit for `open_for` once, within the last `window`, at least
    /// `min_calls` were made and `failure_rate` of them failed.
    pub fn new(window: Duration, min_calls: usize, failure_rate: f64, open_for: Duration) -> Self {
        Self {
            outcomes: std::collections::VecDeque::new(),
            window,
            min_calls: min_calls.max(1),
            failure_rate: failure_rate.clamp(0.0, 1.0),
            open_for,
        }
    }

    fn record(&mut self, ok: bool) {
        let now = std::time::Instant::now();
        while self.outcomes.front().is_some_and(|(t, _)| {
            now.duration_since(*t) > self.window || self.outcomes.len() >= MAX_OUTCOMES
        }) {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back((now, ok));
    }
}

impl failure_policy::FailurePolicy for FailureRateWindow {
    fn record_success(&mut self) {
        self.record(true);
    }

    fn mark_dead_on_failure(&mut self) -> Option<Duration> {
        self.record(false);
        let calls = self.outcomes.len();
        let failed = self.outcomes.iter().filter(|(_, ok)| !*ok).count();
        (calls >= self.min_calls && failed as f64 >= self.failure_rate * calls as f64)
            .then_some(self.open_for)
    }

    fn revived(&mut self) {
        self.outcomes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use failsafe::failure_policy::FailurePolicy;

    #[test]
    fn a_mostly_successful_dependency_keeps_the_circuit_closed() {
        let mut w =
            FailureRateWindow::new(Duration::from_secs(10), 10, 0.5, Duration::from_secs(3));
        for i in 0..200 {
            if i % 10 == 0 {
                assert_eq!(w.mark_dead_on_failure(), None, "10% failures never open it");
            } else {
                w.record_success();
            }
        }
        for _ in 0..20 {
            assert_eq!(
                w.mark_dead_on_failure(),
                None,
                "nor does a burst that is a small share of the window"
            );
        }
    }

    #[test]
    fn a_dead_dependency_opens_it_once_enough_calls_failed() {
        let mut w = FailureRateWindow::new(Duration::from_secs(10), 3, 0.5, Duration::from_secs(3));
        assert_eq!(w.mark_dead_on_failure(), None);
        assert_eq!(w.mark_dead_on_failure(), None);
        assert_eq!(w.mark_dead_on_failure(), Some(Duration::from_secs(3)));
        w.revived();
        assert_eq!(
            w.mark_dead_on_failure(),
            None,
            "a closed circuit starts counting afresh"
        );
    }

    #[test]
    fn old_outcomes_leave_the_window() {
        let mut w =
            FailureRateWindow::new(Duration::from_millis(30), 2, 0.5, Duration::from_secs(1));
        for _ in 0..50 {
            w.record_success();
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            w.mark_dead_on_failure(),
            None,
            "1 call in the window: below the minimum"
        );
        assert_eq!(
            w.mark_dead_on_failure(),
            Some(Duration::from_secs(1)),
            "the successes have left the window"
        );
    }
}
