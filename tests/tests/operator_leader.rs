//! Two operator replicas: only the holder of the Lease reconciles; when it stops, the
//! standby takes the Lease and carries on. (A test binary of its own: no other operator
//! runs beside these two.)

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tributary_tests::operator::{OperatorProcess, ensure_namespace};
use tributary_tests::{install_crds, ready_tenant, unique, wait_until};

const WAIT: Duration = Duration::from_secs(90);

async fn holder(lease_ns: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(kube::Client::try_default().await.ok()?, lease_ns);
    leases.get_opt("tributary-operator").await.ok()??.spec?.holder_identity
}

#[tokio::test]
async fn only_the_lease_holder_reconciles_and_a_standby_takes_over() {
    install_crds().await;
    let lease_ns = unique("leader");
    ensure_namespace(&lease_ns).await;
    let a = OperatorProcess::spawn(&unique("op-a"), &lease_ns);
    let b = OperatorProcess::spawn(&unique("op-b"), &lease_ns);

    let (leader, standby) = wait_until("one of the two operators to lead", WAIT, || async {
        let (la, lb) = (a.metric("tributary_leader").await?, b.metric("tributary_leader").await?);
        match (la, lb) {
            (1.0, 0.0) => Ok((&a, &b)),
            (0.0, 1.0) => Ok((&b, &a)),
            other => Err(format!("leader gauges {other:?}")),
        }
    })
    .await;
    assert_eq!(holder(&lease_ns).await.as_deref(), Some(leader.identity.as_str()), "the Lease names the leader");
    // A standby is ready (it serves probes) once it has checked the CRDs and joined the election.
    wait_until("the standby to report ready", WAIT, || async { standby.get("/readyz").await }).await;
    assert_eq!(standby.metric("tributary_leader").await.unwrap(), 0.0);

    let first = unique("tl");
    let first_cleanup = ready_tenant(&first, "").await;
    assert!(leader.metric("tributary_reconciles_total").await.unwrap() >= 1.0);
    assert_eq!(standby.metric("tributary_reconciles_total").await.unwrap(), 0.0, "the standby reconciled nothing");
    assert_eq!(standby.metric("tributary_leader").await.unwrap(), 0.0);

    leader.terminate();
    wait_until("the leader to exit after SIGTERM", WAIT, || async {
        if leader.alive() { Err("still running".to_string()) } else { Ok(()) }
    })
    .await;
    standby.wait_leader().await;
    assert_eq!(holder(&lease_ns).await.as_deref(), Some(standby.identity.as_str()), "the standby holds the Lease");

    let second = unique("tl");
    let second_cleanup = ready_tenant(&second, "").await;
    assert!(standby.metric("tributary_reconciles_total").await.unwrap() >= 1.0, "the new leader reconciles");
    // The Tenants go while an operator still runs to take them down.
    drop((first_cleanup, second_cleanup));
    standby.terminate();
}
