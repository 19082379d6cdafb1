//! Prometheus metrics of the operator. Labels come from fixed sets (kind, error category,
//! external call) so their number stays bounded.

use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub kind: &'static str,
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExternalLabels {
    pub system: &'static str,
    pub call: &'static str,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    reconciles: Family<KindLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    /// Reconciles running now, by kind: the paced resync (`resync.rs`) yields to new work
    /// by this count.
    in_flight: Family<KindLabels, Gauge>,
    /// Resyncs handed to the controllers, and those overdue because the controller was busy.
    resyncs: Family<KindLabels, Counter>,
    resyncs_overdue: Family<KindLabels, Gauge>,
    /// Writes to Kafka and Cassandra; a steady cluster should add none per resync.
    pub external_writes: Family<ExternalLabels, Counter>,
    /// Time of each call to Kafka or Cassandra, answered or not (a call refused at once by an
    /// open breaker is not timed), and the time a Cassandra schema change waited for its turn.
    external_calls: Family<ExternalLabels, Histogram>,
    schema_queue: Histogram,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tributary");
        let reconciles = Family::<KindLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        let in_flight = Family::<KindLabels, Gauge>::default();
        let resyncs = Family::<KindLabels, Counter>::default();
        let resyncs_overdue = Family::<KindLabels, Gauge>::default();
        let external_writes = Family::<ExternalLabels, Counter>::default();
        let external_calls = Family::<ExternalLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        let schema_queue = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let leader = Gauge::default();
        registry.register("reconciles", "Reconciliations run, by kind", reconciles.clone());
        registry.register("reconcile_failures", "Failed reconciliations, by kind and error category", failures.clone());
        registry.register("reconcile_duration_seconds", "Time spent in one reconciliation", duration.clone());
        registry.register("reconciles_in_flight", "Reconciliations running now, by kind", in_flight.clone());
        registry.register("resyncs", "Drift resyncs handed to the controller, by kind", resyncs.clone());
        registry.register(
            "resyncs_overdue",
            "Drift resyncs past their time, waiting for free reconcile slots, by kind",
            resyncs_overdue.clone(),
        );
        registry.register("external_writes", "Write calls made to Kafka or Cassandra", external_writes.clone());
        registry.register(
            "external_call_duration_seconds",
            "Time of one call to Kafka or Cassandra, by system and call",
            external_calls.clone(),
        );
        registry.register(
            "cassandra_schema_queue_seconds",
            "Time a Cassandra schema change waited for the ones in flight",
            schema_queue.clone(),
        );
        registry.register("leader", "1 while this replica is the leader", leader.clone());
        Metrics {
            registry: Mutex::new(registry),
            reconciles,
            failures,
            duration,
            in_flight,
            resyncs,
            resyncs_overdue,
            external_writes,
            external_calls,
            schema_queue,
            leader,
        }
    }
}

impl Metrics {
    /// Counts a reconcile of `kind` and times it until the returned guard is dropped; it
    /// counts as running until then.
    pub fn reconcile(&self, kind: &'static str) -> ReconcileTimer<'_> {
        self.reconciles.get_or_create(&KindLabels { kind }).inc();
        self.in_flight.get_or_create(&KindLabels { kind }).inc();
        ReconcileTimer { metrics: self, kind, start: Instant::now() }
    }

    /// Reconciles of `kind` running now.
    pub fn in_flight(&self, kind: &'static str) -> usize {
        usize::try_from(self.in_flight.get_or_create(&KindLabels { kind }).get()).unwrap_or(0)
    }

    /// A resync of `kind` handed to the controller, with `overdue` more waiting past their time.
    pub fn resync(&self, kind: &'static str, overdue: usize) {
        self.resyncs.get_or_create(&KindLabels { kind }).inc();
        self.resyncs_overdue.get_or_create(&KindLabels { kind }).set(i64::try_from(overdue).unwrap_or(i64::MAX));
    }

    pub fn failure(&self, kind: &'static str, category: &'static str) {
        self.failures.get_or_create(&FailureLabels { kind, category }).inc();
    }

    pub fn external_write(&self, system: &'static str, call: &'static str) {
        self.external_writes.get_or_create(&ExternalLabels { system, call }).inc();
    }

    /// One call to `system` took `seconds`.
    pub fn external_call(&self, system: &'static str, call: &'static str, seconds: f64) {
        self.external_calls.get_or_create(&ExternalLabels { system, call }).observe(seconds);
    }

    /// A Cassandra schema change waited `seconds` for its turn.
    pub fn schema_queued(&self, seconds: f64) {
        self.schema_queue.observe(seconds);
    }

    /// The text exposition format served at `/metrics`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry lock");
        encode(&mut out, &registry).expect("encoding metrics into a String cannot fail");
        out
    }
}

pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        let kind = KindLabels { kind: self.kind };
        self.metrics.in_flight.get_or_create(&kind).dec();
        self.metrics.duration.get_or_create(&kind).observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_failures_and_durations_are_exposed() {
        let metrics = Metrics::default();
        let running = metrics.reconcile("Tenant");
        assert_eq!(metrics.in_flight("Tenant"), 1);
        drop(running);
        assert_eq!(metrics.in_flight("Tenant"), 0);
        metrics.resync("Topic", 3);
        metrics.failure("Topic", "kafka");
        metrics.external_write("kafka", "CreateTopics");
        metrics.external_call("cassandra", "CREATE KEYSPACE", 0.2);
        metrics.schema_queued(0.5);
        let text = metrics.encode();
        assert!(text.contains("tributary_reconciles_total{kind=\"Tenant\"} 1"), "{text}");
        assert!(text.contains("tributary_reconcile_failures_total{kind=\"Topic\",category=\"kafka\"} 1"), "{text}");
        assert!(text.contains("tributary_reconcile_duration_seconds_count{kind=\"Tenant\"} 1"), "{text}");
        assert!(text.contains("tributary_external_writes_total{system=\"kafka\",call=\"CreateTopics\"} 1"), "{text}");
        assert!(text.contains("tributary_resyncs_total{kind=\"Topic\"} 1"), "{text}");
        assert!(
            text.contains(
                "tributary_external_call_duration_seconds_count{system=\"cassandra\",call=\"CREATE KEYSPACE\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("tributary_cassandra_schema_queue_seconds_count 1"), "{text}");
        assert!(text.contains("tributary_resyncs_overdue{kind=\"Topic\"} 3"), "{text}");
        assert!(text.contains("tributary_reconciles_in_flight{kind=\"Tenant\"} 0"), "{text}");
    }
}
