//! Rotation without downtime (issue 16, item 4) on the real node: a tenant with a sink of two
//! pods, a producer writing with the tenant's credentials, and a rotation requested through
//! `spec.credentials.rotationRequest` mid-stream.
//! - The Secret gets new passwords in the other slots (SCRAM-SHA-256, Cassandra `<role>.2`)
//!   and, while the previous ones wait, both the old and the new logins work, for Kafka and
//!   Cassandra alike.
//! - The sink's pods roll onto the new logins (its own Kafka user rotates too), then the
//!   previous logins go: the old Kafka and Cassandra passwords are refused, the new ones work,
//!   and the users hold only the new SCRAM credential.
//! - Across it all: the producer never fails, no sink pod ever sees a refused login or
//!   restarts, and every record produced before and after is in Cassandra.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use tributary::api::{CassandraSink, Tenant};
use tributary::external::kafka::{ClientSettings, ScramMechanism};
use tributary_sink::seed::Dataset;
use tributary_tests::KafkaWire;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{
    MALFORMED_EVERY, apply_water_example, cassandra, expected, produce, produce_paced, rows, secret, wait_credentials,
};
use tributary_tests::sink::{SinkPods, metric_in, pod_get};
use tributary_tests::{cassandra_session, kafka_admin_settings, kafka_user_settings, kubectl_apply, unique};
use tributary_tests::{wait_ready, wait_until};

const WAIT: Duration = Duration::from_secs(180);
const SINK: &str = "tributary-sink-readings";
const REFUSED_LOGINS: &str = "tributary_sink_kafka_authentication_failures_total";

/// Whether the brokers take `user`'s `password` with `mechanism` (a fresh login).
async fn kafka_login(user: &str, password: &str, mechanism: &str) -> Result<(), String> {
    let settings = ClientSettings { sasl_mechanism: mechanism.into(), ..kafka_user_settings(user, password) };
    KafkaWire::new(settings).login().await.map_err(|e| e.to_string())
}

async fn cassandra_login(user: &str, password: &str) -> Result<(), String> {
    cassandra_session(user, password).await.map(drop)
}

/// The SCRAM credentials `user` holds, as the admin sees them.
async fn scram_mechanisms(user: &str) -> Vec<ScramMechanism> {
    let admin = KafkaWire::new(kafka_admin_settings());
    admin.scram_mechanisms(user).await.unwrap().into_iter().collect()
}

