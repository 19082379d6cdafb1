//! Reconcile flows against the fakes: what each reconcile writes, where, and that a second
//! reconcile of an unchanged world writes nothing.

use std::sync::Arc;

use serde_json::json;

use super::{Scenario, namespaced, tenant, tenant_path, topic};
use crate::access::kafka::ScramMechanism;
use crate::api::{Tenant, Topic};
use crate::controller::Result;

mod sink;
use sink::readings_table;

fn water_spec() -> serde_json::Value {
    json!({
        "deletionPolicy": "Retain",
        "kafka": {"limits": {"maxTopics": 10, "maxPartitions": 60}},
        "cassandra": {"replication": {"class": "SimpleStrategy", "replicationFactor": 1}},
    })
}

impl Scenario {
    /// Reconciles the Tenant stored at `name` once, as the controller would.
    /// As its resync does (the resync is due: everything is looked at again).
    async fn reconcile_tenant(&self, name: &str) -> Result<kube::runtime::controller::Action> {
        let tenant: Tenant = self.api.object(&tenant_path(name));
        self.ctx.forget_provisioned(&tenant);
        self.reconcile_tenant_for_its_children(name).await
    }

    /// As a Topic or sink changing its readiness does, before the Tenant's resync is due.
    async fn reconcile_tenant_for_its_children(&self, name: &str) -> Result<kube::runtime::controller::Action> {
        self.sync_watches();
        let tenant: Tenant = self.api.object(&tenant_path(name));
        crate::tenant::reconcile::reconcile(Arc::new(tenant), self.ctx.clone()).await
    }

    /// Reconciles the Topic stored at `ns/name` once.
    async fn reconcile_topic(&self, ns: &str, name: &str) -> Result<kube::runtime::controller::Action> {
        self.sync_watches();
        let topic: Topic = self.api.object(&namespaced(ns, "topics", name));
        crate::topic::reconcile::reconcile(Arc::new(topic), self.ctx.clone()).await
    }

    /// A provisioned tenant `water`, its writes taken.
    async fn provisioned_water(&self) {
        self.api.put(&tenant_path("water"), tenant("water", water_spec()));
        self.reconcile_tenant("water").await.expect("tenant reconcile");
        assert_eq!(self.condition(&tenant_path("water"), "Ready").0, "True");
        self.writes();
    }
}

#[tokio::test]
async fn a_new_tenant_gets_its_namespace_secret_user_acls_keyspace_and_role_and_a_resync_writes_nothing() {
    let s = Scenario::new();
    s.api.put(&tenant_path("water"), tenant("water", water_spec()));

    s.reconcile_tenant("water").await.expect("first reconcile");
    let (api, kafka, cassandra) = s.writes();
    for path in ["/api/v1/namespaces/water", "/api/v1/namespaces/water/secrets/tributary-credentials"] {
        assert!(api.iter().any(|w| w.ends_with(path)), "{path} written: {api:?}");
    }
    assert!(kafka.contains(&"AlterUserScramCredentials(water)".to_string()), "{kafka:?}");
    assert!(kafka.iter().any(|w| w.starts_with("CreateAcls(")), "{kafka:?}");
    assert!(cassandra.contains(&"PutKeyspace(water)".to_string()), "{cassandra:?}");
    assert!(cassandra.contains(&"PutRole(water)".to_string()), "{cassandra:?}");
    // The password in the Secret is the one Kafka and Cassandra were given.
    let secret = s.api.object("/api/v1/namespaces/water/secrets/tributary-credentials");
    let kafka_password = s.kafka.state.lock().unwrap().users["water"][&ScramMechanism::Sha512].clone();
    let cassandra_password = s.cassandra.state.lock().unwrap().roles["water"].clone();
    assert!(secret_holds(&secret, &kafka_password), "the Secret holds the Kafka password");
    assert!(secret_holds(&secret, &cassandra_password), "the Secret holds the Cassandra password");
    let acls = s.kafka.state.lock().unwrap().acls.clone();
    assert!(acls.iter().all(|a| a.principal == "User:water" && a.resource_name.starts_with("water.")), "{acls:?}");
    let (status, reason, message) = s.condition(&tenant_path("water"), "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Provisioned"), "{message}");

    // The same world again: nothing is written anywhere, not even the status.
    s.reconcile_tenant("water").await.expect("second reconcile");
    assert_eq!(s.writes(), (vec![], vec![], vec![]), "a resync of an unchanged Tenant writes nothing");
}

