//! Big records through a sink pod on the node: forty 3 MiB records (120 MiB, more than the
//! pod's 256 MiB limit holds three times over) are all written without the pod restarting;
//! a 3 MiB record that does not map goes to the dead-letter topic whole (the topic takes
//! what the source topic takes); a record whose key is too long for Cassandra is refused by
//! it and dead-lettered instead of stopping the sink.

use std::time::Duration;
use tributary_tests::{ClientConfigOf, CreateClient};

use tributary_tests::kafka::produce;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{cassandra, dead_letters, select};
use tributary_tests::sink::SinkPods;
use tributary_tests::{kubectl, kubectl_apply, ready_tenant, tenant_kafka_settings, unique, wait_until};

const BIG: usize = 3 << 20;
const RECORDS: usize = 40;

#[tokio::test]
async fn big_records_are_written_or_dead_lettered_whole_and_the_pod_keeps_running() {
    OperatorProcess::shared().await;
    let tenant = unique("big");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: blobs\n  namespace: {tenant}\n\
         spec:\n  partitions: 1\n  config:\n    max.message.bytes: \"4194304\"\n---\n\
         apiVersion: tributary.dev/v1alpha1\nkind: CassandraSink\nmetadata:\n  name: blobs\n  namespace: {tenant}\n\
         spec:\n  topic: blobs\n  table: blobs\n  columns:\n  - {{name: id, type: text}}\n  - {{name: body, type: text}}\n\
         \x20 partitionKey: [id]\n"
    ));
    let sinks = SinkPods::running(&tenant, "tributary-sink-blobs", 1).await;

    let producer = tenant_kafka_settings(&tenant)
        .await
        .client_config()
        .set("acks", "all")
        .set("message.max.bytes", "5000000")
        .create_client()
        .expect("create producer");
    let topic = format!("{tenant}.blobs");
    let body = "x".repeat(BIG);
    for i in 0..RECORDS {
        let id = format!("r-{i}");
        produce(&producer, &topic, &id, &format!(r#"{{"id":"{id}","body":"{body}"}}"#)).await.unwrap();
    }
    // No id: not mappable. An id of 100 KiB: Cassandra takes keys of at most 64 KiB.
    produce(&producer, &topic, "nokey", &format!(r#"{{"body":"{body}"}}"#)).await.unwrap();
    let long = "k".repeat(100 * 1024);
    produce(&producer, &topic, "longkey", &format!(r#"{{"id":"{long}","body":"short"}}"#)).await.unwrap();

    let session = cassandra().await;
    let keyspace = tenant.replace('-', "_");
    wait_until(&format!("{RECORDS} rows in {keyspace}.blobs"), Duration::from_secs(300), || async {
        let n = select::<(String,)>(&session, &format!("SELECT id FROM {keyspace}.blobs")).await?.len();
        if n == RECORDS { Ok(()) } else { Err(format!("{n} rows")) }
    })
    .await;
    let written: Vec<(String,)> =
        select(&session, &format!("SELECT body FROM {keyspace}.blobs WHERE id = 'r-7'")).await.unwrap();
    assert_eq!(written[0].0.len(), BIG, "a 3 MiB value is stored whole");

    let letters = dead_letters(&format!("{tenant}.dlq.blobs"), "", 2).await;
    let nokey = letters.get("nokey").unwrap_or_else(|| panic!("{letters:?}"));
    assert!(nokey.error.starts_with("column id"), "{nokey:?}");
    assert!(nokey.payload_bytes > BIG, "dead-lettered with its payload: {nokey:?}");
    let longkey = letters.get("longkey").unwrap_or_else(|| panic!("{letters:?}"));
    assert!(longkey.error.starts_with("Cassandra refused the row"), "{longkey:?}");

    assert_eq!(sinks.restarts().await, 0, "{}", sinks.logs().await);
    kubectl(&["delete", "cassandrasink", "blobs", "-n", &tenant, "--timeout=120s"]);
}
