pub mod cassandra;
pub mod kafka;

/// The external systems the operator provisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Kafka,
    Cassandra,
}

/// A failed call to Kafka or Cassandra, as a reconcile reports it: which system, what it
/// said, and whether trying again may help. One mapping turns it into a condition reason
/// ([`ExternalFailure::reason`]) and a controller error ([`ExternalFailure::error`]).
#[derive(Clone, Debug)]
pub struct ExternalFailure {
    pub system: System,
    pub message: String,
    pub transient: bool,
}

impl ExternalFailure {
    /// `KafkaUnavailable`/`CassandraUnavailable` when it may pass, else `…Rejected`.
    pub fn reason(&self) -> crate::api::Reason {
        use crate::api::Reason;
        match (self.system, self.transient) {
            (System::Kafka, true) => Reason::KafkaUnavailable,
            (System::Kafka, false) => Reason::KafkaRejected,
            (System::Cassandra, true) => Reason::CassandraUnavailable,
            (System::Cassandra, false) => Reason::CassandraRejected,
        }
    }

    /// The controller error that retries it with backoff.
    pub fn error(&self) -> crate::error::Error {
        match self.system {
            System::Kafka => crate::error::Error::Kafka(self.message.clone()),
            System::Cassandra => crate::error::Error::Cassandra(self.message.clone()),
        }
    }

    /// The one mapping from a failure to what a reconcile of `kind` reports: the Ready
    /// condition, and the error that retries it with backoff. A transient failure is
    /// retried; a refusal waits for a change of the spec instead of being retried in a loop.
    pub fn outcome(&self, kind: &str) -> (crate::api::conditions::DesiredCondition, Option<crate::error::Error>) {
        use crate::api::conditions::DesiredCondition;
        let system = self.system_name();
        if self.transient {
            let message =
                format!("{}; retrying. Check that {system} is up and the operator's {system} settings", self.message);
            (DesiredCondition::not_ready(self.reason(), message), Some(self.error()))
        } else {
            let message = format!("{}; change the {kind}'s spec", self.message);
            (DesiredCondition::not_ready(self.reason(), message), None)
        }
    }

    pub fn system_name(&self) -> &'static str {
        match self.system {
            System::Kafka => "Kafka",
            System::Cassandra => "Cassandra",
        }
    }
}

impl From<kafka::KafkaCallError> for ExternalFailure {
    fn from(e: kafka::KafkaCallError) -> Self {
        ExternalFailure { system: System::Kafka, message: e.to_string(), transient: e.transient }
    }
}

impl From<cassandra::CassandraCallError> for ExternalFailure {
    fn from(e: cassandra::CassandraCallError) -> Self {
        ExternalFailure { system: System::Cassandra, message: e.to_string(), transient: e.transient }
    }
}

use std::sync::Mutex;
use std::time::{Duration, Instant};

use backon::ExponentialBuilder;

/// How long calls to an unreachable Kafka or Cassandra fail fast before one probes again.
pub const BREAKER_COOL_DOWN: Duration = Duration::from_secs(5);

/// How calls to Kafka and Cassandra are retried where a reconcile cannot simply come back
/// later (a deletion's cleanup): exponential backoff from 200 ms to 2 s, for at most
/// `budget` of waiting. Use with `backon::Retryable` and `.when(KafkaCallError::is_transient)`
/// (or the Cassandra one).
pub fn retries_within(budget: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .without_max_times()
        .with_total_delay(Some(budget))
}

/// Fails calls fast while an external system is unreachable, so one dead cluster does not
/// make every reconcile wait out its timeout (and a Tenant deletion queue behind them).
/// After a transient failure it stays open for `cool_down`; then one caller probes while
/// the others keep failing fast, and the first answer (success or a real refusal) closes it.
/// A probe dropped before its outcome is recorded (a reconcile that joined it with a call
/// that failed fast returns at once and cancels it) closes it too: it learned nothing, and
/// were the breaker left open the same join would cancel every later probe, keeping a
/// recovered cluster shut out until the operator restarts.
pub struct Breaker {
    state: Mutex<Option<(Instant, String)>>,
    cool_down: Duration,
    probe_budget: Duration,
    /// Kept at 1 while open (`tributary_external_unreachable`).
    open: Option<prometheus_client::metrics::gauge::Gauge>,
}

impl Breaker {
    /// `probe_budget`: how long a probe may take (the call's own timeout).
    pub fn new(cool_down: Duration, probe_budget: Duration) -> Self {
        Breaker { state: Mutex::new(None), cool_down, probe_budget, open: None }
    }

    /// The breaker keeps `gauge` at 1 while open, 0 while closed.
    pub fn reporting(self, gauge: prometheus_client::metrics::gauge::Gauge) -> Self {
        Breaker { open: Some(gauge), ..self }
    }

    /// `Err(last failure)` while open; else the admission the call's outcome is recorded on.
    pub fn admit(&self) -> Result<Admission<'_>, String> {
        let mut state = self.state.lock().expect("breaker lock");
        let now = Instant::now();
        match state.as_mut() {
            Some((until, last)) if now < *until => Err(last.clone()),
            Some((until, _)) => {
                // Half-open: this caller probes; the rest fail fast until it is done.
                *until = now + self.probe_budget + self.cool_down;
                Ok(Admission { breaker: self, probe: true })
            }
            None => Ok(Admission { breaker: self, probe: false }),
        }
    }

    fn set(&self, transient_failure: Option<String>) {
        let mut state = self.state.lock().expect("breaker lock");
        if let Some(gauge) = &self.open {
            gauge.set(i64::from(transient_failure.is_some()));
        }
        *state = transient_failure.map(|e| (Instant::now() + self.cool_down, e));
    }
}

/// One admitted call; see [`Breaker`] for what dropping it unrecorded does.
#[must_use = "record the call's outcome"]
pub struct Admission<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Admission<'_> {
    /// Records the call's outcome: `Some(error)` for a transient failure, `None` otherwise.
    pub fn record(mut self, transient_failure: Option<String>) {
        self.probe = false;
        self.breaker.set(transient_failure);
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.set(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_on_a_transient_failure_lets_one_probe_through_and_closes_on_an_answer() {
        let breaker = Breaker::new(Duration::ZERO, Duration::from_secs(60));
        breaker.admit().unwrap().record(Some("all brokers down".into()));
        // Cool-down over (zero): one probe is admitted, the next caller fails fast.
        let probe = breaker.admit().unwrap();
        assert_eq!(breaker.admit().err(), Some("all brokers down".to_string()));
        probe.record(None);
        let (first, second) = (breaker.admit(), breaker.admit());
        assert!(first.is_ok() && second.is_ok());
        drop((first, second));

        let slow = Breaker::new(Duration::from_secs(60), Duration::from_secs(60));
        slow.admit().unwrap().record(Some("timeout".into()));
        assert_eq!(slow.admit().err(), Some("timeout".to_string()));
    }

    #[test]
    fn a_probe_cancelled_before_its_answer_closes_the_breaker() {
        let breaker = Breaker::new(Duration::ZERO, Duration::from_secs(60));
        breaker.admit().unwrap().record(Some("bad credentials".into()));
        // The probe is dropped (its reconcile returned with a sibling call's fast failure).
        let probe = breaker.admit().unwrap();
        assert!(breaker.admit().is_err(), "while the probe runs the others fail fast");
        drop(probe);
        let (first, second) = (breaker.admit(), breaker.admit());
        assert!(first.is_ok() && second.is_ok(), "the next calls find out for themselves");
    }
}