#[tokio::test]
async fn an_external_principal_gets_the_tenants_acls_and_its_login_is_handed_out_never_written() {
    let s = Scenario::new();
    let lease = s.ctx.config.lease_namespace.clone();
    let mut spec = water_spec();
    spec["kafka"]["externalUser"] =
        json!({"name": "sa-water", "mechanism": "PLAIN", "passwordSecret": {"name": "water-login"}});
    s.api.put(&tenant_path("water"), tenant("water", spec));

    // No Secret yet: the status says which to create, and nothing is written outside.
    s.reconcile_tenant("water").await.expect("reconcile");
    let (status, reason, message) = s.condition(&tenant_path("water"), "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"), "{message}");
    assert!(message.contains(&format!("Secret {lease}/water-login has no key \"password\"")), "{message}");
    let (_, kafka, cassandra) = s.writes();
    assert_eq!((kafka, cassandra), (vec![], vec![]));

    let login = k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("water-login".into()),
            namespace: Some(lease.clone()),
            ..Default::default()
        },
        data: Some([("password".to_string(), k8s_openapi::ByteString(b"issued-elsewhere".to_vec()))].into()),
        ..Default::default()
    };
    let mut login = serde_json::to_value(login).unwrap();
    login["apiVersion"] = json!("v1");
    login["kind"] = json!("Secret");
    s.api.put(&namespaced(&lease, "secrets", "water-login"), login);
    s.reconcile_tenant("water").await.expect("reconcile");
    let (status, reason, message) = s.condition(&tenant_path("water"), "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Provisioned"), "{message}");
    let (_, kafka, _) = s.writes();
    assert!(!kafka.iter().any(|w| w.starts_with("AlterUserScramCredentials")), "no user written: {kafka:?}");
    assert!(s.kafka.state.lock().unwrap().users.is_empty(), "no SCRAM user");
    let acls = s.kafka.state.lock().unwrap().acls.clone();
    assert!(!acls.is_empty(), "the tenant's ACLs");
    assert!(acls.iter().all(|a| a.principal == "User:sa-water" && a.resource_name.starts_with("water.")), "{acls:?}");
    let secret = s.api.object("/api/v1/namespaces/water/secrets/tributary-credentials");
    assert!(secret_holds(&secret, "issued-elsewhere"), "the bundle holds the issued password");
    assert!(secret_holds(&secret, "sasl.mechanism=PLAIN"), "and its mechanism");

    s.reconcile_tenant("water").await.expect("second reconcile");
    assert_eq!(s.writes(), (vec![], vec![], vec![]), "a resync writes nothing");

    // The issuer rotates the password: the bundle follows; the Cassandra password stays.
    let cassandra_password = s.cassandra.state.lock().unwrap().roles["water"].clone();
    let mut login: serde_json::Value = s.api.get(&namespaced(&lease, "secrets", "water-login")).unwrap();
    login["data"]["password"] = serde_json::to_value(k8s_openapi::ByteString(b"issued-again".to_vec())).unwrap();
    s.api.put(&namespaced(&lease, "secrets", "water-login"), login);
    s.reconcile_tenant("water").await.expect("reconcile after the rotation");
    let secret = s.api.object("/api/v1/namespaces/water/secrets/tributary-credentials");
    assert!(secret_holds(&secret, "issued-again") && !secret_holds(&secret, "issued-elsewhere"), "the new password");
    assert!(secret_holds(&secret, &cassandra_password), "the Cassandra password is kept");
    let (_, kafka, cassandra) = s.writes();
    assert!(kafka.is_empty() && cassandra.is_empty(), "nothing written to Kafka or Cassandra: {kafka:?} {cassandra:?}");
}

