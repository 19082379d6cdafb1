//! Suspend and resume (issue 37): a CassandraSink with `spec.suspend: true` runs no pod and
//! says `Suspended`, records produced meanwhile wait in Kafka (none reaches the table), and
//! with `false` again it resumes where it stopped: the new pods write exactly the records
//! produced while it was suspended (nothing lost, nothing read twice), and `recordsWritten`
//! counts each record once. The sink writes to its named local datacenter; one naming a
//! datacenter Cassandra does not have is refused before any pod starts.

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use tributary::api::CassandraSink;
use tributary_sink::seed::Dataset;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{
    MALFORMED_EVERY, apply_water_example_ready, cassandra, expected, produce, rows, water_example,
};
use tributary_tests::sink::{SinkPods, wait_counted, wait_deployment};
use tributary_tests::{TenantCleanup, kubectl, kubectl_apply, unique, wait_ready, wait_until};

const WAIT: Duration = Duration::from_secs(180);
const SINK: &str = "tributary-sink-readings";

/// Records of `count` that are not malformed (those go to the dead-letter topic).
fn valid(count: u64) -> i64 {
    (0..count).filter(|i| !tributary_sink::seed::is_malformed(*i, MALFORMED_EVERY)).count() as i64
}

#[tokio::test]
async fn a_suspended_sink_holds_its_records_and_resumes_where_it_stopped() {
    OperatorProcess::shared().await;
    let tenant = unique("susp");
    let _tenant = TenantCleanup::new(&tenant);
    apply_water_example_ready(&tenant);
    let sinks: Api<CassandraSink> = Api::namespaced(kube::Client::try_default().await.unwrap(), &tenant);
    // Its local datacenter named: the one the stack's Cassandra names.
    let patch = |spec: serde_json::Value| Patch::Merge(serde_json::json!({ "spec": spec }));
    sinks
        .patch("readings", &PatchParams::default(), &patch(serde_json::json!({"localDatacenter": "datacenter1"})))
        .await
        .unwrap();
    wait_until("the sink's config to name its local datacenter", WAIT, || async {
        let config = kubectl(&["get", "configmap", SINK, "-n", &tenant, "-o", "jsonpath={.data.sink\\.yaml}"]);
        if config.contains("localDatacenter: datacenter1") { Ok(()) } else { Err(config) }
    })
    .await;
    SinkPods::running(&tenant, SINK, 2).await.wait_rolled_out(2).await;
    let keyspace = tenant.replace('-', "_");
    let session = cassandra().await;
    let (first, count) = (unique("s1"), 1_000);
    produce(&tenant, "water", &first, count).await;
    wait_counted(&tenant, "readings", valid(count)).await;

    // Suspended: no pod, the status says so, and what is produced now waits in Kafka.
    sinks.patch("readings", &PatchParams::default(), &patch(serde_json::json!({"suspend": true}))).await.unwrap();
    wait_ready(&sinks, "readings", "False", "Suspended").await;
    wait_until("the suspended sink's pods gone", WAIT, || async {
        let pods = kubectl(&["get", "pods", "-n", &tenant, "-l", "tributary.dev/sink=readings", "-o", "name"]);
        let replicas = wait_deployment(&tenant, SINK).await.spec.and_then(|s| s.replicas);
        if pods.trim().is_empty() && replicas == Some(0) { Ok(()) } else { Err(format!("{replicas:?} {pods}")) }
    })
    .await;
    wait_until("the status to say the sink is suspended, its offsets kept", WAIT, || async {
        let message = wait_ready(&sinks, "readings", "False", "Suspended").await;
        if message.contains("keeps its offsets") { Ok(()) } else { Err(message) }
    })
    .await;
    let second = unique("s2");
    produce(&tenant, "water", &second, count).await;
    wait_until("the operator to see the records waiting", WAIT, || async {
        let status = sinks.get("readings").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        if status.lag >= Some(count as i64) { Ok(()) } else { Err(format!("lag {:?}", status.lag)) }
    })
    .await;
    assert!(rows(&session, Dataset::Water, &keyspace, &second).await.is_empty(), "written while suspended");
    assert_eq!(sinks.get("readings").await.unwrap().status.unwrap().replicas.as_deref(), Some("0/0"));

    // Resumed: the new pods write exactly what was produced meanwhile.
    sinks.patch("readings", &PatchParams::default(), &patch(serde_json::json!({"suspend": false}))).await.unwrap();
    wait_ready(&sinks, "readings", "True", "Running").await;
    let want = expected(Dataset::Water, &second, count);
    wait_until("the records produced while suspended in the table", WAIT, || async {
        let got = rows(&session, Dataset::Water, &keyspace, &second).await;
        if got == want { Ok(()) } else { Err(format!("{} of {} rows", got.len(), want.len())) }
    })
    .await;
    assert_eq!(rows(&session, Dataset::Water, &keyspace, &first).await, expected(Dataset::Water, &first, count));
    let status = wait_counted(&tenant, "readings", 2 * valid(count)).await;
    let pods = SinkPods::running(&tenant, SINK, 2).await;
    let written_by_new_pods = pods.metric("tributary_sink_records_written_total").await;
    assert_eq!(written_by_new_pods as i64, valid(count), "the resumed pods read nothing twice: {status:?}");

    // A datacenter Cassandra does not have: refused, with the ones it has named; no pod.
    kubectl_apply(
        &water_example("sink.yaml", &tenant)
            .replace("name: readings", "name: elsewhere")
            .replace("table: readings", "table: elsewhere")
            .replace("replicas: 2", "replicas: 1\n  localDatacenter: nowhere"),
    );
    let message = wait_ready(&sinks, "elsewhere", "False", "InvalidSpec").await;
    assert!(message.contains("\"nowhere\" is not a datacenter") && message.contains("datacenter1"), "{message}");
    let deployment = kubectl(&["get", "deployment", "-n", &tenant, "tributary-sink-elsewhere", "--ignore-not-found"]);
    assert!(deployment.trim().is_empty(), "{deployment}");
}
