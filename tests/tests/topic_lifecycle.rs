//! A Topic's life in Kafka through the operator: incremental config changes, drift set
//! back, deletion by policy, and two Topics that want the same Kafka name.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, DeleteParams};
use tributary::api::Topic;
use tributary::external::kafka::ConfigOp;
use tributary_tests::kafka::{produce, producer, topic_config, topic_layout, wait_config};
use tributary_tests::operator::OperatorProcess;
use tributary_tests::{
    kafka_admin, kafka_admin_ext, kubectl_apply, ready_tenant, tenant_kafka_settings, unique, wait_ready, wait_until,
};

const WAIT: Duration = Duration::from_secs(60);

async fn topics(ns: &str) -> Api<Topic> {
    Api::namespaced(Client::try_default().await.unwrap(), ns)
}

/// The note of the first event with `reason` in `ns` whose note mentions `about`.
async fn event_note(ns: &str, reason: &str, about: &str) -> String {
    let events: Api<Event> = Api::namespaced(Client::try_default().await.unwrap(), ns);
    wait_until(&format!("a {reason} event about {about}"), WAIT, || async {
        let list = events.list(&Default::default()).await.map_err(|e| e.to_string())?;
        list.items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.note)
            .find(|n| n.contains(about))
            .ok_or_else(|| "no such event yet".to_string())
    })
    .await
}

/// Waits until Kafka reports `key` of `topic` as `expected` (`None`: no override on the topic).
fn topic_yaml(ns: &str, name: &str, extra: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{extra}"
    )
}

#[tokio::test]
async fn config_changes_are_incremental_and_changes_made_in_kafka_are_set_back() {
    OperatorProcess::shared().await;
    let tenant = unique("cfg");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let kafka_name = format!("{tenant}.readings");
    kubectl_apply(&topic_yaml(&tenant, "readings", "  config:\n    retention.ms: \"3600000\"\n"));
    wait_ready(&topics(&tenant).await, "readings", "True", "Provisioned").await;
    wait_config(&kafka_name, "retention.ms", Some("3600000")).await;

    // By hand, in Kafka: change a key the Topic sets, add an override of a key the tenant
    // owns, and one of a key only the platform admin may set.
    let admin = kafka_admin();
    let by_hand = vec![
        ("retention.ms".to_string(), ConfigOp::Set("1000".into())),
        ("segment.ms".to_string(), ConfigOp::Set("600000".into())),
        ("min.insync.replicas".to_string(), ConfigOp::Set("1".into())),
    ];
    kafka_admin_ext(&admin).incremental_alter_topic_config(&kafka_name, by_hand).await.unwrap().unwrap();
    wait_config(&kafka_name, "retention.ms", Some("3600000")).await;
    wait_config(&kafka_name, "segment.ms", None).await;
    let config = topic_config(&admin, &kafka_name).await.unwrap();
    assert_eq!(config["min.insync.replicas"], ("1".to_string(), true), "the admin's override is left alone");

    let note = event_note(&tenant, "DriftReverted", &kafka_name).await;
    assert!(note.contains("retention.ms: 1000 → 3600000"), "{note}");
    assert!(note.contains("segment.ms: 600000 → broker default"), "{note}");
    let status = topics(&tenant).await.get("readings").await.unwrap().status.unwrap();
    assert_eq!(status.reverted_config, ["retention.ms: 1000 → 3600000", "segment.ms: 600000 → broker default"]);

    // A spec change is applied as the one key that differs (cleanup.policy already has the
    // asked value as the broker default), and is not called drift.
    kubectl_apply(&topic_yaml(
        &tenant,
        "readings",
        "  config:\n    retention.ms: \"7200000\"\n    cleanup.policy: \"delete\"\n",
    ));
    wait_config(&kafka_name, "retention.ms", Some("7200000")).await;
    let note = event_note(&tenant, "ConfigUpdated", "7200000").await;
    assert_eq!(note, format!("{kafka_name}: config retention.ms: 3600000 → 7200000"));
    wait_until("revertedConfig to clear after the spec change", WAIT, || async {
        let status = topics(&tenant).await.get("readings").await.map_err(|e| e.to_string())?.status.unwrap();
        if status.reverted_config.is_empty() { Ok(()) } else { Err(format!("{:?}", status.reverted_config)) }
    })
    .await;
}

