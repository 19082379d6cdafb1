//! Replay and where a new sink starts (seed 001), end to end through sink pods on the node:
//! - the team truncates its table with its own credentials (the rows are gone); a replay
//!   from a time (between two batches) brings back exactly the second batch, a replay from
//!   `Earliest` brings back every row, each once per id, the pods stopped while the group's
//!   offsets move and running again after;
//! - a new sink with `startFrom: Latest` writes only what is produced after it was created,
//!   and one with `startFrom: <time>` only what was produced at or after that time.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use scylla::client::session::Session;
use tributary::api::{CassandraSink, ReplayPhase};
use tributary_tests::kafka::{produce, producer};
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{select, wait_credentials};
use tributary_tests::sink::{SinkPods, wait_counted};
use tributary_tests::{
    cassandra_session, kubectl, kubectl_apply, ready_tenant, tenant_kafka_settings, unique, wait_ready, wait_until,
};

const WAIT: Duration = Duration::from_secs(180);

fn sink_yaml(tenant: &str, name: &str, extra: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: CassandraSink\nmetadata:\n  name: {name}\n  namespace: {tenant}\n\
         spec:\n  topic: events\n  table: {name}\n  replicas: 2\n  consistency: One\n  columns:\n\
         \x20 - {{name: id, type: text}}\n  - {{name: seq, type: int}}\n  partitionKey: [id]\n{extra}"
    )
}

/// The ids in `table`.
async fn ids(session: &Session, table: &str) -> Result<BTreeSet<String>, String> {
    let rows: Vec<(String,)> = select(session, &format!("SELECT id FROM {table}")).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

async fn wait_ids(session: &Session, table: &str, want: &BTreeSet<String>) {
    wait_until(&format!("{} ids in {table}", want.len()), WAIT, || async {
        let got = ids(session, table).await?;
        if &got == want { Ok(()) } else { Err(format!("{} ids, {} missing", got.len(), want.difference(&got).count())) }
    })
    .await;
}

fn batch(name: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("{name}{i:03}")).collect()
}

async fn wait_replay_done(sinks: &Api<CassandraSink>, name: &str, id: &str) -> String {
    wait_until(&format!("replay {id} of {name} done"), WAIT, || async {
        let status = sinks.get(name).await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        match status.replay {
            Some(r) if r.id == id && r.phase == ReplayPhase::Done => Ok(r.offsets.unwrap_or_default()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test]
async fn replays_restore_what_was_lost_and_new_sinks_start_where_they_are_told() {
    OperatorProcess::shared().await;
    let tenant = unique("replay");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let keyspace = tenant.replace('-', "_");
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: events\n  namespace: {tenant}\n\
         spec:\n  partitions: 3\n"
    ));
    kubectl_apply(&sink_yaml(&tenant, "main", ""));
    let sinks: Api<CassandraSink> = Api::namespaced(kube::Client::try_default().await.unwrap(), &tenant);
    wait_ready(&sinks, "main", "True", "Running").await;

    // The team's own Cassandra login: what it can see and truncate.
    let creds = wait_credentials(&tenant).await;
    let team = cassandra_session(&creds["cassandra.username"], &creds["cassandra.password"])
        .await
        .expect("the tenant's Cassandra login");
    let table = format!("{keyspace}.main");
    let producer = producer(&tenant_kafka_settings(&tenant).await);
    let topic = format!("{tenant}.events");
    let send = |ids: BTreeSet<String>| {
        let (producer, topic) = (producer.clone(), topic.clone());
        async move {
            for (n, id) in ids.iter().enumerate() {
                produce(&producer, &topic, id, &format!(r#"{{"id":"{id}","seq":{n}}}"#)).await.unwrap();
            }
        }
    };

    let (a, b) = (batch("a", 150), batch("b", 150));
    send(a.clone()).await;
    wait_ids(&team, &table, &a).await;
    // Every record of b is produced, so stamped (CreateTime, ms), at or after `between`;
    // a's were all written to Cassandra before it.
    let between = Timestamp::now();
    send(b.clone()).await;
    let all: BTreeSet<String> = a.union(&b).cloned().collect();
    wait_ids(&team, &table, &all).await;
    wait_counted(&tenant, "main", 300).await;

    // Lost: the team truncates its table.
    team.query_unpaged(format!("TRUNCATE {table}"), &[]).await.expect("the team truncates its own table");
    assert!(ids(&team, &table).await.unwrap().is_empty());

    // Replay from the time between the batches: exactly b comes back.
    let replay = |id: &str, from: String| {
        let patch = serde_json::json!({"spec": {"replay": {"id": id, "from": from}}});
        let sinks = sinks.clone();
        async move { sinks.patch("main", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap() }
    };
    replay("r1", between.to_string()).await;
    let offsets = wait_replay_done(&sinks, "main", "r1").await;
    assert_eq!(offsets.split(", ").count(), 3, "one offset per partition: {offsets}");
    wait_ids(&team, &table, &b).await;
    // The replay carried each partition's count: b's records are written, and counted, again.
    wait_counted(&tenant, "main", 450).await;
    wait_ready(&sinks, "main", "True", "Running").await;
    SinkPods::running(&tenant, "tributary-sink-main", 2).await;
    let events = kubectl(&["get", "events", "-n", &tenant, "--field-selector", "reason=OffsetsMoved", "-o", "name"]);
    assert!(!events.trim().is_empty(), "the move is told in an event");

    // From the beginning: every row again.
    replay("r2", "Earliest".into()).await;
    wait_replay_done(&sinks, "main", "r2").await;
    wait_ids(&team, &table, &all).await;
    wait_counted(&tenant, "main", 750).await;
    wait_ready(&sinks, "main", "True", "Running").await;

    // New sinks: from Latest (only what comes after it was created) and from the time.
    kubectl_apply(&sink_yaml(&tenant, "latest", "  startFrom: Latest\n"));
    kubectl_apply(&sink_yaml(&tenant, "since", &format!("  startFrom: \"{between}\"\n")));
    for name in ["latest", "since"] {
        wait_replay_done(&sinks, name, "startFrom").await;
        wait_ready(&sinks, name, "True", "Running").await;
    }
    let c = batch("c", 50);
    send(c.clone()).await;
    wait_ids(&team, &format!("{keyspace}.latest"), &c).await;
    wait_ids(&team, &format!("{keyspace}.since"), &b.union(&c).cloned().collect()).await;
    // And the first sink got c too, once: nothing else moved its group.
    wait_ids(&team, &table, &all.union(&c).cloned().collect()).await;
    for (name, want) in [("main", 800), ("latest", 50), ("since", 200)] {
        wait_counted(&tenant, name, want).await;
    }

    for name in ["main", "latest", "since"] {
        kubectl(&["delete", "cassandrasink", name, "-n", &tenant, "--timeout=120s"]);
    }
}
