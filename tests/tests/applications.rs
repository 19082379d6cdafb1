//! Applications and sharing (issue 36) on the real stack, checked with independent clients
//! (librdkafka with the logins the operator put in the Secrets): a KafkaUser can do exactly
//! what it declares; another tenant's topic is read only through a TopicGrant, and refused
//! again once the grant is revoked; a grant for a topic its tenant does not own is refused;
//! a CassandraSink of the receiving tenant streams the shared topic into its own keyspace
//! and stops with the grant (scaled to zero, resumed by a new grant); a deleted KafkaUser's login
//! is refused; an application login rotates with its Tenant and goes with it.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams};
use rdkafka::types::RDKafkaErrorCode;
use tributary::api::{CassandraSink, KafkaUser, TopicGrant};
use tributary_tests::kafka::{consume, consumer, error_code, produce, producer};
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::secret;
use tributary_tests::{
    KafkaWire, cassandra_admin, cassandra_session, install_crds, kafka_user_settings, kubectl, kubectl_apply,
    ready_tenant, unique, wait_ready, wait_until,
};

const WAIT: Duration = Duration::from_secs(90);
/// One water reading, as the ingest application writes it.
const RECORD: &str = r#"{"station":"st1","ph":7.1}"#;

fn topic(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
         spec:\n  partitions: 1\n"
    )
}

async fn users(namespace: &str) -> Api<KafkaUser> {
    Api::namespaced(kube::Client::try_default().await.unwrap(), namespace)
}

async fn grants(namespace: &str) -> Api<TopicGrant> {
    Api::namespaced(kube::Client::try_default().await.unwrap(), namespace)
}

/// The settings of a KafkaUser's login, from the Secret the operator wrote.
async fn login_of(namespace: &str, user: &str) -> tributary::external::kafka::ClientSettings {
    let s = secret(namespace, &format!("kafka-user-{user}")).await;
    assert_eq!(s["kafka.sasl.mechanism"], "SCRAM-SHA-512");
    assert!(s["librdkafka.properties"].contains(&format!("sasl.username={}", s["kafka.username"])));
    kafka_user_settings(&s["kafka.username"], &s["kafka.password"])
}

/// Whether `settings` can read one record of `topic` in `group`; the refusal's code otherwise.
async fn read_one(
    settings: &tributary::external::kafka::ClientSettings,
    group: &str,
    topic: &str,
) -> Result<Vec<(String, String)>, Option<RDKafkaErrorCode>> {
    let c = consumer(settings, group);
    consume(&c, topic, 1, Duration::from_secs(15)).await.map_err(|e| error_code(&e))
}

/// The ph of `station` in the receiving tenant's table.
async fn ph_of(session: &scylla::client::session::Session, keyspace: &str, station: &str) -> Result<f64, String> {
    let query = format!("SELECT ph FROM {keyspace}.water_readings WHERE station = '{station}'");
    let rows = session
        .query_unpaged(query, &[])
        .await
        .map_err(|e| e.to_string())?
        .into_rows_result()
        .map_err(|e| e.to_string())?;
    rows.maybe_first_row::<(Option<f64>,)>()
        .map_err(|e| e.to_string())?
        .and_then(|(ph,)| ph)
        .ok_or("no row yet".to_string())
}

