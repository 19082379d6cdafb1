//! A steady platform costs Kafka nothing: once everything is reconciled, a full resync of
//! every Tenant and Topic makes zero Kafka write calls (tributary_external_writes_total).
//! (A test binary of its own: the counter is per operator process.)

use std::time::{Duration, Instant};

use kube::Client;
use kube::api::Api;
use tributary::api::{Tenant, Topic};
use tributary_tests::operator::OperatorProcess;
use tributary_tests::{kubectl_apply, ready_tenant, unique, wait_ready, wait_until};

#[tokio::test]
async fn a_full_resync_of_a_steady_platform_writes_nothing_to_kafka() {
    let operator = OperatorProcess::shared().await;
    let client = Client::try_default().await.unwrap();
    let tenant = unique("st");
    ready_tenant(&tenant, "  kafka:\n    quotas:\n      producerByteRate: 1048576\n").await;
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
        + Api::<Tenant>::all(client.clone()).list(&Default::default()).await.unwrap().items.len();
    let reconciles = || async { operator.metric("tributary_reconciles_total").await };
    let settled = Instant::now();
    let before = reconciles().await.unwrap();
    wait_until("a first full resync after the setup", Duration::from_secs(60), || async {
        let done = reconciles().await? - before;
        if settled.elapsed() > Duration::from_secs(12) && done >= objects as f64 {
            Ok(())
        } else {
            Err(format!("{done}"))
        }
    })
    .await;

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
}
