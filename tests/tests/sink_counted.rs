//! A sink's `status.recordsWritten` counts every record once even when a pod is killed
//! between two reports: two sink pods stream 9,000 records (one in a thousand malformed, so
//! dead-lettered and not counted) that `tributary-seed` produces at 250 a second; mid-stream,
//! after the operator counted some of its writes, one pod's sink process is killed with
//! SIGKILL (no drain, no last commit: the records since its last commit are read and written
//! again by the next owner) and the pod force-deleted (grace period 0: the operator never
//! reads it again), and the status ends at exactly the records written, which is what the
//! table holds. Before the counts travelled with the committed offsets, a run with a
//! force-deleted pod counted 7,464 of 9,000.

use std::time::Duration;

use kube::Api;
use tributary::api::CassandraSink;
use tributary_sink::seed::Dataset;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{
    MALFORMED_EVERY, apply_water_example, cassandra, checksum, expected, produce_paced, rows, wait_credentials,
    wait_drained,
};
use tributary_tests::sink::{SinkPods, pod_name, wait_counted};
use tributary_tests::{TenantCleanup, kubectl, kubectl_apply, unique, wait_until};

const RECORDS: u64 = 9_000;
/// Records per second: the stream lasts 36 s, so the pod dies with records still flowing.
const RATE: u64 = 250;

#[tokio::test]
async fn records_written_holds_every_record_once_through_a_force_deleted_pod() {
    OperatorProcess::shared().await;
    let tenant = unique("cnt");
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {tenant}\nspec: {{}}\n"
    ));
    let _tenant_cleanup = TenantCleanup::new(&tenant);
    wait_credentials(&tenant).await;
    apply_water_example(&tenant, 2);
    let pods = SinkPods::running(&tenant, "tributary-sink-readings", 2).await;
    let sinks: Api<CassandraSink> = Api::namespaced(kube::Client::try_default().await.unwrap(), &tenant);
    let status =
        || async { sinks.get("readings").await.map_err(|e| e.to_string()).map(|s| s.status.unwrap_or_default()) };

    let run = unique("cnt");
    let producing = {
        let (tenant, run) = (tenant.clone(), run.clone());
        tokio::spawn(async move { produce_paced(&tenant, "water", &run, RECORDS, RATE, MALFORMED_EVERY).await })
    };

    // Mid-stream, once both pods have written and the operator has counted some of it: the
    // pod with the most records written goes at once, with what it wrote since its last
    // report and since its last commit.
    let started = std::time::Instant::now();
    wait_until(
        "both pods to have written a quarter of the records, and an eighth to be counted",
        Duration::from_secs(120),
        || async {
            let counted = status().await?.records_written.unwrap_or(0);
            let mut written = Vec::new();
            for pod in pods.pods().await {
                written.push(tributary_tests::sink::pod_metric(&pod, "tributary_sink_records_written_total").await?);
            }
            let enough = written.iter().sum::<f64>() >= RECORDS as f64 / 4.0;
            if counted >= RECORDS as i64 / 8 && written.len() == 2 && written.iter().all(|w| *w > 0.0) && enough {
                Ok(())
            } else {
                Err(format!("{counted} counted, pods wrote {written:?}"))
            }
        },
    )
    .await;
    let mut running = Vec::new();
    for pod in pods.pods().await {
        let written = tributary_tests::sink::pod_metric(&pod, "tributary_sink_records_written_total").await.unwrap();
        running.push((written, pod));
    }
    running.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (killed_written, killed) = running.pop().expect("two pods");
    let counted_at_kill = status().await.unwrap().records_written.unwrap_or(0);
    let good = expected(Dataset::Water, &run, RECORDS);
    let written_at_kill = running.iter().map(|(w, _)| w).sum::<f64>() + killed_written;
    assert!(written_at_kill < good.len() as f64, "the pod is killed with records still to write: {written_at_kill}");
    pods.kill_container(&killed).await;
    pods.force_delete(&killed).await;
    println!(
        "{:.1} s into the stream, killed and force-deleted {} after it wrote {killed_written} records (the pods {written_at_kill}); \
         {counted_at_kill} counted then",
        started.elapsed().as_secs_f64(),
        pod_name(&killed),
    );
    producing.await.unwrap();
    pods.wait_rolled_out(2).await;

    let written = good.len() as i64;
    wait_drained(&format!("{tenant}.data"), &format!("{tenant}.sink.readings"), RECORDS as i64).await;
    let done = wait_counted(&tenant, "readings", written).await;

    let got = rows(&cassandra().await, Dataset::Water, &tenant.replace('-', "_"), &run).await;
    assert_eq!((got.len(), checksum(&got)), (good.len(), checksum(&good)), "the table holds every good record once");
    let partitions: Vec<(i32, i64)> =
        done.partitions_counted.iter().map(|c| (c.partition, c.records_written)).collect();
    assert_eq!(partitions.len(), 3, "one count per partition of the topic: {partitions:?}");
    let own = pods.metric("tributary_sink_records_written_total").await;
    println!(
        "produced {RECORDS} ({} malformed, dead-lettered); rows in the table {}; status.recordsWritten {:?}; \
         partitionsCounted {partitions:?}; the pods' own counters: {own} (running) + {killed_written} (killed), \
         about {} records written twice (read again after the kill)",
        RECORDS as usize - good.len(),
        got.len(),
        done.records_written,
        (own + killed_written) as i64 - written,
    );
    kubectl(&["delete", "cassandrasink", "readings", "-n", &tenant, "--timeout=120s"]);
}