#[tokio::test]
async fn a_rotation_writes_the_other_slots_keeps_the_previous_ones_for_the_grace_period_then_removes_them() {
    let s = Scenario::new();
    s.provisioned_water().await;
    let first = s.kafka.state.lock().unwrap().users["water"][&ScramMechanism::Sha512].clone();
    let first_cassandra = s.cassandra.state.lock().unwrap().roles["water"].clone();

    // Requested, with a grace period: new credentials in the other slots, the previous kept.
    // The admin edits the spec of the stored Tenant (its annotations stay).
    let set_credentials = |credentials: serde_json::Value| {
        let mut stored = s.api.get(&tenant_path("water")).unwrap();
        stored["spec"]["credentials"] = credentials;
        s.api.put(&tenant_path("water"), stored);
    };
    set_credentials(json!({"rotationRequest": "r1", "gracePeriodSeconds": 3600}));
    s.reconcile_tenant("water").await.expect("rotation");
    let (_, kafka, cassandra) = s.writes();
    assert_eq!(kafka, vec!["AlterUserScramCredentials(water Sha256)".to_string()], "only the new slot");
    assert_eq!(
        cassandra,
        vec!["PutRole(water.2)".to_string(), "GrantRole(water to water.2)".to_string()],
        "a second login granted the tenant's role"
    );
    let users = s.kafka.state.lock().unwrap().users["water"].clone();
    assert_eq!(users[&ScramMechanism::Sha512], first, "the previous Kafka credential still works");
    let secret = s.api.object("/api/v1/namespaces/water/secrets/tributary-credentials");
    assert!(secret_holds(&secret, &users[&ScramMechanism::Sha256]) && !secret_holds(&secret, &first));
    assert!(secret_holds(&secret, "sasl.mechanism=SCRAM-SHA-256"));
    let second_cassandra = s.cassandra.state.lock().unwrap().roles["water.2"].clone();
    assert!(secret_holds(&secret, &second_cassandra) && !secret_holds(&secret, &first_cassandra));
    assert!(!s.cassandra.state.lock().unwrap().no_login.contains("water"), "the previous login still works");
    let status: Tenant = s.api.object(&tenant_path("water"));
    let credentials = status.status.unwrap().credentials.unwrap();
    assert_eq!(credentials.rotation_request.as_deref(), Some("r1"));
    assert_eq!(credentials.cassandra_username.as_deref(), Some("water.2"));
    assert!(credentials.previous.unwrap().contains("grace period"), "the status says what the previous ones wait for");

    // The same request again rotates nothing; a resync writes nothing.
    s.reconcile_tenant("water").await.expect("resync");
    let (_, kafka, cassandra) = s.writes();
    assert_eq!((kafka, cassandra), (vec![], vec![]));

    // A new request while the previous credentials still work waits: their slots stay.
    set_credentials(json!({"rotationRequest": "r1-again", "gracePeriodSeconds": 3600}));
    s.reconcile_tenant("water").await.expect("a rotation too early");
    let (_, kafka, cassandra) = s.writes();
    assert_eq!((kafka, cassandra), (vec![], vec![]), "nothing rotated over the slots in use");
    assert_eq!(s.kafka.state.lock().unwrap().users["water"][&ScramMechanism::Sha512], first);

    // The grace period over (and no sink to wait for): the previous slots go.
    set_credentials(json!({"rotationRequest": "r1-again", "gracePeriodSeconds": 0}));
    s.reconcile_tenant("water").await.expect("retire");
    let (_, kafka, cassandra) = s.writes();
    assert_eq!(kafka, vec!["DeleteUserScramCredentials(water Sha512)".to_string()]);
    assert_eq!(cassandra, vec!["DisableLogin(water)".to_string()], "the role keeps its grants, not its login");
    let status: Tenant = s.api.object(&tenant_path("water"));
    assert_eq!(status.status.unwrap().credentials.unwrap().previous, None);

    // Then the waiting request is carried out: back to the first slots, the second login dropped.
    s.reconcile_tenant("water").await.expect("the waiting rotation");
    let (_, kafka, cassandra) = s.writes();
    assert_eq!(
        kafka,
        vec!["AlterUserScramCredentials(water)".to_string(), "DeleteUserScramCredentials(water Sha256)".to_string()]
    );
    assert_eq!(cassandra, vec!["PutRole(water)".to_string(), "DropRole(water.2)".to_string()]);
    let secret = s.api.object("/api/v1/namespaces/water/secrets/tributary-credentials");
    assert!(secret_holds(&secret, "sasl.mechanism=SCRAM-SHA-512"));
    let status: Tenant = s.api.object(&tenant_path("water"));
    assert_eq!(status.status.unwrap().credentials.unwrap().rotation_request.as_deref(), Some("r1-again"));
    s.reconcile_tenant("water").await.expect("resync");
    assert_eq!(s.writes(), (vec![], vec![], vec![]), "steady again: nothing written");
}

