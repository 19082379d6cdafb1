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
    /// Writes to Kafka and Cassandra; a steady cluster should add none per resync.
    pub external_writes: Family<ExternalLabels, Counter>,
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
        let external_writes = Family::<ExternalLabels, Counter>::default();
        let leader = Gauge::default();
        registry.register("reconciles", "Reconciliations run, by kind", reconciles.clone());
        registry.register("reconcile_failures", "Failed reconciliations, by kind and error category", failures.clone());
        registry.register("reconcile_duration_seconds", "Time spent in one reconciliation", duration.clone());
        registry.register("external_writes", "Write calls made to Kafka or Cassandra", external_writes.clone());
        registry.register("leader", "1 while this replica is the leader", leader.clone());
        Metrics { registry: Mutex::new(registry), reconciles, failures, duration, external_writes, leader }
    }
}

impl Metrics {
    /// Counts a reconcile of `kind` and times it until the returned guard is dropped.
    pub fn reconcile(&self, kind: &'static str) -> ReconcileTimer<'_> {
        self.reconciles.get_or_create(&KindLabels { kind }).inc();
        ReconcileTimer { metrics: self, kind, start: Instant::now() }
    }

    pub fn failure(&self, kind: &'static str, category: &'static str) {
        self.failures.get_or_create(&FailureLabels { kind, category }).inc();
    }

    pub fn external_write(&self, system: &'static str, call: &'static str) {
        self.external_writes.get_or_create(&ExternalLabels { system, call }).inc();
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
        self.metrics
            .duration
            .get_or_create(&KindLabels { kind: self.kind })
            .observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_failures_and_durations_are_exposed() {
        let metrics = Metrics::default();
        drop(metrics.reconcile("Tenant"));
        metrics.failure("Topic", "kafka");
        metrics.external_write("kafka", "CreateTopics");
        let text = metrics.encode();
        assert!(text.contains("tributary_reconciles_total{kind=\"Tenant\"} 1"), "{text}");
        assert!(text.contains("tributary_reconcile_failures_total{kind=\"Topic\",category=\"kafka\"} 1"), "{text}");
        assert!(text.contains("tributary_reconcile_duration_seconds_count{kind=\"Tenant\"} 1"), "{text}");
        assert!(text.contains("tributary_external_writes_total{system=\"kafka\",call=\"CreateTopics\"} 1"), "{text}");
    }
}
