//! A broker stopped while Topics are reconciled: the status says Kafka is degraded, and the
//! topics converge once the broker is back.
//! (A test binary of its own: it stops a broker, which other tests must not see.)

use std::time::Duration;

use kube::Client;
use kube::api::Api;
use tributary::api::Topic;
use tributary_tests::kafka::topic_layout;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::{kafka_admin, kubectl_apply, ready_tenant, stack_ctl, unique, wait_ready, wait_until};

struct RestartOnDrop(&'static str);

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        stack_ctl(&["start", self.0]);
    }
}

fn topic_yaml(ns: &str, name: &str, partitions: i32) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  partitions: {partitions}\n"
    )
}

#[tokio::test]
async fn with_a_broker_down_the_status_says_kafka_is_degraded_and_topics_converge_when_it_is_back() {
    OperatorProcess::shared().await;
    let tenant = unique("dg");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let api: Api<Topic> = Api::namespaced(Client::try_default().await.unwrap(), &tenant);
    kubectl_apply(&topic_yaml(&tenant, "steady", 3));
    wait_ready(&api, "steady", "True", "Provisioned").await;

    let admin = kafka_admin();
    let restart = RestartOnDrop("kafka-3");
    stack_ctl(&["stop", "kafka-3"]);
    wait_until("Kafka to report 2 live brokers", Duration::from_secs(60), || async {
        let metadata = admin.inner().fetch_metadata(None, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        let n = metadata.brokers().len();
        if n == 2 { Ok(()) } else { Err(format!("{n} brokers")) }
    })
    .await;

    // A new topic and a partition increase both need three brokers for replication factor 3.
    kubectl_apply(&format!("{}---\n{}", topic_yaml(&tenant, "fresh", 3), topic_yaml(&tenant, "steady", 6)));
    let message = wait_ready(&api, "fresh", "False", "KafkaDegraded").await;
    assert!(message.contains("2 broker(s) alive, replication factor 3 needs 3"), "{message}");
    wait_ready(&api, "steady", "False", "KafkaDegraded").await;
    let fresh = format!("{tenant}.fresh");
    assert!(topic_layout(&admin, &fresh).is_err(), "nothing half-created while degraded");

    drop(restart);
    for (name, partitions) in [("fresh", 3), ("steady", 6)] {
        let message = wait_ready(&api, name, "True", "Provisioned").await;
        assert!(message.starts_with(&format!("{tenant}.{name}: {partitions} partitions")), "{message}");
        let kafka_name = format!("{tenant}.{name}");
        wait_until(
            &format!("{kafka_name} to have {partitions} partitions on 3 replicas"),
            Duration::from_secs(60),
            || async {
                let layout = topic_layout(&admin, &kafka_name)?;
                let ok = layout.len() == partitions && layout.iter().all(|p| p.replicas.len() == 3);
                if ok { Ok(()) } else { Err(format!("{layout:?}")) }
            },
        )
        .await;
    }
}
