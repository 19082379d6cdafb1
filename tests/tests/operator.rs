//! The operator against the real stack: objects applied as YAML the way a user would, and
//! assertions on what it writes to Kubernetes and Kafka.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;
use kube::{Client, ResourceExt};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use tributary::api::conditions::{READY, status_of};
use tributary::api::{CassandraSink, Tenant, Topic};
use tributary_tests::kafka::topic_layout;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::{
    NamespaceCleanup, TenantCleanup, kafka_admin, kubectl, ready_tenant, unique, wait_ready, wait_until,
};

const WAIT: Duration = Duration::from_secs(60);

fn apply(yaml: &str) {
    tributary_tests::kubectl_apply(yaml);
}

async fn client() -> Client {
    Client::try_default().await.expect("kube client")
}

async fn tenants() -> Api<Tenant> {
    Api::all(client().await)
}

async fn topics(ns: &str) -> Api<Topic> {
    Api::namespaced(client().await, ns)
}

fn topic_yaml(ns: &str, name: &str, partitions: i32) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  partitions: {partitions}\n  replicationFactor: 3\n"
    )
}

#[tokio::test]
async fn a_tenant_gets_its_namespace_and_credentials_secret_owned_by_it() {
    OperatorProcess::shared().await;
    let name = unique("tn");
    let _name_cleanup = ready_tenant(&name, "").await;
    let message = wait_ready(&tenants().await, &name, "True", "Provisioned").await;
    assert_eq!(message, "0 topics and 0 sinks ready");

    let client = client().await;
    let tenant = Api::<Tenant>::all(client.clone()).get(&name).await.unwrap();
    let uid = tenant.uid().unwrap();
    let status = tenant.status.clone().unwrap();
    assert_eq!(status.namespace.as_deref(), Some(name.as_str()));
    assert_eq!((status.topics.as_deref(), status.sinks.as_deref()), (Some("0/0"), Some("0/0")));
    assert_eq!(status.observed_generation, tenant.metadata.generation);

    let ns = Api::<Namespace>::all(client.clone()).get(&name).await.expect("tenant namespace");
    assert_eq!(ns.labels().get("tributary.dev/tenant"), Some(&name));
    assert_eq!(ns.owner_references().iter().map(|o| o.uid.as_str()).collect::<Vec<_>>(), [uid.as_str()]);

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &name);
    let secret = secrets.get("tributary-credentials").await.expect("credentials Secret");
    assert_eq!(secret.owner_references()[0].uid, uid);
    let data = secret.data.clone().unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(text("kafka.username"), name);
    assert_eq!(text("kafka.topic.prefix"), format!("{name}."));
    assert_eq!(text("kafka.bootstrap.servers"), std::env::var("KAFKA_BOOTSTRAP").unwrap());
    assert_eq!(text("cassandra.keyspace"), name.replace('-', "_"));
    let password = text("kafka.password");
    assert_eq!(password.len(), 32);
    assert!(text("librdkafka.properties").contains(&format!("sasl.password={password}\n")));

    // A spec change is reconciled (observedGeneration follows) and keeps the passwords.
    let _reapplied = ready_tenant(&name, "  kafka:\n    limits:\n      maxPartitions: 30\n").await;
    let generation = Api::<Tenant>::all(client.clone()).get(&name).await.unwrap().metadata.generation;
    wait_until("observedGeneration to follow the spec change", WAIT, || async {
        let t = Api::<Tenant>::all(client.clone()).get(&name).await.map_err(|e| e.to_string())?;
        let observed = t.status.and_then(|s| s.observed_generation);
        if observed == generation { Ok(()) } else { Err(format!("{observed:?} != {generation:?}")) }
    })
    .await;
    let again = secrets.get("tributary-credentials").await.unwrap();
    assert_eq!(again.data.unwrap()["kafka.password"].0, password.as_bytes(), "the password is kept");

    let row = kubectl(&["get", "tenant", &name, "--no-headers"]);
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&columns[..5], [name.as_str(), "True", "0/0", "0/0", "0/30"].as_slice(), "{row}");
}

