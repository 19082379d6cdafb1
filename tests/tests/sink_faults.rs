//! The sink under faults, nothing lost: a broker stopped mid-stream, then Cassandra stopped
//! for 30 s mid-stream (the sink pauses, retries, and resumes). Every record of both runs
//! is compared with Cassandra row by row afterwards.
//! (A test binary of its own: it stops a broker and Cassandra.)

use std::time::Duration;

use tributary_sink::seed::Dataset;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{
    MALFORMED_EVERY, apply_water_example, cassandra, checksum, expected, produce_paced, rows, secret, wait_credentials,
    wait_drained,
};
use tributary_tests::sink::{SinkPods, wait_counted};
use tributary_tests::{TenantCleanup, kubectl, kubectl_apply, stack_ctl, unique, wait_until};

/// Records per run (`make bench` runs this test at benchmark volume through
/// TRIBUTARY_FAULT_RECORDS / TRIBUTARY_FAULT_RATE and collects its figures with
/// TRIBUTARY_BENCH_OUT).
fn fault_records() -> u64 {
    std::env::var("TRIBUTARY_FAULT_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30_000)
}
/// Records per second: each run streams for ~30 s, so records are still arriving during the
/// broker stop and the Cassandra outage (a sink as fast as ours would otherwise have written
/// a whole run before the fault, and the test would measure nothing).
fn fault_rate() -> u64 {
    std::env::var("TRIBUTARY_FAULT_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000)
}

struct RestartOnDrop(&'static [&'static str]);

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let mut args = vec!["start"];
        args.extend(self.0);
        stack_ctl(&args);
    }
}

async fn wait_written(sinks: &SinkPods, at_least: f64, what: &str) {
    wait_until(what, Duration::from_secs(300), || async {
        let written = sinks.metric("tributary_sink_records_written_total").await;
        if written >= at_least { Ok(()) } else { Err(format!("{written} written")) }
    })
    .await;
}

#[tokio::test]
async fn nothing_is_lost_when_a_broker_and_then_cassandra_stop_mid_stream() {
    let (records, rate) = (fault_records(), fault_rate());
    OperatorProcess::shared().await;
    let tenant = unique("flt");
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {tenant}\nspec: {{}}\n"
    ));
    let _tenant_cleanup = TenantCleanup::new(&tenant);
    wait_credentials(&tenant).await;
    // The water example's topic and sink, in this tenant's namespace.
    apply_water_example(&tenant, 2);
    let deployment = "tributary-sink-readings";
    // The example asks for two replicas: two pods on the node.
    let sinks = SinkPods::running(&tenant, deployment, 2).await;
    let keyspace = tenant.replace('-', "_");
    let topic = format!("{tenant}.data");
    let group = format!("{tenant}.sink.readings");
    secret(&tenant, "tributary-sink-readings").await;

    // 1. A broker stops while records flow; the sinks keep writing; it comes back.
    let first = unique("brk");
    let producing = {
        let (tenant, first) = (tenant.clone(), first.clone());
        tokio::spawn(async move { produce_paced(&tenant, "water", &first, records, rate, MALFORMED_EVERY).await })
    };
    wait_written(&sinks, records as f64 / 10.0, "10% written before the broker stops").await;
    {
        let _restart = RestartOnDrop(&["kafka-2"]);
        stack_ctl(&["stop", "kafka-2"]);
        let written = sinks.metric("tributary_sink_records_written_total").await;
        wait_written(&sinks, written + records as f64 / 10.0, "the sinks to keep writing with a broker down").await;
    }
    producing.await.unwrap();
    wait_drained(&topic, &group, records as i64).await;

    // 2. Cassandra stops for 30 s while records flow: writes fail, the sinks retry and stop
    // polling instead of failing records; when it is back they resume.
    let second = unique("cas");
    let producing = {
        let (tenant, second) = (tenant.clone(), second.clone());
        tokio::spawn(async move { produce_paced(&tenant, "water", &second, records, rate, MALFORMED_EVERY).await })
    };
    let before = sinks.metric("tributary_sink_records_written_total").await;
    wait_written(&sinks, before + records as f64 / 10.0, "10% of the second run written").await;
    let retries_before = sinks.metric("tributary_sink_write_retries_total").await;
    {
        let _restart = RestartOnDrop(&["cassandra"]);
        stack_ctl(&["stop", "cassandra"]);
        // The outage itself lasts 30 s (the fault being simulated, not a wait for a result).
        tokio::time::sleep(Duration::from_secs(30)).await;
        let retries = sinks.metric("tributary_sink_write_retries_total").await;
        assert!(retries > retries_before, "writes were retried while Cassandra was down");
        // (No good record is dead-lettered for it: each one is compared with Cassandra below.)
    }
    producing.await.unwrap();
    wait_drained(&topic, &group, 2 * records as i64).await;

    let session = cassandra().await;
    let mut delivered = 0;
    for run in [&first, &second] {
        let want = expected(Dataset::Water, run, records);
        let got = rows(&session, Dataset::Water, &keyspace, run).await;
        let missing: Vec<&String> = want.iter().filter(|r| got.binary_search(r).is_err()).take(3).collect();
        assert!(missing.is_empty(), "run {run}: missing e.g. {missing:?} of {}", want.len());
        assert_eq!((got.len(), checksum(&got)), (want.len(), checksum(&want)), "run {run}: count and checksum");
        delivered += got.len();
    }
    // Rows are keyed, so a record written twice is one row: writes beyond the rows are the
    // duplicates at-least-once delivery made (re-reads after a rebalance or a retried batch).
    // Counted once each in the status, through the broker stop and the Cassandra outage.
    wait_counted(&tenant, "readings", delivered as i64).await;
    let written = sinks.metric("tributary_sink_records_written_total").await as usize;
    let duplicates = written.saturating_sub(delivered);
    println!("delivered {delivered} rows, lost 0, {duplicates} duplicate writes");
    if let Ok(out) = std::env::var("TRIBUTARY_BENCH_OUT") {
        let line = serde_json::json!({"bench": "faults", "side": "tributary-sink", "rep": 0,
            "records": delivered, "seconds": 0.0, "lost": 0, "duplicates": duplicates,
            "duplicate_ratio": duplicates as f64 / delivered as f64,
            "note": format!("2 runs of {records} records at {rate}/s, 2 sink pods: a broker stopped, then Cassandra for 30 s")});
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(out).unwrap();
        writeln!(f, "{line}").unwrap();
    }
    assert_eq!(sinks.restarts().await, 0, "a sink container restarted: {}", sinks.logs().await);
    kubectl(&["delete", "cassandrasink", "readings", "-n", &tenant, "--timeout=120s"]);
}
