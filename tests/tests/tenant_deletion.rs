//! Deleting a Tenant never hangs on Kafka or Cassandra: with both frozen (SIGSTOP: they keep
//! their sockets open and never answer, which makes every call wait for its timeout), a
//! `Retain` tenant and a `Delete` tenant are both deleted, and an event says what stayed
//! behind. (A test binary of its own: it freezes the brokers and Cassandra. Freezing rather
//! than stopping also keeps the brokers from restarting: after a restart of all three, the
//! local stack's brokers have been seen to refuse every SCRAM login; see the README.)

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams};
use tributary::api::Tenant;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::{kubectl_apply, stack_ctl, unique, wait_ready, wait_until};

const WAIT: Duration = Duration::from_secs(90);

struct ThawOnDrop;

impl Drop for ThawOnDrop {
    fn drop(&mut self) {
        stack_ctl(&["thaw", "kafka", "cassandra"]);
    }
}

async fn tenants() -> Api<Tenant> {
    Api::all(kube::Client::try_default().await.unwrap())
}

async fn left_behind_note(name: &str) -> String {
    let events: Api<Event> = Api::all(kube::Client::try_default().await.unwrap());
    wait_until(&format!("a LeftBehind event for Tenant {name}"), WAIT, || async {
        let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
        list.items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("LeftBehind")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
            .and_then(|e| e.note)
            .ok_or_else(|| "no event yet".to_string())
    })
    .await
}

#[tokio::test]
async fn tenants_are_deleted_even_with_kafka_and_cassandra_down() {
    OperatorProcess::shared().await;
    let (retain, delete) = (unique("keep"), unique("drop"));
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {retain}\nspec:\n  deletionPolicy: Retain\n---\n\
         apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {delete}\nspec:\n  deletionPolicy: Delete\n"
    ));
    wait_ready(&tenants().await, &retain, "True", "Provisioned").await;
    wait_ready(&tenants().await, &delete, "True", "Provisioned").await;

    let _thaw = ThawOnDrop;
    stack_ctl(&["freeze", "kafka", "cassandra"]);

    let api = tenants().await;
    for name in [&retain, &delete] {
        api.delete(name, &DeleteParams::default()).await.expect("delete request");
    }
    for name in [&retain, &delete] {
        wait_until(&format!("Tenant {name} to be gone"), WAIT, || async {
            match api.get_opt(name).await.map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(t) => Err(format!("finalizers {:?}", t.metadata.finalizers)),
            }
        })
        .await;
    }

    let note = left_behind_note(&retain).await;
    assert!(note.contains(&format!("Kafka user {retain} with its ACLs")), "{note}");
    assert!(note.contains(&format!("Cassandra keyspace {}", retain.replace('-', "_"))), "{note}");
    let note = left_behind_note(&delete).await;
    assert!(note.contains(&format!("Kafka user {delete} with its ACLs (")), "the unreachable Kafka is named: {note}");
    let keyspace = delete.replace('-', "_");
    assert!(
        note.contains(&format!("Cassandra keyspace {keyspace} and role {keyspace} (")),
        "the unreachable Cassandra is named: {note}"
    );
}