#[tokio::test]
async fn a_rotation_keeps_the_producer_and_the_sinks_running_with_no_refused_login_and_no_record_lost() {
    OperatorProcess::shared().await;
    let client = Client::try_default().await.unwrap();
    let tenants: Api<Tenant> = Api::all(client.clone());
    let tenant = unique("rot");
    let keyspace = tenant.replace('-', "_");
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {tenant}\n\
         spec:\n  deletionPolicy: Delete\n  credentials: {{gracePeriodSeconds: 30}}\n"
    ));
    wait_ready(&tenants, &tenant, "True", "Provisioned").await;
    let old = wait_credentials(&tenant).await;
    assert_eq!(
        (old["kafka.sasl.mechanism"].as_str(), old["cassandra.username"].as_str()),
        ("SCRAM-SHA-512", &*keyspace)
    );
    apply_water_example(&tenant, 2);
    let sinks: Api<CassandraSink> = Api::namespaced(client.clone(), &tenant);
    wait_ready(&sinks, "readings", "True", "Running").await;
    let pods = Arc::new(SinkPods::running(&tenant, SINK, 2).await);
    let old_sink = secret(&tenant, SINK).await;
    let sink_user = old_sink["kafka.username"].clone();

    // Every sink pod's refused logins and restarts, watched until the end.
    let done = Arc::new(AtomicBool::new(false));
    let watch = {
        let (pods, done) = (pods.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen: BTreeMap<String, (f64, i32, bool)> = BTreeMap::new();
            while !done.load(Ordering::Relaxed) {
                for pod in pods.pods().await {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let restarts = pod.status.iter().flat_map(|s| s.container_statuses.iter().flatten());
                    let restarts = restarts.map(|c| c.restart_count).sum::<i32>();
                    // A pod that does not answer yet (starting) or any more (stopping) is
                    // counted by its restarts alone; one that answers must have the counter.
                    let entry = seen.entry(name).or_insert((0.0, 0, false));
                    if let Ok(text) = pod_get(&pod, "/metrics").await {
                        // A pod without the counter counts as failing (NaN never equals 0).
                        let failures = metric_in(&text, REFUSED_LOGINS).unwrap_or(f64::NAN);
                        entry.0 = if entry.0.is_nan() || failures.is_nan() { f64::NAN } else { entry.0.max(failures) };
                        entry.2 = true;
                    }
                    entry.1 = entry.1.max(restarts);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            seen
        })
    };

    // A producer with the tenant's credentials as they are now, running through the rotation.
    let (run, count) = (unique("rot"), 12_000);
    let producing = {
        let (tenant, run) = (tenant.clone(), run.clone());
        tokio::spawn(async move { produce_paced(&tenant, "water", &run, count, 600, MALFORMED_EVERY).await })
    };
    wait_until("the sink to write while the producer runs", WAIT, || async {
        let written = pods.metric("tributary_sink_records_written_total").await;
        if written >= 600.0 { Ok(()) } else { Err(format!("{written}")) }
    })
    .await;

    // The rotation, on request.
    let request =
        serde_json::json!({"spec": {"credentials": {"rotationRequest": "ticket-1", "gracePeriodSeconds": 30}}});
    tenants.patch(&tenant, &PatchParams::default(), &Patch::Merge(&request)).await.unwrap();
    let new = wait_until("new credentials in the Secret", WAIT, || async {
        let now = secret(&tenant, "tributary-credentials").await;
        if now["kafka.password"] != old["kafka.password"] { Ok(now) } else { Err("the old ones".to_string()) }
    })
    .await;
    assert_eq!(new["kafka.sasl.mechanism"], "SCRAM-SHA-256");
    assert_eq!(new["cassandra.username"], format!("{keyspace}.2"));
    assert!(new["librdkafka.properties"].contains("sasl.mechanism=SCRAM-SHA-256\n"));
    assert_ne!(new["cassandra.password"], old["cassandra.password"]);

    // While the previous credentials wait, both work.
    kafka_login(&tenant, &old["kafka.password"], "SCRAM-SHA-512").await.expect("the previous Kafka login");
    kafka_login(&tenant, &new["kafka.password"], "SCRAM-SHA-256").await.expect("the new Kafka login");
    cassandra_login(&keyspace, &old["cassandra.password"]).await.expect("the previous Cassandra login");
    cassandra_login(&new["cassandra.username"], &new["cassandra.password"]).await.expect("the new Cassandra login");
    let status = tenants.get(&tenant).await.unwrap().status.unwrap().credentials.unwrap();
    assert_eq!(status.rotation_request.as_deref(), Some("ticket-1"));
    assert!(status.previous.is_some(), "the status says the previous credentials still work");

    // The sink rolls onto new logins of its own, then the previous credentials go.
    let finished = wait_until("the previous credentials removed", WAIT, || async {
        let t = tenants.get(&tenant).await.map_err(|e| e.to_string())?;
        let credentials = t.status.and_then(|s| s.credentials).ok_or("no status.credentials")?;
        match credentials.previous {
            None => Ok(credentials),
            Some(waiting) => Err(format!("{waiting}; {}", pods.pod_summary().await)),
        }
    })
    .await;
    assert_eq!(finished.kafka_mechanism.as_deref(), Some("SCRAM-SHA-256"));
    pods.wait_rolled_out(2).await;
    let new_sink = secret(&tenant, SINK).await;
    assert_eq!(new_sink["kafka.sasl.mechanism"], "SCRAM-SHA-256", "the sink's own Kafka user rotated");
    assert_ne!(new_sink["kafka.password"], old_sink["kafka.password"]);
    wait_until("the previous SCRAM credentials deleted", WAIT, || async {
        let held = (scram_mechanisms(&tenant).await, scram_mechanisms(&sink_user).await);
        let only_new = vec![ScramMechanism::Sha256];
        if held == (only_new.clone(), only_new) { Ok(()) } else { Err(format!("{held:?}")) }
    })
    .await;
    let refused = kafka_login(&tenant, &old["kafka.password"], "SCRAM-SHA-512").await;
    assert!(refused.as_ref().is_err_and(|e| e.contains("SaslAuthenticate")), "{refused:?}");
    let refused = kafka_login(&sink_user, &old_sink["kafka.password"], "SCRAM-SHA-512").await;
    assert!(refused.as_ref().is_err_and(|e| e.contains("SaslAuthenticate")), "{refused:?}");
    // Cassandra caches logins for a few seconds (credentials_validity): wait for the refusal.
    wait_until("the previous Cassandra login refused", WAIT, || async {
        match cassandra_login(&keyspace, &old["cassandra.password"]).await {
            Err(e) if e.contains("not permitted to log in") || e.contains("uthentication") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    kafka_login(&tenant, &new["kafka.password"], "SCRAM-SHA-256").await.expect("the new Kafka login");
    cassandra_login(&new["cassandra.username"], &new["cassandra.password"]).await.expect("the new Cassandra login");

    // The producer never failed; records produced with the new bundle flow too; none is lost.
    producing.await.expect("the producer with the previous credentials ran to the end");
    let after = unique("rot-after");
    produce(&tenant, "water", &after, 1_000).await;
    let session = cassandra().await;
    for (run, count) in [(&run, count), (&after, 1_000)] {
        let want = expected(Dataset::Water, run, count);
        wait_until(&format!("all {count} records of {run} in Cassandra"), WAIT, || async {
            let got = rows(&session, Dataset::Water, &keyspace, run).await;
            if got == want { Ok(()) } else { Err(format!("{} of {} rows", got.len(), want.len())) }
        })
        .await;
    }
    done.store(true, Ordering::Relaxed);
    let seen = watch.await.unwrap();
    // (refused logins, restarts, answered): NaN would be a pod without the counter. The
    // watch saw the two pods from before the rollout and the two after it.
    assert!(seen.values().filter(|(_, _, answered)| *answered).count() >= 4, "{seen:?}");
    assert!(seen.values().all(|(failures, restarts, _)| *failures == 0.0 && *restarts == 0), "{seen:?}");

    tenants.delete(&tenant, &Default::default()).await.unwrap();
    wait_until("the Tenant deleted", WAIT, || async {
        match tenants.get_opt(&tenant).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;
}
