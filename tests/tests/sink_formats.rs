//! What the mapping's unit tests cover, end to end through sink pods on the node (seed 001):
//! - CSV records (a header naming the fields, `;` between them) land typed in their table,
//!   with the sink's TTL on what they wrote;
//! - a CSV header that lacks a column's field is refused in the sink's status (InvalidSpec),
//!   and no pod is started for it;
//! - two sinks on one topic (fan-out) each write every record into their own table;
//! - the consistency level is the one the spec names: `Three` cannot be met by the one-node
//!   Cassandra, so nothing lands and the sink's status.lastError says why; changed to `One`,
//!   the pod rolls and every record is written, none lost.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use scylla::client::session::Session;
use scylla::value::CqlTimestamp;
use tributary::api::CassandraSink;
use tributary_tests::kafka::{produce, producer};
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{cassandra, select};
use tributary_tests::sink::SinkPods;
use tributary_tests::{kubectl, kubectl_apply, ready_tenant, tenant_kafka_settings, unique, wait_ready, wait_until};

const WAIT: Duration = Duration::from_secs(180);

fn sink_yaml(tenant: &str, name: &str, topic: &str, spec: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: CassandraSink\nmetadata:\n  name: {name}\n  namespace: {tenant}\n\
         spec:\n  topic: {topic}\n  replicas: 1\n{spec}"
    )
}

fn topic_yaml(tenant: &str, name: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: {name}\n  namespace: {tenant}\n\
         spec:\n  partitions: 1\n"
    )
}

/// The number of rows in `table`.
async fn count(session: &Session, table: &str) -> Result<usize, String> {
    let (n,): (i64,) = select(session, &format!("SELECT COUNT(*) FROM {table}")).await?[0];
    Ok(n as usize)
}

async fn wait_rows(session: &Session, table: &str, want: usize) {
    wait_until(&format!("{want} rows in {table}"), WAIT, || async {
        let n = count(session, table).await?;
        if n == want { Ok(()) } else { Err(format!("{n} rows")) }
    })
    .await;
}

#[tokio::test]
async fn csv_ttl_fan_out_and_the_consistency_level_work_through_the_pods() {
    OperatorProcess::shared().await;
    let tenant = unique("fmt");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let keyspace = tenant.replace('-', "_");
    kubectl_apply(&topic_yaml(&tenant, "lines"));
    kubectl_apply(&topic_yaml(&tenant, "events"));
    kubectl_apply(&sink_yaml(
        &tenant,
        "lines",
        "lines",
        "  table: lines\n  format: Csv\n  csv: {header: \"station,ts,ph,note\", delimiter: \";\"}\n  columns:\n\
         \x20 - {name: station, type: text}\n  - {name: ts, type: timestamp}\n  - {name: ph, type: double}\n\
         \x20 - {name: note, type: text}\n  partitionKey: [station]\n  ttlSeconds: 3600\n  consistency: Three\n",
    ));
    for (name, key) in [("byid", "id"), ("bykind", "kind")] {
        let clustering = if key == "kind" { "\n  clusteringKey: [{column: id}]" } else { "" };
        kubectl_apply(&sink_yaml(
            &tenant,
            name,
            "events",
            &format!(
                "  table: {name}\n  columns:\n  - {{name: id, type: text}}\n  - {{name: kind, type: text}}\n\
                 \x20 - {{name: amount, type: int}}\n  partitionKey: [{key}]{clustering}\n  consistency: One\n"
            ),
        ));
    }
    // A header that lacks a column's field: refused in the status, and no pod runs it.
    kubectl_apply(&sink_yaml(
        &tenant,
        "badcsv",
        "lines",
        "  table: badcsv\n  format: Csv\n  csv: {header: \"a,b\"}\n  columns:\n  - {name: station, type: text}\n\
         \x20 partitionKey: [station]\n",
    ));
    let sinks: Api<CassandraSink> = Api::namespaced(kube::Client::try_default().await.unwrap(), &tenant);
    let refused = wait_ready(&sinks, "badcsv", "False", "InvalidSpec").await;
    assert!(refused.contains("column station: field \"station\" is not in the CSV header (a,b)"), "{refused}");
    let deployments: Api<Deployment> = Api::namespaced(kube::Client::try_default().await.unwrap(), &tenant);
    assert!(deployments.get_opt("tributary-sink-badcsv").await.unwrap().is_none(), "no pod for a refused mapping");

    let lines = SinkPods::running(&tenant, "tributary-sink-lines", 1).await;
    SinkPods::running(&tenant, "tributary-sink-byid", 1).await;
    SinkPods::running(&tenant, "tributary-sink-bykind", 1).await;

    let producer = producer(&tenant_kafka_settings(&tenant).await);
    for i in 0..5 {
        let line = format!("st{i};1767225600{i:03};7.{i};note {i}");
        produce(&producer, &format!("{tenant}.lines"), &format!("st{i}"), &line).await.unwrap();
    }
    for i in 0..10 {
        let kind = if i % 2 == 0 { "even" } else { "odd" };
        let event = format!(r#"{{"id":"e{i}","kind":"{kind}","amount":{i}}}"#);
        produce(&producer, &format!("{tenant}.events"), &format!("e{i}"), &event).await.unwrap();
    }

    // Fan-out: every event in both tables, each keyed its own way.
    let session = cassandra().await;
    wait_rows(&session, &format!("{keyspace}.byid"), 10).await;
    wait_rows(&session, &format!("{keyspace}.bykind"), 10).await;
    let odd: Vec<(String,)> =
        select(&session, &format!("SELECT id FROM {keyspace}.bykind WHERE kind = 'odd'")).await.unwrap();
    assert_eq!(odd.len(), 5, "the odd events in one partition of bykind: {odd:?}");

    // Consistency THREE on one node: nothing lands, and the status says why.
    let error = wait_until("the lines sink to report why it cannot write", WAIT, || async {
        let status = sinks.get("lines").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        match status.last_error {
            Some(e) if e.to_uppercase().contains("THREE") => Ok(e),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(error.contains("retrying"), "a transient refusal, retried: {error}");
    assert_eq!(count(&session, &format!("{keyspace}.lines")).await.unwrap(), 0, "nothing written at THREE");

    // ONE: the pod rolls onto the new config and every line is written, typed, with the TTL.
    let patch = serde_json::json!({"spec": {"consistency": "One"}});
    sinks.patch("lines", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    wait_rows(&session, &format!("{keyspace}.lines"), 5).await;
    let mut got: Vec<(String, CqlTimestamp, f64, String, Option<i32>)> =
        select(&session, &format!("SELECT station, ts, ph, note, TTL(note) FROM {keyspace}.lines")).await.unwrap();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (station, ts, ph, note, ttl)) in got.iter().enumerate() {
        assert_eq!(station, &format!("st{i}"));
        assert_eq!(ts.0, 1_767_225_600_000 + i as i64);
        assert_eq!(*ph, format!("7.{i}").parse::<f64>().unwrap());
        assert_eq!(note, &format!("note {i}"));
        assert!(ttl.is_some_and(|t| t > 3000 && t <= 3600), "{station}: TTL {ttl:?}");
    }
    assert_eq!(lines.restarts().await, 0, "{}", lines.logs().await);

    for name in ["lines", "byid", "bykind", "badcsv"] {
        kubectl(&["delete", "cassandrasink", name, "-n", &tenant, "--timeout=120s"]);
    }
}