fn secret_holds(secret: &k8s_openapi::api::core::v1::Secret, password: &str) -> bool {
    let data = secret.data.iter().flatten().map(|(_, v)| String::from_utf8_lossy(&v.0).into_owned());
    let string_data = secret.string_data.iter().flatten().map(|(_, v)| v.clone());
    data.chain(string_data).any(|v| v.contains(password))
}

#[tokio::test]
async fn a_tenant_whose_namespace_is_someone_elses_is_refused_and_nothing_is_written_outside() {
    let s = Scenario::new();
    s.api.put(
        "/api/v1/namespaces/water",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "water"}}),
    );
    s.api.put(&tenant_path("water"), tenant("water", water_spec()));

    s.reconcile_tenant("water").await.expect("reconcile");
    let (status, reason, message) = s.condition(&tenant_path("water"), "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NamespaceTaken"), "{message}");
    assert!(message.contains("water"), "the message names the namespace: {message}");
    let (api, kafka, cassandra) = s.writes();
    assert_eq!((kafka, cassandra), (vec![], vec![]), "no user, ACL, keyspace or role for a refused Tenant");
    assert!(api.iter().all(|w| w.ends_with("/tenants/water/status")), "only the Tenant's status: {api:?}");
    assert!(
        s.api.get("/api/v1/namespaces/water").unwrap().pointer("/metadata/labels").is_none(),
        "namespace untouched"
    );
}

