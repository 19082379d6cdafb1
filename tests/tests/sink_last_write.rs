//! The last write wins: 1,000 rows updated 40 times each through two sink pods, with
//! Cassandra frozen mid-stream until writes pile up (they then complete in any order) and a sink
//! container killed (its records are read and written again). Afterwards every row holds
//! the value of its last record in partition order, checked row by row.
//! (A test binary of its own: it pauses Cassandra.)

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{apply_water_example, cassandra, wait_drained};
use tributary_tests::sink::SinkPods;
use tributary_tests::{kafka, kubectl, ready_tenant, stack_ctl, tenant_kafka_settings, unique, wait_until};

const KEYS: usize = 1_000;
const UPDATES: usize = 40;
/// One row per station: every update of a station has the same clustering key.
const TS: i64 = 1_767_225_600_000;

/// Thaws Cassandra when the test ends, pass or fail.
struct ThawOnDrop;

impl Drop for ThawOnDrop {
    fn drop(&mut self) {
        stack_ctl(&["thaw", "cassandra"]);
    }
}

/// Produces update `round` of every key, all at once; returns, per key, (partition, offset,
/// conductivity) of what Kafka acknowledged.
async fn produce_round(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    run: &str,
    round: usize,
) -> Vec<(String, (i32, i64, i32))> {
    // Values fall with every round, so the last update holds the smallest value: Cassandra
    // resolves equal timestamps towards the larger value, and a stale write would show.
    let conductivity = (10_000 - round) as i32;
    let sends = (0..KEYS).map(|k| {
        let station = format!("{run}-{k:04}");
        let value = format!(
            r#"{{"station":"{station}","ts":{TS},"reading":{{"ph":7.0,"turbidity":1.0,"temperature":{round}.0}},"conductivity":{conductivity}}}"#
        );
        async move {
            let (partition, offset) =
                kafka::produce(producer, topic, &station, &value).await.unwrap_or_else(|e| panic!("produce: {e}"));
            (station, (partition, offset, conductivity))
        }
    });
    futures::stream::iter(sends).buffer_unordered(KEYS).collect().await
}

#[tokio::test]
async fn every_row_holds_its_last_update_after_a_cassandra_pause_and_a_killed_sink() {
    OperatorProcess::shared().await;
    let tenant = unique("lww");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    apply_water_example(&tenant, 2);
    let sinks = SinkPods::running(&tenant, "tributary-sink-readings", 2).await;
    let topic = format!("{tenant}.data");
    let producer = kafka::producer(&tenant_kafka_settings(&tenant).await);
    let run = unique("lww");

    // Per key, the record with the highest offset (the last one of its partition) is the one
    // the row must hold.
    let mut last: BTreeMap<String, (i32, i64, i32)> = BTreeMap::new();
    let mut remember = |acked: Vec<(String, (i32, i64, i32))>| {
        for (station, record) in acked {
            let entry = last.entry(station).or_insert(record);
            assert_eq!(entry.0, record.0, "one key, one partition");
            if record.1 > entry.1 {
                *entry = record;
            }
        }
    };
    for round in 0..10 {
        remember(produce_round(&producer, &topic, &run, round).await);
    }
    {
        // Cassandra stops answering (SIGSTOP) while updates keep coming: the sinks' writes
        // pile up, time out and are retried, and complete in whatever order once it answers.
        let _thaw = ThawOnDrop;
        stack_ctl(&["freeze", "cassandra"]);
        for round in 10..20 {
            remember(produce_round(&producer, &topic, &run, round).await);
        }
        // Thawed once the sinks hold writes Cassandra has not answered.
        wait_until("writes to pile up while Cassandra is frozen", Duration::from_secs(60), || async {
            let in_flight = sinks.metric("tributary_sink_writes_in_flight").await;
            if in_flight > 0.0 { Ok(()) } else { Err(format!("{in_flight} writes in flight")) }
        })
        .await;
    }
    for round in 20..30 {
        remember(produce_round(&producer, &topic, &run, round).await);
    }
    // A sink container is killed mid-stream: what it had not committed is read again.
    let pods = sinks.pods().await;
    sinks.kill_container(&pods[0]).await;
    for round in 30..UPDATES {
        remember(produce_round(&producer, &topic, &run, round).await);
    }
    wait_drained(&topic, &format!("{tenant}.sink.readings"), (KEYS * UPDATES) as i64).await;

    let session = cassandra().await;
    let keyspace = tenant.replace('-', "_");
    let query = format!("SELECT station, conductivity FROM {keyspace}.readings");
    let mut stream = session.query_iter(query, &[]).await.unwrap().rows_stream::<(String, Option<i32>)>().unwrap();
    let mut got: BTreeMap<String, Option<i32>> = BTreeMap::new();
    while let Some(row) = stream.next().await {
        let (station, conductivity) = row.unwrap();
        got.insert(station, conductivity);
    }
    assert_eq!(got.len(), KEYS, "one row per station");
    let stale: Vec<String> = last
        .iter()
        .filter(|(station, (_, _, want))| got.get(*station) != Some(&Some(*want)))
        .map(|(station, (p, o, want))| format!("{station} holds {:?}, its last record ({p}/{o}) {want}", got[station]))
        .collect();
    assert!(
        stale.is_empty(),
        "{} of {KEYS} rows do not hold their last update, e.g. {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
    kubectl(&["delete", "cassandrasink", "readings", "-n", &tenant, "--timeout=120s"]);
}