#[tokio::test]
async fn deleting_a_topic_keeps_its_data_with_retain_and_removes_it_with_delete() {
    OperatorProcess::shared().await;
    let tenant = unique("del");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    kubectl_apply(&format!(
        "{}---\n{}",
        topic_yaml(&tenant, "kept", "  partitions: 1\n"),
        topic_yaml(&tenant, "dropped", "  partitions: 1\n  deletionPolicy: Delete\n")
    ));
    let api = topics(&tenant).await;
    wait_ready(&api, "kept", "True", "Provisioned").await;
    wait_ready(&api, "dropped", "True", "Provisioned").await;
    let kept = api.get("kept").await.unwrap().status.unwrap();
    assert_eq!(kept.deletion_policy, Some(tributary::api::DeletionPolicy::Retain), "the Tenant's default applies");

    // A record in the kept topic, written with the tenant's own credentials.
    let settings = tenant_kafka_settings(&tenant).await;
    let producer = producer(&settings);
    let kept_name = format!("{tenant}.kept");
    wait_until("a record to be written to the kept topic", WAIT, || async {
        produce(&producer, &kept_name, "k", "v").await.map_err(|e| e.to_string())
    })
    .await;

    for name in ["kept", "dropped"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in ["kept", "dropped"] {
        wait_until(&format!("Topic {name} to be gone"), WAIT, || async {
            match api.get_opt(name).await.map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(t) => Err(format!("finalizers {:?}", t.metadata.finalizers)),
            }
        })
        .await;
    }
    let admin = kafka_admin();
    let dropped_name = format!("{tenant}.dropped");
    wait_until("the Delete topic to be gone from Kafka", WAIT, || async {
        match topic_layout(&admin, &dropped_name) {
            Err(e) if e.contains("UNKNOWN_TOPIC") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(topic_layout(&admin, &kept_name).expect("the Retain topic stays").len(), 1);
    let (low, high) =
        admin.inner().fetch_watermarks(&kept_name, 0, Duration::from_secs(10)).expect("watermarks of the kept topic");
    assert_eq!(high - low, 1, "the kept topic still holds its record");
    event_note(&tenant, "Retained", &kept_name).await;
    event_note(&tenant, "Deleted", &dropped_name).await;
}

#[tokio::test]
async fn the_newer_of_two_topics_with_the_same_kafka_name_gets_conflict_and_touches_nothing() {
    OperatorProcess::shared().await;
    let tenant = unique("cf");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let api = topics(&tenant).await;
    kubectl_apply(&topic_yaml(&tenant, "shared", "  partitions: 3\n"));
    wait_ready(&api, "shared", "True", "Provisioned").await;
    // Same Kafka name through topicName, more partitions, and Delete on deletion.
    kubectl_apply(&topic_yaml(&tenant, "copy", "  topicName: shared\n  partitions: 6\n  deletionPolicy: Delete\n"));
    let message = wait_ready(&api, "copy", "False", "Conflict").await;
    let kafka_name = format!("{tenant}.shared");
    assert!(message.contains(&format!("Topic {tenant}/shared already maps to Kafka topic {kafka_name}")), "{message}");
    let admin = kafka_admin();
    assert_eq!(topic_layout(&admin, &kafka_name).unwrap().len(), 3, "the newer Topic changed nothing");
    assert_eq!(api.get("copy").await.unwrap().status.unwrap().kafka_name, None);
    wait_ready(&api, "shared", "True", "Provisioned").await;

    // Deleting the newer one (policy Delete) does not delete the topic it never managed.
    api.delete("copy", &DeleteParams::default()).await.unwrap();
    wait_until("Topic copy to be gone", WAIT, || async {
        if api.get_opt("copy").await.map_err(|e| e.to_string())?.is_none() { Ok(()) } else { Err("still there".into()) }
    })
    .await;
    assert_eq!(topic_layout(&admin, &kafka_name).expect("the topic stays").len(), 3);
}