#[tokio::test]
async fn a_provisioned_tenant_reconciled_for_its_children_only_rolls_them_up_until_its_resync() {
    let s = Scenario::new();
    s.provisioned_water().await;
    s.api.put(
        &namespaced("water", "topics", "data"),
        topic("water", "data", json!({"partitions": 3, "replicationFactor": 3})),
    );
    s.reconcile_topic("water", "data").await.expect("topic");
    s.writes();

    // The Topic turned Ready: the roll-up follows without a call to Kafka or Cassandra
    // (both down here, and the reconcile still succeeds).
    s.kafka.set_down(true);
    s.cassandra.state.lock().unwrap().down = true;
    s.reconcile_tenant_for_its_children("water").await.expect("roll-up only");
    let stored: Tenant = s.api.object(&tenant_path("water"));
    assert_eq!(stored.status.as_ref().and_then(|st| st.topics.as_deref()), Some("1/1"), "{:?}", stored.status);
    let (status, reason, message) = s.condition(&tenant_path("water"), "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Provisioned"), "{message}");
    let (_, kafka, cassandra) = s.writes();
    assert!(kafka.is_empty() && cassandra.is_empty(), "{kafka:?} {cassandra:?}");

    // The resync falls due: Kafka and Cassandra are looked at again, and found down.
    s.reconcile_tenant("water").await.expect_err("Kafka and Cassandra are down");
    let (status, reason, _) = s.condition(&tenant_path("water"), "Ready");
    assert_eq!(status, "False");
    assert!(reason.ends_with("Unavailable"), "{reason}");

    // After a failed reconcile a child's change looks at everything again too.
    s.reconcile_tenant_for_its_children("water").await.expect_err("still down");
    s.kafka.set_down(false);
    s.cassandra.state.lock().unwrap().down = false;
    s.reconcile_tenant_for_its_children("water").await.expect("back");
    assert_eq!(s.condition(&tenant_path("water"), "Ready").0, "True");

    // A new generation of the spec is provisioned in full, not rolled up.
    let mut stored = s.api.get(&tenant_path("water")).unwrap();
    stored["spec"]["kafka"]["quotas"] = json!({"producerByteRate": 1048576});
    stored["metadata"]["generation"] = json!(stored["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
    s.api.put(&tenant_path("water"), stored);
    s.reconcile_tenant_for_its_children("water").await.expect("spec change");
    let (_, kafka, _) = s.writes();
    assert!(kafka.iter().any(|w| w.starts_with("AlterClientQuotas")), "the new quota written: {kafka:?}");
}

#[tokio::test]
async fn a_topic_is_created_under_the_tenant_prefix_once_and_its_resync_writes_nothing() {
    let s = Scenario::new();
    s.provisioned_water().await;
    let path = namespaced("water", "topics", "data");
    // As applied by a user: no finalizer yet.
    let mut new = topic("water", "data", json!({"partitions": 3, "replicationFactor": 3}));
    new["metadata"].as_object_mut().unwrap().remove("finalizers");
    s.api.put(&path, new);

    // One reconcile does it all: the finalizer first, then the topic, then the status.
    s.reconcile_topic("water", "data").await.expect("first reconcile");
    let api = s.api.take_writes();
    assert_eq!(s.kafka.take_writes(), ["CreateTopics(water.data)"]);
    assert!(s.cassandra.take_writes().is_empty());
    assert_eq!(api.len(), 2, "two writes, the finalizer and the status: {api:?}");
    assert_eq!((api[0].path.as_str(), api[0].patch_type.as_deref()), (path.as_str(), Some("json-patch+json")));
    assert_eq!(
        (api[1].path.as_str(), api[1].patch_type.as_deref()),
        (format!("{path}/status").as_str(), Some("apply-patch+yaml"))
    );
    assert_eq!(api[1].body["status"]["kafkaName"], "water.data", "server-side apply of the whole status");
    assert_eq!(s.condition(&path, "Ready").0, "True", "{:?}", s.condition(&path, "Ready"));
    let stored = s.api.get(&path).unwrap();
    assert_eq!(stored.pointer("/metadata/finalizers"), Some(&json!([crate::topic::reconcile::FINALIZER])));
    assert_eq!(stored.pointer("/status/kafkaName"), Some(&json!("water.data")));
    assert_eq!(stored.pointer("/status/partitions"), Some(&json!(3)));

    s.reconcile_topic("water", "data").await.expect("second reconcile");
    assert_eq!(s.writes(), (vec![], vec![], vec![]), "a resync of an unchanged Topic writes nothing");
}

#[tokio::test]
async fn a_topic_over_the_tenants_partition_budget_is_refused_before_kafka() {
    let s = Scenario::new();
    s.provisioned_water().await;
    // 50 partitions already held by another Topic of the tenant; the budget is 60.
    let other = json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic",
        "metadata": {"name": "big", "namespace": "water", "uid": "uid-big", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"partitions": 50, "replicationFactor": 3},
    });
    s.api.put(&namespaced("water", "topics", "big"), other);
    let path = namespaced("water", "topics", "more");
    s.api.put(&path, topic("water", "more", json!({"partitions": 12, "replicationFactor": 3})));

    s.reconcile_topic("water", "more").await.expect("reconcile");
    let (status, reason, message) = s.condition(&path, "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "GuardrailViolated"), "{message}");
    assert!(message.contains("60"), "the message names the limit: {message}");
    assert!(s.kafka.take_writes().is_empty(), "nothing created in Kafka");
}