#[tokio::test]
async fn an_application_does_exactly_what_it_declares_and_reads_another_tenants_topic_only_through_a_grant() {
    OperatorProcess::shared().await;
    install_crds().await;
    let (water, bts) = (unique("water"), unique("bts"));
    let _water = ready_tenant(&water, "  kafka:\n    quotas:\n      producerByteRate: 1048576\n").await;
    let _bts = ready_tenant(&bts, "").await;
    kubectl_apply(&format!("{}---\n{}", topic(&water, "data"), topic(&water, "other")));

    // water's ingest application may write water.data, nothing else.
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaUser\nmetadata:\n  name: ingest\n  namespace: {water}\n\
         spec:\n  acls:\n  - resource: {{type: Topic, name: {water}.data}}\n    operations: [Write, Describe]\n"
    ));
    wait_ready(&users(&water).await, "ingest", "True", "Provisioned").await;
    let ingest = login_of(&water, "ingest").await;
    assert_eq!(ingest.username, format!("{water}.app.ingest"));
    let p = producer(&ingest);
    wait_until("ingest to write water.data", WAIT, || async {
        produce(&p, &format!("{water}.data"), "st1", RECORD).await.map_err(|e| e.to_string())
    })
    .await;
    let refused = produce(&p, &format!("{water}.other"), "st1", RECORD).await.expect_err("not declared");
    assert_eq!(error_code(&refused), Some(RDKafkaErrorCode::TopicAuthorizationFailed), "{refused}");
    let refused = read_one(&ingest, &format!("{water}.ingest"), &format!("{water}.data")).await;
    assert!(refused.is_err(), "ingest may only write: {refused:?}");
    // Its own quota: a quarter of the tenant's over its 20 possible KafkaUsers.
    wait_until("ingest's quota share", WAIT, || async {
        let admin = KafkaWire::new(tributary_tests::kafka_admin_settings());
        let quotas = admin.describe_user(&ingest.username).await.map_err(|e| e.to_string())?;
        if quotas.get("producer_byte_rate") == Some(&13_107.0) { Ok(()) } else { Err(format!("{quotas:?}")) }
    })
    .await;

    // bts's dashboard names water.data; without a grant it is NotGranted and refused.
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaUser\nmetadata:\n  name: dashboard\n  namespace: {bts}\n\
         spec:\n  acls:\n  - resource: {{type: Topic, name: {water}.data, tenant: {water}}}\n    operations: [Read, Describe]\n\
         \x20 - resource: {{type: Group, name: {bts}.dashboard, patternType: Prefixed}}\n    operations: [Read]\n"
    ));
    let message = wait_ready(&users(&bts).await, "dashboard", "False", "NotGranted").await;
    assert!(message.contains(&format!("no TopicGrant in namespace {water} grants tenant {bts}")), "{message}");
    let dashboard = login_of(&bts, "dashboard").await;
    let group = format!("{bts}.dashboard-{}", unique("g"));
    let refused = read_one(&dashboard, &group, &format!("{water}.data")).await;
    assert!(refused.is_err(), "no grant, no read: {refused:?}");

    // water grants bts Read on water.data: the dashboard reads it with its own login.
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: TopicGrant\nmetadata:\n  name: to-bts\n  namespace: {water}\n\
         spec:\n  tenant: {bts}\n  topic: {water}.data\n  access: Read\n"
    ));
    wait_ready(&users(&bts).await, "dashboard", "True", "Provisioned").await;
    wait_ready(&grants(&water).await, "to-bts", "True", "Provisioned").await;
    let records = wait_until("the dashboard to read water.data through the grant", WAIT, || async {
        read_one(&dashboard, &format!("{group}-{}", unique("r")), &format!("{water}.data"))
            .await
            .map_err(|e| format!("{e:?}"))
    })
    .await;
    assert_eq!(records, [("st1".to_string(), RECORD.to_string())]);
    // A bts sink streams water.data into bts's own keyspace, with its own user and group.
    let sinks: Api<CassandraSink> = Api::namespaced(kube::Client::try_default().await.unwrap(), &bts);
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: CassandraSink\nmetadata:\n  name: readings\n  namespace: {bts}\n\
         spec:\n  topic: {water}.data\n  topicTenant: {water}\n  table: water_readings\n  format: Json\n\
         \x20 columns: [{{name: station, type: text}}, {{name: ph, type: double}}]\n  partitionKey: [station]\n  replicas: 1\n"
    ));
    wait_ready(&sinks, "readings", "True", "Running").await;
    let (admin, password) = cassandra_admin();
    let session = cassandra_session(&admin, &password).await.unwrap();
    let keyspace = bts.replace('-', "_");
    let ph =
        wait_until("the shared reading in bts's table", WAIT, || async { ph_of(&session, &keyspace, "st1").await })
            .await;
    assert_eq!(ph, 7.1);
    let topics: Api<tributary::api::Topic> = Api::namespaced(kube::Client::try_default().await.unwrap(), &water);
    let shared_with = || async {
        let t = topics.get("data").await.map_err(|e| e.to_string())?;
        Ok::<_, String>(t.status.unwrap_or_default().shared_with)
    };
    wait_until("water's Topic to say who it is shared with", WAIT, || async {
        let with = shared_with().await?;
        if with == [format!("{bts} (Read)")] { Ok(()) } else { Err(format!("{with:?}")) }
    })
    .await;
    wait_until("the grant to list both readers", WAIT, || async {
        let readers =
            grants(&water).await.get("to-bts").await.map_err(|e| e.to_string())?.status.unwrap_or_default().readers;
        let want = [format!("KafkaUser {bts}/dashboard"), format!("CassandraSink {bts}/readings")];
        if want.iter().all(|w| readers.iter().any(|r| r.starts_with(w.as_str()))) {
            Ok(())
        } else {
            Err(format!("{readers:?}"))
        }
    })
    .await;
    // Read only: the dashboard cannot write water.data.
    let refused = produce(&producer(&dashboard), &format!("{water}.data"), "x", "y").await.expect_err("read only");
    assert_eq!(error_code(&refused), Some(RDKafkaErrorCode::TopicAuthorizationFailed), "{refused}");

    // A grant for a topic water does not own is refused, and gives nothing.
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: TopicGrant\nmetadata:\n  name: not-mine\n  namespace: {water}\n\
         spec:\n  tenant: {bts}\n  topic: {bts}.secrets\n  access: ReadWrite\n"
    ));
    let message = wait_ready(&grants(&water).await, "not-mine", "False", "InvalidSpec").await;
    assert!(message.contains("can grant only its own topics"), "{message}");

    // Revoked: the grant deleted, the dashboard and the sink are NotGranted, and refused again.
    grants(&water).await.delete("to-bts", &DeleteParams::default()).await.unwrap();
    wait_ready(&users(&bts).await, "dashboard", "False", "NotGranted").await;
    let message = wait_ready(&sinks, "readings", "False", "NotGranted").await;
    wait_until("water's Topic to be shared with nobody", WAIT, || async {
        let with = shared_with().await?;
        if with.is_empty() { Ok(()) } else { Err(format!("{with:?}")) }
    })
    .await;
    assert!(message.contains(&format!("is not shared with tenant {bts}")), "{message}");
    wait_until("the dashboard's read to be refused after the revocation", WAIT, || async {
        match read_one(&dashboard, &format!("{group}-{}", unique("r")), &format!("{water}.data")).await {
            Err(_) => Ok(()),
            Ok(records) => Err(format!("still reads {records:?}")),
        }
    })
    .await;
    // The revoked sink runs no pod, and its own login can no longer read the topic.
    let deployments: Api<Deployment> = Api::namespaced(kube::Client::try_default().await.unwrap(), &bts);
    wait_until("the revoked sink scaled to zero, its pods gone", WAIT, || async {
        let d = deployments.get("tributary-sink-readings").await.map_err(|e| e.to_string())?;
        let replicas = d.spec.and_then(|s| s.replicas);
        let pods = kubectl(&["get", "pods", "-n", &bts, "-l", "tributary.dev/sink=readings", "-o", "name"]);
        if replicas == Some(0) && pods.trim().is_empty() { Ok(()) } else { Err(format!("{replicas:?} {pods}")) }
    })
    .await;
    let sink_login = {
        let s = secret(&bts, "tributary-sink-readings").await;
        kafka_user_settings(&s["kafka.username"], &s["kafka.password"])
    };
    let group_of_sink = format!("{bts}.sink.readings");
    let refused = read_one(&sink_login, &group_of_sink, &format!("{water}.data")).await;
    assert!(refused.is_err(), "the revoked sink's user still reads the topic: {refused:?}");
    // Written while revoked: the sink takes it once granted again, from where it stopped.
    produce(&p, &format!("{water}.data"), "st2", r#"{"station":"st2","ph":6.4}"#).await.unwrap();
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: TopicGrant\nmetadata:\n  name: to-bts\n  namespace: {water}\n\
         spec:\n  tenant: {bts}\n  topic: {water}.data\n  access: Read\n"
    ));
    wait_ready(&sinks, "readings", "True", "Running").await;
    let ph = wait_until("the reading written while revoked in bts's table", WAIT, || async {
        ph_of(&session, &keyspace, "st2").await
    })
    .await;
    assert_eq!(ph, 6.4);

    // A deleted KafkaUser's login is refused; the other tenant's user is untouched.
    users(&water).await.delete("ingest", &DeleteParams::default()).await.unwrap();
    wait_until("ingest's login to be refused", WAIT, || async {
        match KafkaWire::new(ingest.clone()).login().await {
            Err(_) => Ok(()),
            Ok(()) => Err("still accepted".to_string()),
        }
    })
    .await;
    KafkaWire::new(dashboard.clone()).login().await.expect("the dashboard's login is its own");
}

