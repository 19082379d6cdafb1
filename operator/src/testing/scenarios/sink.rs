//! Reconcile flows of a CassandraSink against the fakes: its own user, ACLs, dead-letter
//! topic and Deployment; table evolution; replays, start positions and autoscaling.

use std::sync::Arc;

use serde_json::json;

use super::super::{Scenario, namespaced, topic};
use crate::controller::Result;

/// The columns of `water.readings` as Cassandra lists them for the example sink, with
/// `conductivity` of the given type (`None`: without it).
pub(super) fn readings_table(conductivity: Option<&str>) -> Vec<crate::external::cassandra::LiveColumn> {
    let column =
        |name: &str, kind: &str, cql_type: &str, position: i32, order: &str| crate::external::cassandra::LiveColumn {
            name: name.into(),
            kind: kind.into(),
            cql_type: cql_type.into(),
            position,
            clustering_order: order.into(),
        };
    let mut columns = vec![
        column("station", "partition_key", "text", 0, "none"),
        column("ts", "clustering", "timestamp", 0, "desc"),
        column("ph", "regular", "double", -1, "none"),
        column("turbidity", "regular", "double", -1, "none"),
        column("temperature", "regular", "double", -1, "none"),
    ];
    if let Some(cql_type) = conductivity {
        columns.push(column("conductivity", "regular", cql_type, -1, "none"));
    }
    columns
}

impl Scenario {
    /// Tenant `water` provisioned, its Topic `data` ready and the example sink stored, with
    /// `water.readings` in Cassandra as `table` (if any); writes taken.
    pub(super) async fn water_sink(&self, table: Option<Vec<crate::external::cassandra::LiveColumn>>) -> String {
        self.provisioned_water().await;
        let topic_path = namespaced("water", "topics", "data");
        self.api.put(&topic_path, topic("water", "data", json!({"partitions": 3, "replicationFactor": 3})));
        self.reconcile_topic("water", "data").await.expect("topic reconcile");
        // The Tenant's roll-up sees the Topic now.
        self.reconcile_tenant("water").await.expect("tenant reconcile");
        if let Some(columns) = table {
            self.cassandra.state.lock().unwrap().tables.insert("water.readings".into(), columns);
        }
        let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/water/sink.yaml"))
            .expect("examples/water/sink.yaml");
        let mut sink: serde_json::Value = serde_saphyr::from_str(&example).expect("the example sink parses");
        sink["metadata"]["finalizers"] = json!([crate::sink::reconcile::FINALIZER]);
        let path = namespaced("water", "cassandrasinks", "readings");
        self.api.put(&path, sink);
        self.writes();
        path
    }

    pub(super) async fn reconcile_sink(&self, path: &str) -> Result<kube::runtime::controller::Action> {
        self.sync_watches();
        let sink: crate::api::CassandraSink = self.api.object(path);
        crate::sink::reconcile::reconcile(Arc::new(sink), self.ctx.clone()).await
    }

    pub(super) fn condition(&self, path: &str, type_: &str) -> (String, String, String) {
        let object = self.api.get(path).expect("object");
        let conditions = object.pointer("/status/conditions").cloned().unwrap_or_default();
        let found = conditions.as_array().and_then(|c| c.iter().find(|c| c["type"] == type_)).cloned();
        let field = |k: &str| found.as_ref().and_then(|r| r[k].as_str()).unwrap_or_default().to_string();
        (field("status"), field("reason"), field("message"))
    }
}