#[tokio::test]
async fn kafka_down_is_reported_and_retried_and_the_topic_is_created_when_it_answers() {
    let s = Scenario::new();
    s.provisioned_water().await;
    let path = namespaced("water", "topics", "data");
    s.api.put(&path, topic("water", "data", json!({"partitions": 3, "replicationFactor": 3})));

    s.kafka.set_down(true);
    let failed = s.reconcile_topic("water", "data").await;
    assert!(failed.is_err(), "a transient failure goes to the error policy (backoff)");
    let (status, reason, message) = s.condition(&path, "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "KafkaUnavailable"), "{message}");
    assert!(message.contains("Check the brokers") || message.contains("retrying"), "{message}");

    s.kafka.set_down(false);
    s.reconcile_topic("water", "data").await.expect("reconcile after Kafka is back");
    assert_eq!(s.kafka.take_writes(), ["CreateTopics(water.data)"]);
    assert_eq!(s.condition(&path, "Ready").0, "True");
}

impl Scenario {
    /// The stored Tenant `water` marked deleted (`deletionTimestamp` set, as the API server
    /// does) with `deletionPolicy: Delete`.
    fn delete_water_with_its_data(&self) {
        let mut stored = self.api.get(&tenant_path("water")).unwrap();
        stored["spec"]["deletionPolicy"] = json!("Delete");
        stored["metadata"]["deletionTimestamp"] = json!("2026-12-04T12:00:00Z");
        self.api.put(&tenant_path("water"), stored);
    }
}

#[tokio::test]
async fn a_tenant_deleted_with_its_data_stops_its_sinks_then_deletes_its_consumer_groups_before_its_users() {
    let s = Scenario::new();
    let path = s.water_sink(Some(readings_table(Some("int")))).await;
    s.reconcile_sink(&path).await.expect("sink reconcile");
    let deployment = namespaced("water", "deployments", "tributary-sink-readings");
    assert!(s.api.get(&deployment).is_some());
    {
        let mut kafka = s.kafka.state.lock().unwrap();
        for group in ["water.sink.readings", "water.team-app", "waterworks.app"] {
            kafka.offsets.insert(group.into(), [(0, 10)].into());
        }
    }
    s.writes();

    s.delete_water_with_its_data();
    s.reconcile_tenant("water").await.expect("cleanup");
    assert!(s.api.get(&deployment).is_none(), "the sink's Deployment is deleted first, so its pods leave the group");
    let kafka = s.kafka.take_writes();
    let at = |prefix: &str| {
        kafka.iter().position(|w| w.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} in {kafka:?}"))
    };
    assert!(at("DeleteGroups(water.sink.readings)") < at("DeleteUserScramCredentials(water."), "{kafka:?}");
    assert!(at("DeleteGroups(water.team-app)") < at("DeleteUserScramCredentials(water "), "{kafka:?}");
    let groups: Vec<String> = s.kafka.state.lock().unwrap().offsets.keys().cloned().collect();
    assert_eq!(groups, ["waterworks.app"], "only the groups under the tenant's prefix `water.` go");
    let finalizers = s.api.get(&tenant_path("water")).and_then(|t| t.pointer("/metadata/finalizers").cloned());
    assert!(finalizers.as_ref().is_none_or(|f| *f == json!([])), "the Tenant is released: {finalizers:?}");
}

#[tokio::test(start_paused = true)]
async fn a_consumer_group_still_in_use_is_left_behind_and_named_and_the_users_go_anyway() {
    let s = Scenario::new();
    s.provisioned_water().await;
    {
        let mut kafka = s.kafka.state.lock().unwrap();
        kafka.offsets.insert("water.team-app".into(), [(0, 10)].into());
        kafka.groups_in_use.insert("water.team-app".into());
    }
    s.delete_water_with_its_data();
    s.reconcile_tenant("water").await.expect("cleanup");
    let kafka = s.kafka.take_writes();
    assert!(kafka.iter().any(|w| w.starts_with("DeleteUserScramCredentials(water ")), "{kafka:?}");
    assert!(s.kafka.state.lock().unwrap().offsets.contains_key("water.team-app"), "a group with members stays");
    // The event says what stayed behind, and why.
    let mut note = None;
    for _ in 0..100 {
        tokio::task::yield_now().await;
        note = s.api.objects_of::<serde_json::Value>("events").into_iter().find_map(|e| {
            let reason = e["reason"].as_str()?;
            (reason == "LeftBehind").then(|| e["note"].as_str().unwrap_or_default().to_string())
        });
        if note.is_some() {
            break;
        }
    }
    let note = note.expect("a LeftBehind event");
    assert!(note.contains("Kafka consumer groups under water. (") && note.contains("water.team-app"), "{note}");
    assert!(note.contains("kafka-consumer-groups.sh --delete"), "the note says what to do: {note}");
}

#[tokio::test]
async fn a_deleted_topic_retries_a_kafka_that_does_not_answer_then_gives_up_after_the_bound() {
    let s = Scenario::new();
    s.provisioned_water().await;
    let path = namespaced("water", "topics", "data");
    s.api.put(
        &path,
        topic("water", "data", json!({"partitions": 3, "replicationFactor": 3, "deletionPolicy": "Delete"})),
    );
    s.reconcile_topic("water", "data").await.expect("created");
    let mark_deleted = |ago: i64| {
        let mut stored = s.api.get(&path).unwrap();
        let at = k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(ago);
        stored["metadata"]["deletionTimestamp"] = json!(at.to_string());
        s.api.put(&path, stored);
    };
    s.kafka.set_down(true);
    mark_deleted(5);
    assert!(s.reconcile_topic("water", "data").await.is_err(), "within the bound: retried, the finalizer kept");
    let finalizers = |s: &Scenario| s.api.get(&path).and_then(|t| t.pointer("/metadata/finalizers").cloned());
    assert_eq!(finalizers(&s), Some(json!([crate::topic::reconcile::FINALIZER])));
    mark_deleted(crate::topic::reconcile::CLEANUP_BOUND.as_secs() as i64 + 1);
    s.reconcile_topic("water", "data").await.expect("past the bound: released");
    let left = finalizers(&s);
    assert!(left.as_ref().is_none_or(|f| *f == json!([])), "the finalizer is released: {left:?}");
    assert!(s.kafka.state.lock().unwrap().topics.contains_key("water.data"), "the topic was left behind");
}

#[tokio::test]
async fn a_secret_planted_under_a_sinks_secret_name_is_never_adopted_and_nothing_is_written() {
    let s = Scenario::new();
    let path = s.water_sink(Some(readings_table(Some("int")))).await;
    // The team's Secret, made before the sink was reconciled, even naming the sink as owner.
    let sink_uid = s.api.get(&path).unwrap()["metadata"]["uid"].clone();
    let planted = "cGxhbnRlZA=="; // "planted"
    s.api.put(
        &namespaced("water", "secrets", "tributary-sink-readings"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "tributary-sink-readings", "namespace": "water",
                            "ownerReferences": [{"apiVersion": "tributary.dev/v1alpha1", "kind": "CassandraSink",
                                                 "name": "readings", "uid": sink_uid, "controller": true}],
                            "managedFields": [{"manager": "kubectl-create", "operation": "Update"}]},
               "data": {"kafka.password": planted}}),
    );
    s.writes();
    s.reconcile_sink(&path).await.expect("reconcile");
    let (status, reason, message) = s.condition(&path, "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "OwnershipConflict"), "{message}");
    assert!(
        message.contains("Secret water/tributary-sink-readings") && message.contains("kubectl-create"),
        "{message}"
    );
    let (api, kafka, _) = s.writes();
    assert!(kafka.is_empty(), "no Kafka user is made with the planted password: {kafka:?}");
    assert!(api.iter().all(|w| !w.contains("/secrets/")), "the planted Secret is not written over: {api:?}");
    let kept = s.api.get(&namespaced("water", "secrets", "tributary-sink-readings")).unwrap();
    assert_eq!(kept["data"]["kafka.password"], planted);
}

