//! What each tenant uses of the shared clusters, for chargeback (and how many brokers are
//! alive, for the dashboard): every
//! `TRIBUTARY_USAGE_SECONDS` one Metadata and one DescribeLogDirs per broker and one read of Cassandra's disk
//! usage serve every tenant at once; the figures go to the metrics (label `tenant`) each time,
//! and into the Tenant's `status.usage` only when one moved by more than [`STEP_PERCENT`]
//! (counts: any change), so a steady platform writes no status.
//!
//! `status.usage` has its own field manager; the reconcile never writes it (its status leaves
//! it out), so neither can undo the other's update.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use crate::api::tenant::{TenantStatus, TenantUsage};
use crate::api::{CassandraSink, Tenant};
use crate::controller::Context;
use crate::external::kafka::log_dirs::TopicOnDisk;
use crate::tenant::ValidatedTenant;

/// Field manager of `status.usage`.
const FIELD_MANAGER: &str = "tributary-usage";
/// A byte, record or lag figure is rewritten once it differs from the written one by more
/// than this share of it.
pub const STEP_PERCENT: i64 = 5;

/// `status` without the usage (what the reconcile writes and compares).
pub fn strip(status: &TenantStatus) -> TenantStatus {
    TenantStatus { usage: None, ..status.clone() }
}

/// Measures every provisioned tenant every `config.usage`, until dropped.
pub async fn run(ctx: Arc<Context>) {
    let mut every = tokio::time::interval(ctx.config.usage);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut measured = BTreeSet::new();
    loop {
        every.tick().await;
        match once(&ctx, &measured).await {
            Ok(now) => measured = now,
            Err(e) => tracing::warn!(error = %e, "measuring the tenants' usage failed; trying again next time"),
        }
    }
}

/// One round; returns the tenants measured (their metrics are removed once they are gone).
async fn once(ctx: &Context, before: &BTreeSet<String>) -> Result<BTreeSet<String>, String> {
    // The cluster as the operator sees it (the dashboard's brokers panel): 0 while none answers.
    let disks = ctx.kafka.log_dirs().await;
    ctx.metrics.kafka_brokers.set(disks.as_ref().map_or(0, |d| i64::from(d.brokers)));
    let tenants: Vec<(Arc<Tenant>, Arc<ValidatedTenant>)> = ctx
        .watches
        .tenants
        .watched
        .store
        .state()
        .into_iter()
        .filter(|t| t.provisioned() && t.metadata.deletion_timestamp.is_none())
        .filter_map(|t| ctx.tenancy.validations.of(&t).ok().map(|v| (t, v)))
        .collect();
    let measured: BTreeSet<String> = tenants.iter().map(|(t, _)| t.name_any()).collect();
    for gone in before.difference(&measured) {
        ctx.metrics.forget_tenant(gone);
    }
    if tenants.is_empty() {
        return Ok(measured);
    }
    let topics = disks.map_err(|e| e.to_string())?.topics;
    let keyspaces = ctx.cassandra.keyspace_sizes().await.map_err(|e| e.to_string())?;
    let sinks = ctx.watches.sinks.watched.store.state();
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    for (tenant, v) in &tenants {
        let own = sinks.iter().filter(|s| s.metadata.namespace.as_deref() == Some(v.namespace.as_str()));
        let usage = measure(v, &topics, &keyspaces, own.map(AsRef::as_ref));
        ctx.metrics.tenant_usage(&v.name, &usage);
        let written = tenant.status.as_ref().and_then(|s| s.usage.as_ref());
        if worth_writing(written, &usage) {
            let usage = TenantUsage { updated_at: Some(Timestamp::now().to_string()), ..usage };
            let patch = serde_json::json!({
                "apiVersion": "tributary.dev/v1alpha1",
                "kind": "Tenant",
                "status": {"usage": usage},
            });
            let params = PatchParams::apply(FIELD_MANAGER).force();
            if let Err(e) = api.patch_status(&tenant.name_any(), &params, &Patch::Apply(&patch)).await {
                tracing::warn!(tenant = %v.name, error = %e, "writing the tenant's usage failed; trying again next time");
            }
        }
    }
    Ok(measured)
}

