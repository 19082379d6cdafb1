//! Two operator replicas: only the holder of the Lease reconciles; when it stops, the
//! standby takes the Lease and carries on. (A test binary of its own: no other operator
//! runs beside these two.)

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tributary::api::Tenant;
use tributary::api::conditions::{READY, status_of};
use tributary_tests::operator::{OperatorProcess, ensure_namespace};
use tributary_tests::{install_crds, kubectl, unique, wait_until};

const WAIT: Duration = Duration::from_secs(90);

async fn holder(lease_ns: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(kube::Client::try_default().await.ok()?, lease_ns);
    leases.get_opt("tributary-operator").await.ok()??.spec?.holder_identity
}

async fn tenant_ready(name: &str) {
    let tenants: Api<Tenant> = Api::all(kube::Client::try_default().await.unwrap());
    wait_until(&format!("Tenant {name} to become Ready"), WAIT, || async {
        let t = tenants.get_opt(name).await.map_err(|e| e.to_string())?.ok_or("no tenant")?;
        let ready = t.status.as_ref().and_then(|s| status_of(&s.conditions, READY)).map(str::to_string);
        if ready.as_deref() == Some("True") { Ok(()) } else { Err(format!("{ready:?}")) }
    })
    .await;
}

fn create_tenant(name: &str) {
    let path = std::env::temp_dir().join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!("apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec: {{}}\n"),
    )
    .unwrap();
    kubectl(&["apply", "-f", path.to_str().unwrap()]);
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
    assert_eq!(standby.get("/readyz").await.as_deref(), Ok("ok"), "a standby is ready (it serves probes)");

    let first = unique("tl");
    create_tenant(&first);
    tenant_ready(&first).await;
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
    create_tenant(&second);
    tenant_ready(&second).await;
    assert!(standby.metric("tributary_reconciles_total").await.unwrap() >= 1.0, "the new leader reconciles");
    standby.terminate();
}
