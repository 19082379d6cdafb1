//! A steady platform costs Kafka and Cassandra nothing: once everything is reconciled, a full
//! resync of every Tenant, Topic and CassandraSink makes zero write calls
//! (tributary_external_writes_total), and so does an operator restart: the new process
//! reconciles everything once more and writes no credential, ACL, quota or config again.
//! (A test binary of its own: the counter is per operator process.)

use std::time::{Duration, Instant};

use kube::Client;
use kube::api::Api;
use tributary::api::{CassandraSink, Tenant, Topic};
use tributary_tests::operator::OperatorProcess;
use tributary_tests::{kubectl_apply, ready_tenant, unique, wait_ready, wait_until};

#[tokio::test]
async fn a_full_resync_and_an_operator_restart_of_a_steady_platform_write_nothing() {
    let operator = OperatorProcess::shared().await;
    let client = Client::try_default().await.unwrap();
    let tenant = unique("st");
    let tenant_cleanup = ready_tenant(&tenant, "  kafka:\n    quotas:\n      producerByteRate: 1048576\n").await;
    let api: Api<Topic> = Api::namespaced(client.clone(), &tenant);
    for i in 0..5 {
        kubectl_apply(&format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: t{i}\n  namespace: {tenant}\n\
             spec:\n  partitions: 1\n  config:\n    retention.ms: \"86400000\"\n"
        ));
    }
    for i in 0..5 {
        wait_ready(&api, &format!("t{i}"), "True", "Provisioned").await;
    }

    // Every object in the cluster (other tests' too) is reconciled at least once after the
    // operator started before the counter is read: wait for one resync period (10 s in
    // tests) plus the time for the reconciles to land.
    let objects = Api::<Topic>::all(client.clone()).list(&Default::default()).await.unwrap().items.len()
        + Api::<Tenant>::all(client.clone()).list(&Default::default()).await.unwrap().items.len()
        + Api::<CassandraSink>::all(client.clone()).list(&Default::default()).await.unwrap().items.len();
    full_resync(operator, objects, "a first full resync after the setup").await;
    let reconciles = || async { operator.metric("tributary_reconciles_total").await };

    let writes = || async { operator.metric("tributary_external_writes_total").await };
    let (writes_before, reconciles_before, start) =
        (writes().await.unwrap(), reconciles().await.unwrap(), Instant::now());
    // Two more resync periods: every object is reconciled at least twice more.
    wait_until("two full resyncs", Duration::from_secs(90), || async {
        let done = reconciles().await? - reconciles_before;
        if start.elapsed() > Duration::from_secs(23) && done >= 2.0 * objects as f64 {
            Ok(())
        } else {
            Err(format!("{done} reconciles of {objects} objects in {:?}", start.elapsed()))
        }
    })
    .await;
    let text = operator.get("/metrics").await.unwrap();
    let write_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("tributary_external_writes_total")).collect();
    assert_eq!(writes().await.unwrap(), writes_before, "Kafka writes during a steady resync: {write_lines:?}");
    assert!(
        !write_lines.is_empty() && writes_before > 0.0,
        "the counter counts: the setup itself wrote (users, ACLs, topics): {write_lines:?}"
    );

    // A restart: the new process reconciles every object once more, and writes nothing.
    operator.terminate();
    wait_until("the operator to exit", Duration::from_secs(60), || async {
        if operator.alive() { Err("running".to_string()) } else { Ok(()) }
    })
    .await;
    let restarted = OperatorProcess::spawn(&unique("operator"), &operator.namespace);
    restarted.wait_leader().await;
    full_resync(&restarted, objects, "every object reconciled by the restarted operator").await;
    let text = restarted.get("/metrics").await.unwrap();
    let write_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("tributary_external_writes_total")).collect();
    assert_eq!(
        restarted.metric("tributary_external_writes_total").await.unwrap(),
        0.0,
        "writes after a restart: {write_lines:?}; log: {}",
        restarted.log_tail()
    );
    // The Tenant goes while an operator still runs to take it down.
    drop(tenant_cleanup);
    restarted.terminate();
}

/// Waits until `operator` reconciled at least `objects` times more, over more than one
/// resync period (10 s in tests).
async fn full_resync(operator: &OperatorProcess, objects: usize, what: &str) {
    let reconciles = || async { operator.metric("tributary_reconciles_total").await };
    let settled = Instant::now();
    let before = reconciles().await.unwrap();
    wait_until(what, Duration::from_secs(90), || async {
        let done = reconciles().await? - before;
        if settled.elapsed() > Duration::from_secs(12) && done >= objects as f64 {
            Ok(())
        } else {
            Err(format!("{done} reconciles of {objects} objects"))
        }
    })
    .await;
}