#[tokio::test]
async fn a_sink_gets_its_own_user_acls_dead_letter_topic_and_deployment_and_a_resync_writes_nothing() {
    let s = Scenario::new();
    let path = s.water_sink(Some(readings_table(Some("int")))).await;

    s.reconcile_sink(&path).await.expect("first reconcile");
    let (api, kafka, cassandra) = s.writes();
    assert!(cassandra.is_empty(), "the table matches: no DDL ({cassandra:?})");
    assert!(kafka.iter().any(|w| w.starts_with("AlterUserScramCredentials(water.")), "{kafka:?}");
    assert!(kafka.iter().any(|w| w.starts_with("CreateAcls(")), "{kafka:?}");
    assert!(kafka.iter().any(|w| w.starts_with("CreateTopics(water.") && w.contains("dlq")), "{kafka:?}");
    assert!(api.iter().any(|w| w.contains("/apis/apps/v1/namespaces/water/deployments/")), "{api:?}");
    let acls = s.kafka.state.lock().unwrap().acls.clone();
    let sink_acls: Vec<_> = acls.iter().filter(|a| a.principal != "User:water").collect();
    assert!(!sink_acls.is_empty());
    assert!(
        sink_acls.iter().all(|a| a.resource_name.starts_with("water.")),
        "the sink's ACLs stay in the tenant's prefix: {sink_acls:?}"
    );
    assert_eq!(s.condition(&path, "MappingValid").0, "True");
    let stored = s.api.get(&path).unwrap();
    assert_eq!(stored.pointer("/status/table"), Some(&json!("water.readings")));

    s.reconcile_sink(&path).await.expect("second reconcile");
    let api = s.api.take_writes();
    assert_eq!((s.kafka.take_writes(), s.cassandra.take_writes()), (vec![], vec![]), "no Kafka or Cassandra write");
    // The rendered config and the Deployment are as the operator applied them last (its
    // fingerprint, no other field manager): nothing is written, the status included.
    let paths: Vec<&str> = api.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, Vec::<&str>::new());
    assert!(api.iter().all(|r| r.patch_type.as_deref() == Some("apply-patch+yaml")));
}

#[tokio::test]
async fn a_column_added_to_the_spec_is_added_to_the_table_and_nothing_else_changes_in_it() {
    let s = Scenario::new();
    let path = s.water_sink(Some(readings_table(None))).await;

    s.reconcile_sink(&path).await.expect("reconcile");
    let cassandra = s.cassandra.take_writes();
    assert_eq!(cassandra.len(), 1, "{cassandra:?}");
    assert!(
        cassandra[0].starts_with("AlterTable(") && cassandra[0].contains(r#"ADD "conductivity" int"#),
        "{cassandra:?}"
    );
    assert_eq!(s.condition(&path, "MappingValid").0, "True");
}

#[tokio::test]
async fn a_changed_column_type_is_refused_naming_the_column_and_no_pod_starts() {
    let s = Scenario::new();
    let path = s.water_sink(Some(readings_table(Some("text")))).await;

    s.reconcile_sink(&path).await.expect("reconcile");
    let (status, reason, message) = s.condition(&path, "MappingValid");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ColumnMismatch"), "{message}");
    assert!(message.contains("conductivity"), "the message names the column: {message}");
    assert_eq!(s.condition(&path, "Ready").1, "MappingInvalid");
    let (api, _, cassandra) = s.writes();
    assert!(cassandra.is_empty(), "the table is untouched: {cassandra:?}");
    assert!(!api.iter().any(|w| w.contains("/deployments/")), "no Deployment: {api:?}");
}

#[tokio::test]
async fn a_replay_stops_the_pods_moves_the_offsets_once_the_group_is_empty_and_starts_them_again() {
    let s = Scenario::new();
    let path = s.water_sink(Some(readings_table(Some("int")))).await;
    s.reconcile_sink(&path).await.expect("first reconcile");
    let deployment = namespaced("water", "deployments", "tributary-sink-readings");
    let replicas = |s: &Scenario| s.api.get(&deployment).unwrap().pointer("/spec/replicas").cloned();
    assert_eq!(replicas(&s), Some(json!(2)));
    // Two pods run.
    let mut live = s.api.get(&deployment).unwrap();
    live["status"] = json!({"replicas": 2, "readyReplicas": 2});
    s.api.put(&deployment, live);
    let mut sink = s.api.get(&path).unwrap();
    sink["spec"]["replay"] = json!({"id": "r1", "from": "Earliest"});
    s.api.put(&path, sink);
    s.writes();

    s.reconcile_sink(&path).await.expect("replay, pods running");
    assert_eq!(replicas(&s), Some(json!(0)), "the pods are stopped first");
    assert!(s.kafka.take_writes().is_empty(), "no offset moves while pods run");
    let (status, reason, message) = s.condition(&path, "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Replaying"), "{message}");
    assert_eq!(s.api.get(&path).unwrap().pointer("/status/replay/phase"), Some(&json!("Stopping")));

    // The pods are gone: the offsets move, once, and the pods come back.
    let mut live = s.api.get(&deployment).unwrap();
    live["status"] = json!({"replicas": 0});
    s.api.put(&deployment, live);
    s.reconcile_sink(&path).await.expect("replay, pods gone");
    assert_eq!(s.kafka.take_writes(), ["OffsetCommit(water.sink.readings, Earliest)"]);
    assert_eq!(replicas(&s), Some(json!(2)));
    let replay = s.api.get(&path).unwrap().pointer("/status/replay").cloned().unwrap();
    assert_eq!((replay["id"].as_str(), replay["phase"].as_str()), (Some("r1"), Some("Done")), "{replay}");
    assert_eq!(replay["offsets"], "0=0, 1=0, 2=0");

    s.reconcile_sink(&path).await.expect("after the replay");
    assert!(s.kafka.take_writes().is_empty(), "a replay runs once per id");
}