#[tokio::test]
async fn a_tenant_whose_principal_holds_acls_or_quotas_already_is_refused_before_any_write() {
    for (what, says) in [("acl", "1 ACLs"), ("quota", "client quotas")] {
        let s = Scenario::new();
        {
            let mut kafka = s.kafka.state.lock().unwrap();
            match what {
                "acl" => {
                    kafka.acls.insert(crate::access::kafka::AclBinding::allow(
                        "User:water",
                        crate::access::kafka::ResourceType::Topic,
                        crate::access::kafka::PatternType::Literal,
                        "legacy",
                        crate::access::kafka::AclOperation::Read,
                    ));
                }
                _ => {
                    kafka.quotas.insert("water".into(), [("producer_byte_rate".to_string(), 1024.0)].into());
                }
            }
        }
        s.api.put(&tenant_path("water"), tenant("water", water_spec()));
        s.reconcile_tenant("water").await.expect("reconcile");
        let (status, reason, message) = s.condition(&tenant_path("water"), "Ready");
        assert_eq!((status.as_str(), reason.as_str()), ("False", "OwnershipConflict"), "{message}");
        assert!(message.contains("Kafka principal User:water exists with") && message.contains(says), "{message}");
        let (_, kafka, cassandra) = s.writes();
        assert_eq!((kafka, cassandra), (vec![], vec![]), "nothing written for {what}");
    }
}