/// The tenant's figures from one round's answers (the watched sinks of its namespace for the
/// records written and the lag). Pure.
pub fn measure<'a>(
    v: &ValidatedTenant,
    topics: &BTreeMap<String, TopicOnDisk>,
    keyspaces: &BTreeMap<String, i64>,
    sinks: impl Iterator<Item = &'a CassandraSink>,
) -> TenantUsage {
    let own: Vec<&TopicOnDisk> =
        topics.iter().filter(|(name, _)| name.starts_with(&v.topic_prefix)).map(|(_, t)| t).collect();
    let (mut records, mut lag) = (0i64, 0i64);
    for status in sinks.filter_map(|s| s.status.as_ref()) {
        records = records.saturating_add(status.records_written.unwrap_or(0).max(0));
        lag = lag.saturating_add(status.lag.unwrap_or(0).max(0));
    }
    TenantUsage {
        topics: own.len() as i64,
        partitions: own.iter().map(|t| i64::from(t.partitions)).sum(),
        kafka_bytes: own.iter().map(|t| t.bytes).fold(0, i64::saturating_add),
        cassandra_bytes: keyspaces.get(&v.keyspace).copied().unwrap_or(0),
        sink_records_written: records,
        sink_lag: lag,
        updated_at: None,
    }
}

/// Whether `now` differs enough from the `written` figures to be written: any count, or a
/// byte, record or lag figure by more than [`STEP_PERCENT`] of the written one (a figure
/// from or to zero always). Pure.
pub fn worth_writing(written: Option<&TenantUsage>, now: &TenantUsage) -> bool {
    let Some(old) = written else { return true };
    let moved = |old: i64, new: i64| {
        if old == new {
            false
        } else if old == 0 || new == 0 {
            true
        } else {
            (new - old).unsigned_abs().saturating_mul(100) > old.unsigned_abs().saturating_mul(STEP_PERCENT as u64)
        }
    };
    old.topics != now.topics
        || old.partitions != now.partitions
        || moved(old.kafka_bytes, now.kafka_bytes)
        || moved(old.cassandra_bytes, now.cassandra_bytes)
        || moved(old.sink_records_written, now.sink_records_written)
        || moved(old.sink_lag, now.sink_lag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CassandraSinkStatus, TenantSpec};

    fn water() -> ValidatedTenant {
        let tenant = Tenant::new("water", TenantSpec::default());
        crate::tenant::validate::validate(&tenant).unwrap()
    }

    fn sink(written: i64, lag: i64) -> CassandraSink {
        let mut s: CassandraSink = serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "CassandraSink",
            "metadata": {"name": "s", "namespace": "water"},
            "spec": {"topic": "t", "table": "t", "columns": [{"name": "id", "type": "text"}], "partitionKey": ["id"]}
        }))
        .unwrap();
        s.status = Some(CassandraSinkStatus { records_written: Some(written), lag: Some(lag), ..Default::default() });
        s
    }

    #[test]
    fn a_tenant_is_measured_by_its_prefix_its_keyspace_and_its_sinks() {
        let v = water();
        let on_disk = |bytes, partitions| TopicOnDisk { bytes, partitions };
        let topics = BTreeMap::from([
            ("water.data".to_string(), on_disk(3_000, 3)),
            ("water.dlq.s".to_string(), on_disk(300, 3)),
            // Another tenant whose name starts like this one's: not counted.
            ("water-eu.data".to_string(), on_disk(9_000, 6)),
        ]);
        let keyspaces = BTreeMap::from([(v.keyspace.clone(), 2 << 20), ("water_eu".to_string(), 5 << 20)]);
        let sinks = [sink(900, 10), sink(100, 5)];
        let usage = measure(&v, &topics, &keyspaces, sinks.iter());
        assert_eq!(
            usage,
            TenantUsage {
                topics: 2,
                partitions: 6,
                kafka_bytes: 3_300,
                cassandra_bytes: 2 << 20,
                sink_records_written: 1_000,
                sink_lag: 15,
                updated_at: None,
            }
        );
    }

    #[test]
    fn usage_is_written_on_a_count_change_or_a_move_beyond_the_step_only() {
        let written =
            TenantUsage { topics: 2, partitions: 6, kafka_bytes: 1_000_000, sink_lag: 0, ..Default::default() };
        assert!(worth_writing(None, &written), "nothing written yet");
        assert!(!worth_writing(Some(&written), &written), "steady: no write");
        let grown = |bytes| TenantUsage { kafka_bytes: bytes, ..written.clone() };
        assert!(!worth_writing(Some(&written), &grown(1_050_000)), "5% is within the step");
        assert!(worth_writing(Some(&written), &grown(1_050_001)), "beyond 5%");
        assert!(worth_writing(Some(&written), &grown(900_000)), "shrunk beyond 5%");
        assert!(worth_writing(Some(&written), &TenantUsage { partitions: 7, ..written.clone() }), "a count");
        assert!(worth_writing(Some(&written), &TenantUsage { sink_lag: 1, ..written.clone() }), "from zero");
        let stamped = TenantUsage { updated_at: Some("2026-12-08T00:00:00Z".into()), ..written.clone() };
        assert!(!worth_writing(Some(&stamped), &written), "the stamp alone is no change");
    }
}
