//! The seeds' pipeline end to end: the examples (water and bts, unchanged) applied, the
//! operator writes each sink's Deployment, the node runs its pods, `tributary-seed`
//! produces 100,000 records per tenant (one in a thousand malformed) with the tenant's own
//! credentials, and mid-stream one water sink container is killed with SIGKILL (the kubelet
//! restarts it) and the other water pod is force-deleted (its ReplicaSet replaces it). Then
//! every produced record is compared with Cassandra row by row, and every malformed one
//! must be in the dead-letter topic with its error headers.

use std::time::Duration;

use tributary_sink::seed::Dataset;
use tributary_tests::kafka::error_code;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{
    MALFORMED_EVERY, cassandra, checksum, dead_letters, expected, produce, records, rows, secret, wait_credentials,
    wait_drained,
};
use tributary_tests::sink::SinkPods;
use tributary_tests::{TenantCleanup, kubectl, repo_root, unique, wait_until};

#[tokio::test]
async fn the_seed_tenants_stream_every_record_into_their_tables_even_through_a_kill_9() {
    OperatorProcess::shared().await;
    let examples = repo_root().join("examples");
    let mut cleanups = Vec::new();
    for tenant in ["water", "bts"] {
        cleanups.extend(TenantCleanup::unless_present(tenant));
        kubectl(&["apply", "-f", examples.join(tenant).join("tenant.yaml").to_str().unwrap()]);
    }
    for tenant in ["water", "bts"] {
        wait_credentials(tenant).await;
        let dir = examples.join(tenant);
        kubectl(&[
            "apply",
            "-f",
            dir.join("topic.yaml").to_str().unwrap(),
            "-f",
            dir.join("sink.yaml").to_str().unwrap(),
        ]);
    }
    // The examples ask for two replicas per sink.
    let water = SinkPods::running("water", "tributary-sink-readings", 2).await;
    let bts = SinkPods::running("bts", "tributary-sink-alarms", 2).await;

    let count = records();
    let run = unique("e2e");
    let producing = {
        let run = run.clone();
        tokio::spawn(async move {
            futures::future::join(produce("water", "water", &run, count), produce("bts", "bts", &run, count)).await
        })
    };

    // Mid-stream, one water sink container dies without any chance to commit (the kubelet
    // restarts it), and the other water pod is force-deleted (a new pod takes its place).
    wait_until("the water sinks to have written 10% of the records", Duration::from_secs(300), || async {
        let written = water.metric("tributary_sink_records_written_total").await;
        if written >= count as f64 / 10.0 { Ok(()) } else { Err(format!("{written}")) }
    })
    .await;
    let pods = water.pods().await;
    let restarts = water.restarts().await;
    water.kill_container(&pods[0]).await;
    water.force_delete(&pods[1]).await;
    wait_until("the killed water sink container to be restarted", Duration::from_secs(120), || async {
        let now = water.restarts().await;
        if now > restarts { Ok(()) } else { Err(format!("restarts {now}; {}", water.pod_summary().await)) }
    })
    .await;
    water.wait_rolled_out(2).await;
    let replaced = water.pods().await;
    assert!(
        !replaced.iter().any(|p| p.metadata.uid == pods[1].metadata.uid),
        "the force-deleted pod was replaced by a new one"
    );
    producing.await.unwrap();

    let per_tenant = count as i64;
    wait_drained("water.data", "water.sink.readings", per_tenant).await;
    wait_drained("bts.data", "bts.sink.alarms", per_tenant).await;

    let session = cassandra().await;
    for (dataset, name) in [(Dataset::Water, "water"), (Dataset::Bts, "bts")] {
        let want = expected(dataset, &run, count);
        let got = rows(&session, dataset, name, &run).await;
        let missing: Vec<&String> = want.iter().filter(|r| got.binary_search(r).is_err()).take(3).collect();
        let extra: Vec<&String> = got.iter().filter(|r| want.binary_search(r).is_err()).take(3).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{name}: missing e.g. {missing:?}, unexpected e.g. {extra:?}");
        assert_eq!((got.len(), checksum(&got)), (want.len(), checksum(&want)), "{name}: count and checksum");

        let malformed = (count / MALFORMED_EVERY) as usize;
        let letters = dead_letters(
            &format!("{name}.dlq.{}", if name == "water" { "readings" } else { "alarms" }),
            &run,
            malformed,
        )
        .await;
        assert_eq!(letters.len(), malformed, "{name}: every malformed record is in the dead-letter topic");
        // The CassandraSink's status reads the same from Kafka: no lag, the dead letters counted.
        let sinks: kube::Api<tributary::api::CassandraSink> =
            kube::Api::namespaced(kube::Client::try_default().await.unwrap(), name);
        let sink_name = if name == "water" { "readings" } else { "alarms" };
        wait_until(
            &format!("{name}/{sink_name} status: lag 0 and the dead letters counted"),
            Duration::from_secs(90),
            || async {
                let status = sinks.get(sink_name).await.map_err(|e| e.to_string())?.status.unwrap_or_default();
                let counted = status.dead_letter_count.unwrap_or(0) >= malformed as i64;
                if status.lag == Some(0) && counted && status.consumer_group.is_some() {
                    Ok(())
                } else {
                    Err(format!("lag {:?}, dead letters {:?}", status.lag, status.dead_letter_count))
                }
            },
        )
        .await;
        for (key, letter) in &letters {
            assert_eq!(letter.topic, format!("{name}.data"), "{key}");
            let error = &letter.error;
            assert!(error.starts_with("not JSON") || error.starts_with("column "), "{key}: {error}");
        }
    }

    // Rows of one partition went to Cassandra together: more rows than writes.
    let (mut rows_written, mut writes) = (0.0, 0.0);
    for sinks in [&water, &bts] {
        rows_written += sinks.metric("tributary_sink_batch_rows_sum").await;
        writes += sinks.metric("tributary_sink_batch_rows_count").await;
    }
    assert!(rows_written > writes && writes > 0.0, "{rows_written} rows in {writes} writes");
    // Nothing crashed beyond the one container killed on purpose.
    assert_eq!(bts.restarts().await, 0, "bts sinks restarted: {}", bts.logs().await);
    assert_eq!(water.restarts().await, 1, "water sinks: {}", water.logs().await);

    // A sink's credentials are good for its own topic only (the probe joins the water sink's
    // own group, which its ACLs allow, and asks for bts.data).
    let water_sink = secret("water", "tributary-sink-readings").await;
    let settings = tributary_tests::kafka_user_settings(&water_sink["kafka.username"], &water_sink["kafka.password"]);
    let thief = tributary_tests::kafka::consumer(&settings, "water.sink.readings");
    let err = tributary_tests::kafka::consume(&thief, "bts.data", 1, Duration::from_secs(30))
        .await
        .expect_err("bts.data is not the water sink's");
    assert_eq!(error_code(&err), Some(rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed), "{err}");
}
