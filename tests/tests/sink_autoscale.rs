//! Autoscaling on lag, end to end through sink pods on the node: a backlog waits in the
//! topic when an autoscaled sink (1 to 3 replicas, 2,000 records of lag per replica) is
//! created; the operator scales its Deployment up to the topic's 3 partitions, the pods
//! drain the backlog, and once the lag has stayed low for the delay it scales back to one.
//! Every record is in the table (count and checksum), the decisions are in the status and
//! in ScaledUp / ScaledDown events.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use tributary::api::CassandraSink;
use tributary_sink::seed::Dataset;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{cassandra, checksum, expected, produce, rows, wait_drained};
use tributary_tests::sink::wait_counted;
use tributary_tests::{kubectl, kubectl_apply, ready_tenant, repo_root, unique, wait_until};

const RECORDS: u64 = 60_000;

/// Waits for an event `reason` in the namespace whose message contains `text` (events are
/// published in the background), and returns the messages.
async fn wait_event(tenant: &str, reason: &str, text: &str) -> String {
    wait_until(&format!("a {reason} event saying {text:?}"), Duration::from_secs(30), || async {
        let selector = format!("reason={reason}");
        let messages = kubectl(&[
            "get",
            "events",
            "-n",
            tenant,
            "--field-selector",
            &selector,
            "-o",
            "jsonpath={.items[*].message}",
        ]);
        if messages.contains(text) { Ok(messages) } else { Err(format!("events: {messages:?}")) }
    })
    .await
}

#[tokio::test]
async fn a_backlog_scales_the_sink_up_and_once_drained_back_down_with_nothing_lost() {
    OperatorProcess::shared().await;
    let tenant = unique("auto");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let keyspace = tenant.replace('-', "_");
    let dir = repo_root().join("examples/water");
    let topic = std::fs::read_to_string(dir.join("topic.yaml")).unwrap();
    kubectl_apply(&topic.replace("namespace: water", &format!("namespace: {tenant}")));
    let run = unique("r");
    produce(&tenant, "water", &run, RECORDS).await;

    let sink = std::fs::read_to_string(dir.join("sink.yaml")).unwrap();
    kubectl_apply(&sink.replace("namespace: water", &format!("namespace: {tenant}")).replace(
        "replicas: 2",
        "replicas: 1\n  autoscale: {maxReplicas: 3, lagPerReplica: 2000, scaleDownDelaySeconds: 10}",
    ));
    let client = kube::Client::try_default().await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &tenant);
    let sinks: Api<CassandraSink> = Api::namespaced(client, &tenant);
    let replicas = || async {
        let d = deployments.get_opt("tributary-sink-readings").await.map_err(|e| e.to_string())?;
        d.and_then(|d| d.spec?.replicas).ok_or_else(|| "no Deployment yet".to_string())
    };

    wait_until("the sink to scale up to the 3 partitions", Duration::from_secs(120), || async {
        match replicas().await? {
            3 => Ok(()),
            n => Err(format!("{n} replicas")),
        }
    })
    .await;
    let up = wait_event(&tenant, "ScaledUp", "→ 3 replicas").await;
    assert!(up.contains("(2000 per replica)"), "the ScaledUp event says why: {up}");

    wait_drained(&format!("{tenant}.data"), &format!("{tenant}.sink.readings"), RECORDS as i64).await;
    wait_until("the sink to scale back down to 1 after the delay", Duration::from_secs(120), || async {
        match replicas().await? {
            1 => Ok(()),
            n => Err(format!("{n} replicas")),
        }
    })
    .await;
    wait_event(&tenant, "ScaledDown", "3 → 1 replicas").await;
    let status = sinks.get("readings").await.unwrap().status.unwrap_or_default();
    let decision = status.autoscale.expect("status.autoscale");
    assert_eq!(decision.replicas, 1, "{decision:?}");

    let session = cassandra().await;
    let want = expected(Dataset::Water, &run, RECORDS);
    let got = rows(&session, Dataset::Water, &keyspace, &run).await;
    assert_eq!((got.len(), checksum(&got)), (want.len(), checksum(&want)), "every record, once: count and checksum");
    // And counted once, through the rebalances of scaling up and down.
    wait_counted(&tenant, "readings", want.len() as i64).await;

    kubectl(&["delete", "cassandrasink", "readings", "-n", &tenant, "--timeout=120s"]);
}