#[tokio::test]
async fn the_operator_binds_its_secrets_role_in_the_tenant_namespace_and_replaces_another_releases_binding() {
    let s = Scenario::new();
    let binding = "/apis/rbac.authorization.k8s.io/v1/namespaces/water/rolebindings/tributary-operator-secrets";
    // Written by an operator installed under another release name, with its own role.
    s.api.put(
        binding,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "tributary-operator-secrets", "namespace": "water"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "old-tenant-secrets"},
               "subjects": [{"kind": "ServiceAccount", "name": "old", "namespace": "old"}]}),
    );
    s.api.put(&tenant_path("water"), tenant("water", water_spec()));
    s.reconcile_tenant("water").await.expect("reconcile");
    let requests = s.api.take_requests();
    assert!(
        requests.iter().any(|r| r.method == http::Method::DELETE && r.path == binding),
        "a binding's role is immutable: the old binding is deleted"
    );
    let stored = s.api.get(binding).unwrap();
    assert_eq!(stored["roleRef"]["name"], "tributary-tenant-secrets");
    assert_eq!(stored["subjects"][0]["name"], "tributary");
    assert_eq!(stored["subjects"][0]["kind"], "ServiceAccount");
    assert_eq!(s.condition(&tenant_path("water"), "Ready").0, "True");
    // Steady: the binding is not written again.
    s.writes();
    s.reconcile_tenant("water").await.expect("resync");
    assert_eq!(s.writes(), (vec![], vec![], vec![]));
}
