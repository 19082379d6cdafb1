//! What each tenant uses (issue 38), on the real stack, checked against readers independent
//! of the operator: the water example under a fresh name streams records; the operator's
//! metrics (label `tenant`) then say exactly what Kafka's own Admin client reads from the
//! brokers' log dirs (bytes of every replica, partitions, topics), what Cassandra's
//! `system_views.disk_usage` says of the keyspace, and the sink's `recordsWritten`; the
//! Tenant's `status.usage` holds the same figures within the documented 5% step, and
//! `kubectl get tenants` shows them; a deleted Tenant's series go.

use std::time::Duration;

use kube::api::Api;
use tributary::api::{CassandraSink, Tenant};
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{apply_water_example_ready, produce, wait_credentials};
use tributary_tests::sink::metric_in;
use tributary_tests::{TenantCleanup, cassandra_admin, cassandra_session, kubectl, run, unique, wait_until};

const WAIT: Duration = Duration::from_secs(120);

/// `(bytes, partitions, topics)` under `prefix`, as Kafka's Admin client reads the log dirs.
fn log_dirs(prefix: &str) -> (i64, i64, i64) {
    let stack = std::env::var("TRIBUTARY_STACK").expect("TRIBUTARY_STACK (eval \"$(make -s stack-env)\")");
    let out = run(&stack, &["log-dirs", prefix], None);
    let figures: Vec<i64> = out.split_whitespace().map(|f| f.parse().unwrap()).collect();
    (figures[0], figures[1], figures[2])
}

/// Whether `a` is within the usage step (5%) of `b`.
fn within_step(a: i64, b: i64) -> bool {
    (a - b).abs() * 100 <= b.abs() * 5
}

#[tokio::test]
async fn a_tenants_usage_matches_what_kafka_and_cassandra_say_in_metrics_status_and_kubectl() {
    let operator = OperatorProcess::shared().await;
    let tenant = unique("use");
    let guard = TenantCleanup::new(&tenant);
    apply_water_example_ready(&tenant);
    wait_credentials(&tenant).await;
    let count = 3_000;
    produce(&tenant, "water", &unique("u"), count).await;
    let sinks: Api<CassandraSink> = Api::namespaced(kube::Client::try_default().await.unwrap(), &tenant);
    // Every record written or dead-lettered (one in a thousand is malformed).
    let written = wait_until("the sink to have written the records", WAIT, || async {
        let s = sinks.get("readings").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        match (s.records_written, s.lag) {
            (Some(w), Some(0)) if w + s.dead_letter_count.unwrap_or(0) >= count as i64 => Ok(w),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // The metrics: exactly what Kafka's and Cassandra's own readers say, once traffic stopped.
    let series = |text: &str, name: &str| metric_in(text, &format!("{name}{{tenant=\"{tenant}\"}}"));
    let (admin, password) = cassandra_admin();
    let session = cassandra_session(&admin, &password).await.unwrap();
    let keyspace = tenant.replace('-', "_");
    let cassandra_bytes = || async {
        let rows = session
            .query_unpaged("SELECT keyspace_name, mebibytes FROM system_views.disk_usage", &[])
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?;
        let rows = rows.rows::<(String, Option<i64>)>().map_err(|e| e.to_string())?;
        let mut bytes = 0;
        for row in rows {
            let (name, mebibytes) = row.map_err(|e| e.to_string())?;
            if name == keyspace {
                bytes += mebibytes.unwrap_or(0) << 20;
            }
        }
        Ok::<i64, String>(bytes)
    };
    let prefix = format!("{tenant}.");
    let measured = wait_until("the usage metrics to match Kafka's and Cassandra's own figures", WAIT, || async {
        let text = operator.get("/metrics").await?;
        let got = [
            "tributary_tenant_kafka_bytes",
            "tributary_tenant_partitions",
            "tributary_tenant_topics",
            "tributary_tenant_cassandra_bytes",
            "tributary_tenant_sink_records_written",
            "tributary_tenant_sink_lag",
        ]
        .map(|name| series(&text, name).map(|v| v as i64));
        let (bytes, partitions, topics) = log_dirs(&prefix);
        let want =
            [Some(bytes), Some(partitions), Some(topics), Some(cassandra_bytes().await?), Some(written), Some(0)];
        if got == want { Ok(got.map(Option::unwrap)) } else { Err(format!("metrics {got:?}, readers {want:?}")) }
    })
    .await;
    let [kafka_bytes, partitions, topics, cassandra, records, _] = measured;
    // The topic (3 partitions) and the sink's dead-letter topic, three replicas each.
    assert_eq!((topics, partitions), (2, 6), "{measured:?}");
    assert!(kafka_bytes > 0, "{measured:?}");

    // The status: the same figures, within the step it is rewritten by.
    let tenants: Api<Tenant> = Api::all(kube::Client::try_default().await.unwrap());
    let usage = wait_until("status.usage within the step of the measured figures", WAIT, || async {
        let t = tenants.get(&tenant).await.map_err(|e| e.to_string())?;
        let u = t.status.and_then(|s| s.usage).ok_or("no status.usage yet")?;
        let close = u.topics == topics
            && u.partitions == partitions
            && within_step(u.kafka_bytes, kafka_bytes)
            && within_step(u.cassandra_bytes, cassandra)
            && within_step(u.sink_records_written, records);
        if close { Ok(u) } else { Err(format!("{u:?} vs {measured:?}")) }
    })
    .await;
    assert!(usage.updated_at.is_some(), "{usage:?}");
    // kubectl shows the usage columns.
    let table = kubectl(&["get", "tenant", &tenant]);
    assert!(table.contains("KAFKA BYTES") && table.contains("CASSANDRA BYTES"), "{table}");
    assert!(table.contains(&usage.kafka_bytes.to_string()), "{table}");

    // Deleted: the tenant's series go.
    drop(guard);
    wait_until("the deleted tenant's usage series to go", WAIT, || async {
        let text = operator.get("/metrics").await?;
        match series(&text, "tributary_tenant_topics") {
            None => Ok(()),
            Some(v) => Err(format!("still {v}")),
        }
    })
    .await;
}
