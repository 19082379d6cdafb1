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

/// A tenant's name: as many label sets as Tenants, removed with the Tenant.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

/// One object of a kind: as many label sets as objects, removed with the object.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    /// Empty for a Tenant (cluster-scoped).
    pub object_namespace: String,
    pub object: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SystemLabels {
    pub system: &'static str,
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
    /// Brokers the Kafka cluster reports alive (0 while none answers), measured with the usage.
    pub kafka_brokers: Gauge,
    /// What each tenant uses (`tenant/usage.rs`), one family per figure.
    usage: [Family<TenantLabels, Gauge>; 6],
    /// 1 while the object's Ready condition is True, else 0 (set by the leader).
    ready: Family<ObjectLabels, Gauge>,
    /// 1 while the operator's breaker for `kafka` or `cassandra` is open.
    unreachable: Family<SystemLabels, Gauge>,
    /// During a rotation, when the tenant's previous credentials stop working (Unix seconds).
    previous_expiry: Family<TenantLabels, Gauge>,
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
        let kafka_brokers = Gauge::default();
        registry.register(
            "kafka_brokers_live",
            "Brokers the Kafka cluster reports alive, as the operator sees it (0 while none answers)",
            kafka_brokers.clone(),
        );
        let usage: [Family<TenantLabels, Gauge>; 6] = Default::default();
        let usage_help = [
            ("tenant_topics", "Kafka topics under the tenant's prefix"),
            ("tenant_partitions", "Partitions of the tenant's Kafka topics"),
            ("tenant_kafka_bytes", "Bytes of the tenant's topics on the brokers' disks, every replica counted"),
            ("tenant_cassandra_bytes", "Bytes of the tenant's keyspace in Cassandra's SSTables"),
            ("tenant_sink_records_written", "Records the tenant's sinks have written to Cassandra"),
            ("tenant_sink_lag", "Records the tenant's sinks have not written yet"),
        ];
        for ((name, help), family) in usage_help.into_iter().zip(&usage) {
            registry.register(name, help, family.clone());
        }
        let ready = Family::<ObjectLabels, Gauge>::default();
        registry.register("object_ready", "1 while the object's Ready condition is True, else 0", ready.clone());
        let unreachable = Family::<SystemLabels, Gauge>::default();
        registry.register(
            "external_unreachable",
            "1 while the operator holds Kafka or Cassandra for unreachable (its calls fail fast)",
            unreachable.clone(),
        );
        let previous_expiry = Family::<TenantLabels, Gauge>::default();
        registry.register(
            "tenant_previous_credentials_expiry_timestamp_seconds",
            "During a rotation, when the grace period of the tenant's previous credentials ends (Unix seconds)",
            previous_expiry.clone(),
        );
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
            kafka_brokers,
            usage,
            ready,
            unreachable,
            previous_expiry,
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

    /// A tenant's figures, as last measured.
    pub fn tenant_usage(&self, tenant: &str, usage: &crate::api::tenant::TenantUsage) {
        let labels = TenantLabels { tenant: tenant.to_string() };
        let figures = [
            usage.topics,
            usage.partitions,
            usage.kafka_bytes,
            usage.cassandra_bytes,
            usage.sink_records_written,
            usage.sink_lag,
        ];
        for (family, value) in self.usage.iter().zip(figures) {
            family.get_or_create(&labels).set(value);
        }
    }

    /// A tenant no longer measured (deleted): its series go.
    pub fn forget_tenant(&self, tenant: &str) {
        let labels = TenantLabels { tenant: tenant.to_string() };
        for family in &self.usage {
            family.remove(&labels);
        }
    }

    /// The object's readiness, as its status now says.
    pub fn object_ready(&self, kind: &str, namespace: Option<&str>, name: &str, ready: bool) {
        self.ready.get_or_create(&object_labels(kind, namespace, name)).set(i64::from(ready));
    }

    /// The object is being deleted: its series goes.
    pub fn forget_object(&self, kind: &str, namespace: Option<&str>, name: &str) {
        self.ready.remove(&object_labels(kind, namespace, name));
    }

    /// The gauge a breaker of `system` keeps at 1 while open (0 from the start).
    pub fn unreachable(&self, system: &'static str) -> Gauge {
        self.unreachable.get_or_create(&SystemLabels { system }).clone()
    }

    /// A rotation's previous credentials work until `until` (Unix seconds); `None`: there
    /// are none (the series goes).
    pub fn previous_credentials(&self, tenant: &str, until: Option<i64>) {
        let labels = TenantLabels { tenant: tenant.to_string() };
        match until {
            Some(at) => drop(self.previous_expiry.get_or_create(&labels).set(at)),
            None => drop(self.previous_expiry.remove(&labels)),
        }
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

fn object_labels(kind: &str, namespace: Option<&str>, name: &str) -> ObjectLabels {
    ObjectLabels {
        kind: kind.to_string(),
        object_namespace: namespace.unwrap_or_default().to_string(),
        object: name.to_string(),
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