#[tokio::test]
async fn a_new_sink_from_latest_sets_its_group_before_the_first_pod_and_never_rewinds_an_existing_group() {
    let s = Scenario::new();
    let path = s.water_sink(Some(readings_table(Some("int")))).await;
    let mut sink = s.api.get(&path).unwrap();
    sink["spec"]["startFrom"] = json!("Latest");
    s.api.put(&path, sink.clone());
    s.reconcile_sink(&path).await.expect("reconcile");
    assert!(s.kafka.take_writes().contains(&"OffsetCommit(water.sink.readings, Latest)".to_string()));
    assert_eq!(s.api.get(&path).unwrap().pointer("/status/replay/id"), Some(&json!("startFrom")));

    // The same sink re-created (no Deployment, no Secret, no status) finds its group's
    // offsets: kept. (The garbage collector deletes what the first one owned.)
    s.api.put(&path, sink);
    let deployment = namespaced("water", "deployments", "tributary-sink-readings");
    s.api.take_requests();
    let client = s.api.client();
    kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "water")
        .delete("tributary-sink-readings", &Default::default())
        .await
        .expect("delete the first sink's Secret");
    {
        // And the first sink's cleanup removed its Kafka user with its ACLs and quotas.
        let mut kafka = s.kafka.state.lock().unwrap();
        kafka.users.remove("water.sink.readings");
        kafka.acls.retain(|a| a.principal != "User:water.sink.readings");
        kafka.quotas.remove("water.sink.readings");
    }
    kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client, "water")
        .delete("tributary-sink-readings", &Default::default())
        .await
        .expect("delete");
    assert!(s.api.get(&deployment).is_none());
    s.reconcile_sink(&path).await.expect("reconcile");
    assert!(!s.kafka.take_writes().iter().any(|w| w.starts_with("OffsetCommit")), "an existing group is not moved");
    let offsets = s.api.get(&path).unwrap().pointer("/status/replay/offsets").cloned();
    assert_eq!(offsets, Some(json!("kept: 0=0, 1=0, 2=0")));
}

#[tokio::test]
async fn an_autoscaled_sink_follows_its_lag_within_the_range_and_the_partitions() {
    let s = Scenario::new();
    let path = s.water_sink(Some(readings_table(Some("int")))).await;
    let mut sink = s.api.get(&path).unwrap();
    sink["spec"]["replicas"] = json!(1);
    sink["spec"]["autoscale"] = json!({"maxReplicas": 8, "lagPerReplica": 1000, "scaleDownDelaySeconds": 10});
    s.api.put(&path, sink);
    let deployment = namespaced("water", "deployments", "tributary-sink-readings");
    let replicas = |s: &Scenario| s.api.get(&deployment).unwrap().pointer("/spec/replicas").cloned();

    let action = s.reconcile_sink(&path).await.expect("first reconcile");
    assert_eq!(replicas(&s), Some(json!(1)), "a new sink starts at the minimum");
    assert_eq!(action, kube::runtime::controller::Action::requeue(s.ctx.config.sink_report), "looks again soon");

    s.kafka.state.lock().unwrap().lag = 2_500;
    s.reconcile_sink(&path).await.expect("with a backlog");
    assert_eq!(replicas(&s), Some(json!(3)), "ceil(2500 / 1000)");
    let decision = s.api.get(&path).unwrap().pointer("/status/autoscale/decision").cloned().unwrap();
    assert!(decision.as_str().unwrap().contains("lag 2500 records (1000 per replica): 1 → 3 replicas"), "{decision}");

    s.kafka.state.lock().unwrap().lag = 1_000_000;
    s.reconcile_sink(&path).await.expect("a big backlog");
    assert_eq!(replicas(&s), Some(json!(3)), "capped at the topic's 3 partitions");

    s.kafka.state.lock().unwrap().lag = 0;
    s.reconcile_sink(&path).await.expect("drained");
    assert_eq!(replicas(&s), Some(json!(3)), "down only after the delay");
    let below = s.api.get(&path).unwrap().pointer("/status/autoscale/belowSince").cloned();
    assert!(below.is_some(), "the wait is recorded");
}
