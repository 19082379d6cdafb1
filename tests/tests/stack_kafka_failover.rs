//! With one of the three brokers down, a replication-factor-3 topic stays writable with
//! `acks=all` (min.insync.replicas=2), and nothing written is lost.
//! A test binary of its own: it stops a broker, which other tests must not see. It stops
//! broker 1, so that no broker is restarted twice in one run: `sink_faults` restarts
//! broker 2 and `topic_kafka_degraded` broker 3.

use std::time::Duration;

use tributary_tests::kafka::{consume, consumer, create_topic, delete_topic, produce, producer, topic_layout};
use tributary_tests::{kafka_admin, kafka_admin_settings, stack_ctl, unique, wait_until};

/// Restarts the broker when the test ends, pass or fail, so later tests get a full cluster.
struct RestartOnDrop(&'static str);

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        stack_ctl(&["start", self.0]);
    }
}

#[tokio::test]
async fn an_rf3_topic_stays_writable_with_acks_all_when_one_broker_is_killed() {
    let admin = kafka_admin();
    let topic = unique("smoke-failover");
    create_topic(&admin, &topic, 3, 3).await;
    let settings = kafka_admin_settings();
    let producer = producer(&settings);
    for i in 0..10 {
        produce(&producer, &topic, &format!("before-{i}"), "v").await.expect("produce with 3 brokers");
    }

    let restart = RestartOnDrop("kafka-1");
    stack_ctl(&["stop", "kafka-1"]);
    wait_until("broker 1 to leave every in-sync replica set", Duration::from_secs(60), || async {
        let layout = topic_layout(&admin, &topic)?;
        let shrunk = layout.iter().all(|p| !p.isr.contains(&1) && p.isr.len() == 2 && p.leader != 1);
        if shrunk { Ok(()) } else { Err(format!("{layout:?}")) }
    })
    .await;

    for i in 0..100 {
        produce(&producer, &topic, &format!("during-{i}"), "v")
            .await
            .unwrap_or_else(|e| panic!("record {i} refused with one broker down: {e}"));
    }

    let records = consume(&consumer(&settings, &unique("smoke-failover-reader")), &topic, 110, Duration::from_secs(60))
        .await
        .expect("read everything back with one broker down");
    let mut keys: Vec<String> = records.into_iter().map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 110, "every acknowledged record is readable");

    drop(restart);
    wait_until("broker 1 to rejoin the in-sync replicas", Duration::from_secs(120), || async {
        let layout = topic_layout(&admin, &topic)?;
        if layout.iter().all(|p| p.isr.len() == 3) { Ok(()) } else { Err(format!("{layout:?}")) }
    })
    .await;
    delete_topic(&admin, &topic).await;
}