/// A KafkaUser's login rotates with its Tenant's (both work during the grace period, then only
/// the new one), and a deleted Tenant takes its applications' users with it, leaving another
/// tenant's application untouched.
#[tokio::test]
async fn an_application_login_rotates_with_its_tenant_and_goes_with_it() {
    OperatorProcess::shared().await;
    install_crds().await;
    let (rotating, other) = (unique("approt"), unique("appkeep"));
    let rotating_guard = ready_tenant(&rotating, "  credentials: {gracePeriodSeconds: 5}\n").await;
    let _other = ready_tenant(&other, "").await;
    let app = |namespace: &str| {
        format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: KafkaUser\nmetadata:\n  name: app\n  namespace: {namespace}\n\
             spec:\n  acls:\n  - resource: {{type: Topic, name: {namespace}.data}}\n    operations: [Write]\n"
        )
    };
    kubectl_apply(&format!("{}---\n{}", app(&rotating), app(&other)));
    wait_ready(&users(&rotating).await, "app", "True", "Provisioned").await;
    wait_ready(&users(&other).await, "app", "True", "Provisioned").await;
    let before = secret(&rotating, "kafka-user-app").await;
    let login = |s: &std::collections::BTreeMap<String, String>| tributary::external::kafka::ClientSettings {
        sasl_mechanism: s["kafka.sasl.mechanism"].clone(),
        ..kafka_user_settings(&s["kafka.username"], &s["kafka.password"])
    };
    KafkaWire::new(login(&before)).login().await.expect("the application's first login");

    // The Tenant's rotation: the application's Secret gets a new password (the other SCRAM
    // mechanism); both work until the grace period is over, then only the new one.
    let tenants: Api<tributary::api::Tenant> = Api::all(kube::Client::try_default().await.unwrap());
    let request = serde_json::json!({"spec": {"credentials": {"rotationRequest": "app-1"}}});
    tenants.patch(&rotating, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&request)).await.unwrap();
    let after = wait_until("the application's Secret rotated", WAIT, || async {
        let now = secret(&rotating, "kafka-user-app").await;
        if now["kafka.password"] != before["kafka.password"] { Ok(now) } else { Err("the old password".to_string()) }
    })
    .await;
    assert_ne!(after["kafka.sasl.mechanism"], before["kafka.sasl.mechanism"], "{after:?}");
    wait_until("the new application login accepted", WAIT, || async {
        KafkaWire::new(login(&after)).login().await.map_err(|e| e.to_string())
    })
    .await;
    wait_until("the previous application login refused after the grace period", WAIT, || async {
        match KafkaWire::new(login(&before)).login().await {
            Err(_) => Ok(()),
            Ok(()) => Err("still accepted".to_string()),
        }
    })
    .await;
    KafkaWire::new(login(&after)).login().await.expect("the new login stays");

    // The Tenant deleted: its application's user is gone from Kafka; the other tenant's stays.
    let other_login = login(&secret(&other, "kafka-user-app").await);
    let app_user = after["kafka.username"].clone();
    drop(rotating_guard);
    let admin = KafkaWire::new(tributary_tests::kafka_admin_settings());
    let users_now = admin.scram_users().await.unwrap();
    assert!(!users_now.contains(&app_user), "{app_user} outlived its Tenant: {users_now:?}");
    assert!(users_now.contains(&other_login.username), "{users_now:?}");
    KafkaWire::new(other_login).login().await.expect("the other tenant's application is untouched");
}