#[tokio::test]
async fn a_topic_is_created_in_kafka_under_the_tenant_prefix_and_grows() {
    OperatorProcess::shared().await;
    let tenant = unique("tk");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    apply(&topic_yaml(&tenant, "events", 3));
    let message = wait_ready(&topics(&tenant).await, "events", "True", "Provisioned").await;
    let kafka_name = format!("{tenant}.events");
    assert_eq!(message, format!("{kafka_name}: 3 partitions, replication factor 3"));

    let admin = kafka_admin();
    let layout = topic_layout(&admin, &kafka_name).expect("the topic exists in Kafka");
    assert_eq!(layout.len(), 3);
    assert!(layout.iter().all(|p| p.replicas.len() == 3), "{layout:?}");

    let topic = Api::<Topic>::namespaced(client().await, &tenant).get("events").await.unwrap();
    let status = topic.status.unwrap();
    assert_eq!(
        (status.kafka_name.as_deref(), status.tenant.as_deref()),
        (Some(kafka_name.as_str()), Some(tenant.as_str()))
    );

    // The tenant's roll-up counts the topic and its partitions.
    wait_until("the tenant to count 1/1 topics and 3 partitions", WAIT, || async {
        let t = Api::<Tenant>::all(client().await).get(&tenant).await.map_err(|e| e.to_string())?;
        let s = t.status.unwrap_or_default();
        if s.topics.as_deref() == Some("1/1") && s.partitions.as_deref() == Some("3/-") {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;

    apply(&topic_yaml(&tenant, "events", 6));
    wait_until("Kafka to have 6 partitions", WAIT, || async {
        let n = topic_layout(&admin, &kafka_name)?.len();
        if n == 6 { Ok(()) } else { Err(format!("{n} partitions")) }
    })
    .await;
    wait_until("the Topic status to report 6 partitions for the new generation", WAIT, || async {
        let t = Api::<Topic>::namespaced(client().await, &tenant).get("events").await.map_err(|e| e.to_string())?;
        let s = t.status.clone().unwrap_or_default();
        let current = s.observed_generation == t.metadata.generation && s.partitions == Some(6);
        if current && status_of(&s.conditions, READY) == Some("True") { Ok(()) } else { Err(format!("{s:?}")) }
    })
    .await;
}

#[tokio::test]
async fn a_topic_outside_any_tenant_is_refused_and_nothing_reaches_kafka() {
    OperatorProcess::shared().await;
    let ns = unique("orphan");
    kubectl(&["create", "namespace", &ns]);
    let _namespace_cleanup = NamespaceCleanup(ns.clone());
    apply(&topic_yaml(&ns, "lost", 3));
    let message = wait_ready(&topics(&ns).await, "lost", "False", "NoTenant").await;
    assert!(message.contains(&format!("namespace {ns} belongs to no Tenant")), "{message}");
    let err = topic_layout(&kafka_admin(), &format!("{ns}.lost")).expect_err("no topic in Kafka");
    assert!(err.contains("UNKNOWN_TOPIC"), "{err}");
}

#[tokio::test]
async fn guardrails_refuse_a_topic_beyond_the_tenant_limits() {
    OperatorProcess::shared().await;
    let tenant = unique("tg");
    let _tenant_cleanup = ready_tenant(&tenant, "  kafka:\n    limits:\n      maxTopics: 1\n").await;
    apply(&topic_yaml(&tenant, "first", 3));
    wait_ready(&topics(&tenant).await, "first", "True", "Provisioned").await;
    apply(&topic_yaml(&tenant, "second", 3));
    let message = wait_ready(&topics(&tenant).await, "second", "False", "GuardrailViolated").await;
    assert!(message.contains("may have 1 topics and already has 1"), "{message}");
    let err = topic_layout(&kafka_admin(), &format!("{tenant}.second")).expect_err("nothing created in Kafka");
    assert!(err.contains("UNKNOWN_TOPIC"), "{err}");
    let message = wait_ready(&tenants().await, &tenant, "False", "ChildrenNotReady").await;
    assert!(message.contains("Topic second"), "{message}");
}

#[tokio::test]
async fn an_existing_kafka_topic_of_another_shape_is_not_adopted() {
    OperatorProcess::shared().await;
    let tenant = unique("ta");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let admin = kafka_admin();
    let kafka_name = format!("{tenant}.legacy");
    admin
        .create_topics(&[NewTopic::new(&kafka_name, 1, TopicReplication::Fixed(3))], &AdminOptions::new())
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    apply(&topic_yaml(&tenant, "legacy", 3));
    let message = wait_ready(&topics(&tenant).await, "legacy", "False", "AdoptionRefused").await;
    assert!(message.contains("partitions: Kafka has 1, spec asks 3"), "{message}");
    assert_eq!(topic_layout(&admin, &kafka_name).unwrap().len(), 1, "the existing topic was left untouched");

    // A Topic whose shape matches the existing topic adopts it. (partitions cannot be lowered
    // on the object, so the Topic is replaced.)
    kubectl(&["delete", "topic", "legacy", "-n", &tenant, "--wait=true"]);
    apply(&topic_yaml(&tenant, "legacy", 1));
    let message = wait_ready(&topics(&tenant).await, "legacy", "True", "Provisioned").await;
    assert_eq!(message, format!("{kafka_name}: 1 partitions, replication factor 3"));
    assert_eq!(topic_layout(&admin, &kafka_name).unwrap().len(), 1);
}

#[tokio::test]
async fn a_sink_reports_a_missing_topic_and_counts_in_its_tenant() {
    OperatorProcess::shared().await;
    let tenant = unique("ts");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: CassandraSink\nmetadata:\n  name: readings\n  namespace: {tenant}\n\
         spec:\n  topic: nowhere\n  table: readings\n  columns:\n  - {{name: station, type: text}}\n  partitionKey: [station]\n"
    ));
    let sinks: Api<CassandraSink> = Api::namespaced(client().await, &tenant);
    let message = wait_ready(&sinks, "readings", "False", "TopicNotFound").await;
    assert!(message.contains("Topic nowhere does not exist"), "{message}");
    wait_until("the tenant to count the sink as 0/1", WAIT, || async {
        let t = Api::<Tenant>::all(client().await).get(&tenant).await.map_err(|e| e.to_string())?;
        let s = t.status.unwrap_or_default();
        let ready = status_of(&s.conditions, READY).map(str::to_string);
        if s.sinks.as_deref() == Some("0/1") && ready.as_deref() == Some("False") {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn the_examples_apply_unchanged_and_become_ready() {
    OperatorProcess::shared().await;
    let examples = tributary_tests::repo_root().join("examples");
    let mut cleanups = Vec::new();
    for tenant in ["water", "bts"] {
        let dir = examples.join(tenant);
        cleanups.extend(TenantCleanup::unless_present(tenant));
        kubectl(&["apply", "-f", dir.join("tenant.yaml").to_str().unwrap()]);
        wait_ready(&tenants().await, tenant, "True", "Provisioned").await;
        kubectl(&["apply", "-f", dir.join("topic.yaml").to_str().unwrap()]);
        let message = wait_ready(&topics(tenant).await, "data", "True", "Provisioned").await;
        assert_eq!(message, format!("{tenant}.data: 3 partitions, replication factor 3"));
    }
    // The README's sharing walkthrough: water's ingest login, its grant to bts, and bts's
    // dashboard reading water.data through it.
    let client = kube::Client::try_default().await.unwrap();
    for (tenant, file) in [("water", "app-ingest.yaml"), ("water", "grant-bts.yaml"), ("bts", "app-dashboard.yaml")] {
        kubectl(&["apply", "-f", examples.join(tenant).join(file).to_str().unwrap()]);
    }
    let users = |ns: &str| kube::Api::<tributary::api::KafkaUser>::namespaced(client.clone(), ns);
    wait_ready(&users("water"), "ingest", "True", "Provisioned").await;
    let message = wait_ready(&users("bts"), "dashboard", "True", "Provisioned").await;
    assert!(message.contains("Kafka user bts.app.dashboard with 3 ACL entries"), "{message}");
    let grants = kube::Api::<tributary::api::TopicGrant>::namespaced(client.clone(), "water");
    wait_ready(&grants, "to-bts", "True", "Provisioned").await;
    for (tenant, file) in [("bts", "app-dashboard.yaml"), ("water", "grant-bts.yaml"), ("water", "app-ingest.yaml")] {
        kubectl(&["delete", "-f", examples.join(tenant).join(file).to_str().unwrap(), "--wait=true"]);
    }
}

#[tokio::test]
async fn a_topic_deleted_in_kafka_is_recreated_and_an_event_says_so() {
    OperatorProcess::shared().await;
    let tenant = unique("tr");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    apply(&topic_yaml(&tenant, "events", 3));
    wait_ready(&topics(&tenant).await, "events", "True", "Provisioned").await;
    let admin = kafka_admin();
    let kafka_name = format!("{tenant}.events");
    tributary_tests::kafka::delete_topic(&admin, &kafka_name).await;

    // The next resync (10 s in tests) finds it missing and creates it again.
    wait_until("the topic to exist again with 3 partitions", WAIT, || async {
        let n = topic_layout(&admin, &kafka_name)?.len();
        if n == 3 { Ok(()) } else { Err(format!("{n} partitions")) }
    })
    .await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client().await, &tenant);
    let note = wait_until("a Recreated event on the Topic", WAIT, || async {
        let list = events.list(&Default::default()).await.map_err(|e| e.to_string())?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Recreated"))
            .and_then(|e| e.note)
            .ok_or_else(|| "no event yet".to_string())
    })
    .await;
    assert!(note.contains(&format!("Kafka topic {kafka_name} was deleted outside Kubernetes")), "{note}");
}

#[tokio::test]
async fn a_config_value_kafka_refuses_is_reported_as_kafka_rejected_and_nothing_is_created() {
    OperatorProcess::shared().await;
    let tenant = unique("tc");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: bad\n  namespace: {tenant}\n\
         spec:\n  config:\n    retention.ms: \"not-a-number\"\n"
    ));
    let message = wait_ready(&topics(&tenant).await, "bad", "False", "KafkaRejected").await;
    assert!(message.contains("retention.ms") || message.contains("InvalidConfig"), "{message}");
    let err = topic_layout(&kafka_admin(), &format!("{tenant}.bad")).expect_err("nothing created in Kafka");
    assert!(err.contains("UNKNOWN_TOPIC"), "{err}");
}

#[tokio::test]
async fn a_tenant_named_like_the_operators_admin_principals_is_refused_and_gets_nothing() {
    OperatorProcess::shared().await;
    // The stack's admin principals: Kafka `admin`, Cassandra `cassandra`. Deletion policy
    // Delete, so a cleanup that wrongly touched them would drop the admins themselves.
    for (name, expected) in [("admin", "is the operator's admin principal"), ("cassandra", "is reserved for Cassandra")]
    {
        apply(&format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:\n  deletionPolicy: Delete\n"
        ));
        let message = wait_ready(&tenants().await, name, "False", "InvalidSpec").await;
        assert!(message.contains(expected), "{message}");
        let namespaces: Api<Namespace> = Api::all(client().await);
        assert!(namespaces.get_opt(name).await.unwrap().is_none(), "no namespace {name} was created");
        tenants().await.delete(name, &Default::default()).await.unwrap();
        wait_until(&format!("Tenant {name} to be gone"), WAIT, || async {
            if tenants().await.get_opt(name).await.map_err(|e| e.to_string())?.is_none() {
                Ok(())
            } else {
                Err("still there".into())
            }
        })
        .await;
    }
    // The admins still work: the Kafka admin can list topics, and other tests keep passing.
    assert!(kafka_admin().inner().fetch_metadata(None, Duration::from_secs(10)).is_ok());
}
