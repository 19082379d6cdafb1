//! No accidental tombstones: through a sink pod on the node, a record that lacks a field
//! leaves that column as it is in the table, and only an explicit JSON null erases it.
//! A record without its key is dead-lettered, and the CassandraSink's status shows what the
//! pod wrote, the dead letter and the error with its time, as the pod itself reports them;
//! the dead-letter topic keeps records for the retention the spec sets (a week by default).
//! Afterwards the idle pod answers its liveness and readiness probes with ok and why.

use std::time::Duration;

use kube::Api;
use tributary::api::CassandraSink;
use tributary::api::contract::{REPORT_PATH, SinkReport};
use tributary_tests::kafka::wait_config;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{apply_water_example, cassandra};
use tributary_tests::sink::{SinkPods, pod_get};
use tributary_tests::{kafka, kubectl, ready_tenant, tenant_kafka_settings, unique, wait_until};

/// (ph, turbidity, temperature, conductivity) of a water row.
type Readings = (Option<f64>, Option<f64>, Option<f64>, Option<i32>);

#[tokio::test]
async fn a_missing_field_leaves_the_column_and_only_an_explicit_null_erases_it() {
    OperatorProcess::shared().await;
    let tenant = unique("tomb");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    apply_water_example(&tenant, 1);
    let sinks = SinkPods::running(&tenant, "tributary-sink-readings", 1).await;

    let producer = kafka::producer(&tenant_kafka_settings(&tenant).await);
    let topic = format!("{tenant}.data");
    let session = cassandra().await;
    let keyspace = tenant.replace('-', "_");
    // (ph, turbidity, temperature, conductivity) of the one row, once it satisfies `want`.
    let row_becomes = |want: Readings, what: &'static str| {
        let (session, keyspace) = (&session, &keyspace);
        async move {
            wait_until(what, Duration::from_secs(120), || async {
                let rows = session
                    .query_unpaged(
                        format!(
                            "SELECT ph, turbidity, temperature, conductivity FROM {keyspace}.readings WHERE station = 'st1'"
                        ),
                        &[],
                    )
                    .await
                    .map_err(|e| e.to_string())?
                    .into_rows_result()
                    .map_err(|e| e.to_string())?;
                let got: Vec<Readings> =
                    rows.rows().map_err(|e| e.to_string())?.map(|r| r.unwrap()).collect();
                if got == vec![want] { Ok(()) } else { Err(format!("{got:?}")) }
            })
            .await
        }
    };
    let send = |value: &'static str| {
        let (producer, topic) = (&producer, &topic);
        async move { kafka::produce(producer, topic, "st1", value).await.unwrap() }
    };

    send(r#"{"station":"st1","ts":1767225600000,"reading":{"ph":7.1,"turbidity":3.2,"temperature":12.5},"conductivity":420}"#)
        .await;
    row_becomes((Some(7.1), Some(3.2), Some(12.5), Some(420)), "the full record's row").await;

    // Only ph: every other column keeps its value.
    send(r#"{"station":"st1","ts":1767225600000,"reading":{"ph":7.4}}"#).await;
    row_becomes((Some(7.4), Some(3.2), Some(12.5), Some(420)), "ph updated, the rest kept").await;

    // An explicit null erases that column, and only that one.
    send(r#"{"station":"st1","ts":1767225600000,"reading":{"ph":7.4,"turbidity":null}}"#).await;
    row_becomes((Some(7.4), None, Some(12.5), Some(420)), "turbidity erased by an explicit null").await;

    // No station (the partition key): dead-lettered, and reported.
    kafka::produce(&producer, &topic, "nokey", r#"{"ts":1767225600000,"reading":{"ph":1.0}}"#).await.unwrap();
    let api: Api<CassandraSink> = Api::namespaced(kube::Client::try_default().await.unwrap(), &tenant);
    let status =
        wait_until("the sink's status to show 3 rows written and 1 dead letter", Duration::from_secs(120), || async {
            let status = api.get("readings").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
            match (status.records_written, status.dead_letter_count) {
                (Some(3), Some(1)) if status.last_error.is_some() => Ok(status),
                _ => Err(format!("{status:?}")),
            }
        })
        .await;
    let error = status.last_error.unwrap();
    assert!(error.contains("dead-lettered") && error.contains("station"), "{error}");
    let time: k8s_openapi::jiff::Timestamp = status.last_error_time.expect("a time with the error").parse().unwrap();
    assert!(k8s_openapi::jiff::Timestamp::now().duration_since(time).as_secs() < 600, "{time}");
    // The same as the pod's own report.
    let pod = &sinks.pods().await[0];
    let report: SinkReport = serde_json::from_str(&pod_get(pod, REPORT_PATH).await.unwrap()).unwrap();
    assert_eq!((report.records_written, report.dead_lettered), (3, 1), "{report:?}");
    assert_eq!(report.last_error.map(|e| e.message), Some(error));

    assert_eq!(sinks.restarts().await, 0, "{}", sinks.logs().await);
    // Idle with nothing to do: alive and ready, and the probes say why.
    for pod in sinks.pods().await {
        for path in ["/healthz", "/readyz"] {
            let body = pod_get(&pod, path).await.unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(body.starts_with("ok: last activity") && body.contains("0 writes in flight"), "{path}: {body}");
        }
    }
    // Last, as a spec change rolls the pods: the dead-letter topic keeps records a week
    // unless the spec says otherwise.
    let dlq = format!("{tenant}.dlq.readings");
    wait_config(&dlq, "retention.ms", Some("604800000")).await;
    let patch = serde_json::json!({"spec": {"deadLetterRetentionHours": 2}});
    api.patch("readings", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    wait_config(&dlq, "retention.ms", Some("7200000")).await;
    kubectl(&["delete", "cassandrasink", "readings", "-n", &tenant, "--timeout=120s"]);
}
