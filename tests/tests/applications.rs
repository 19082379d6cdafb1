//! Applications and sharing (issue 36) on the real stack, checked with independent clients
//! (librdkafka with the logins the operator put in the Secrets): a KafkaUser can do exactly
//! what it declares; another tenant's topic is read only through a TopicGrant, and refused
//! again once the grant is revoked; a grant for a topic its tenant does not own is refused;
//! a CassandraSink of the receiving tenant streams the shared topic into its own keyspace
//! and stops being granted with the grant; a deleted KafkaUser's login is refused.

use std::time::Duration;

use kube::api::{Api, DeleteParams};
use rdkafka::types::RDKafkaErrorCode;
use tributary::api::{CassandraSink, KafkaUser, TopicGrant};
use tributary_tests::kafka::{consume, consumer, error_code, produce, producer};
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::secret;
use tributary_tests::{
    KafkaWire, cassandra_admin, cassandra_session, install_crds, kafka_user_settings, kubectl_apply, ready_tenant,
    unique, wait_ready, wait_until,
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
    let ph = wait_until("the shared reading in bts's table", WAIT, || async {
        let query = format!("SELECT ph FROM {keyspace}.water_readings WHERE station = 'st1'");
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
    })
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
