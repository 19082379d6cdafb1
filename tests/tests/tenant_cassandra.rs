//! The tenant's Cassandra side through the operator: a keyspace, a login role that can use
//! only that keyspace (grants converge), credentials in the Secret that really log in, and
//! deletion by policy.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams};
use scylla::client::session::Session;
use tributary::api::Tenant;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::{
    cassandra_admin, cassandra_contact, cassandra_session, kubectl_apply, ready_tenant, unique, wait_ready, wait_until,
};

const WAIT: Duration = Duration::from_secs(60);

async fn login(user: &str, password: &str) -> Result<Session, String> {
    cassandra_session(user, password).await
}

async fn admin() -> Session {
    let (user, password) = cassandra_admin();
    login(&user, &password).await.expect("admin login")
}

/// Logs in with the Cassandra credentials of the tenant's Secret, as an application would.
async fn tenant_session(namespace: &str) -> (Session, String) {
    let secrets: Api<Secret> = Api::namespaced(Client::try_default().await.unwrap(), namespace);
    let data = secrets.get("tributary-credentials").await.unwrap().data.unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(text("cassandra.contact.points"), cassandra_contact());
    let session = wait_until("the tenant role to log in", WAIT, || async {
        login(&text("cassandra.username"), &text("cassandra.password")).await
    })
    .await;
    (session, text("cassandra.keyspace"))
}

async fn permissions(admin: &Session, role: &str) -> BTreeSet<(String, String)> {
    let result = admin.query_unpaged(format!("LIST ALL PERMISSIONS OF {role} NORECURSIVE"), &[]).await.unwrap();
    if !result.is_rows() {
        return BTreeSet::new(); // Cassandra's answer to an empty list
    }
    let rows = result.into_rows_result().unwrap();
    rows.rows::<(String, String, String, String)>()
        .unwrap()
        .map(|r| r.unwrap())
        .map(|(_, _, res, p)| (res, p))
        .collect()
}

#[tokio::test]
async fn a_tenant_role_uses_its_own_keyspace_and_nothing_else() {
    OperatorProcess::shared().await;
    let (water, bts) = (unique("cw"), unique("cb"));
    let _water_cleanup = ready_tenant(&water, "").await;
    let _bts_cleanup = ready_tenant(&bts, "").await;
    let (session, keyspace) = tenant_session(&water).await;
    assert_eq!(keyspace, water.replace('-', "_"));

    // Rows, not schema, by default: the table comes from the operator (a sink) or the admin.
    let err = session
        .query_unpaged(format!("CREATE TABLE {keyspace}.readings (station text PRIMARY KEY, ph double)"), &[])
        .await
        .expect_err("no schema changes without spec.cassandra.schemaChanges");
    assert!(err.to_string().contains("doesn't have the right to perform the query"), "{err}");
    admin()
        .await
        .query_unpaged(format!("CREATE TABLE {keyspace}.readings (station text PRIMARY KEY, ph double)"), &[])
        .await
        .unwrap();
    // Table options that load the node every tenant shares are out of reach.
    for option in ["gc_grace_seconds = 0", "memtable_flush_period_in_ms = 1"] {
        let err = session
            .query_unpaged(format!("ALTER TABLE {keyspace}.readings WITH {option}"), &[])
            .await
            .expect_err("the tenant may not alter its tables");
        assert!(err.to_string().contains("doesn't have the right to perform the query"), "{option}: {err}");
    }
    session
        .query_unpaged(format!("INSERT INTO {keyspace}.readings (station, ph) VALUES (?, ?)"), ("s1", 7.5))
        .await
        .expect("and write them");
    let (ph,): (f64,) = session
        .query_unpaged(format!("SELECT ph FROM {keyspace}.readings WHERE station = 's1'"), &[])
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    assert_eq!(ph, 7.5);

    let other = bts.replace('-', "_");
    let err = session
        .query_unpaged(format!("CREATE TABLE {other}.stolen (k text PRIMARY KEY)"), &[])
        .await
        .expect_err("another tenant's keyspace is refused");
    assert!(err.to_string().contains("doesn't have the right to perform the query"), "{err}");
    let err = session
        .query_unpaged("CREATE ROLE intruder WITH PASSWORD = 'x' AND LOGIN = true", &[])
        .await
        .expect_err("a tenant cannot create roles");
    assert!(err.to_string().contains("doesn't have the right to perform the query"), "{err}");
}

#[tokio::test]
async fn a_tenant_that_asks_for_schema_changes_may_create_and_alter_its_tables() {
    OperatorProcess::shared().await;
    let tenant = unique("cs");
    let _cleanup = ready_tenant(&tenant, "  cassandra:\n    schemaChanges: true\n").await;
    let (session, keyspace) = tenant_session(&tenant).await;
    session
        .query_unpaged(format!("CREATE TABLE {keyspace}.events (id text PRIMARY KEY, v int)"), &[])
        .await
        .expect("schema changes were asked for");
    session.query_unpaged(format!("ALTER TABLE {keyspace}.events ADD note text"), &[]).await.unwrap();
    // Even with schema rights, the node's guardrails keep table options that load the node
    // every tenant shares out of reach (stack/config/cassandra/cassandra.yaml).
    for option in ["gc_grace_seconds = 0", "memtable_flush_period_in_ms = 1"] {
        let err = session
            .query_unpaged(format!("ALTER TABLE {keyspace}.events WITH {option}"), &[])
            .await
            .expect_err("a disallowed table property");
        assert!(err.to_string().contains("not allowed"), "{option}: {err}");
    }
    session.query_unpaged(format!("INSERT INTO {keyspace}.events (id, v) VALUES ('a', 1)"), &[]).await.unwrap();
}

#[tokio::test]
async fn grants_changed_by_hand_converge_back_to_the_tenant_set() {
    OperatorProcess::shared().await;
    let tenant = unique("cg");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let role = tenant.replace('-', "_");
    let admin = admin().await;
    let desired = wait_until("the tenant grants", WAIT, || async {
        let set = permissions(&admin, &role).await;
        if set.len() == 2 { Ok(set) } else { Err(format!("{set:?}")) }
    })
    .await;
    assert!(desired.iter().all(|(res, _)| res == &format!("<keyspace {role}>")), "{desired:?}");

    admin.query_unpaged(format!("GRANT SELECT ON ALL KEYSPACES TO {role}"), &[]).await.unwrap();
    admin.query_unpaged(format!("REVOKE MODIFY ON KEYSPACE {role} FROM {role}"), &[]).await.unwrap();
    wait_until("the grants to converge back (next resync)", Duration::from_secs(90), || async {
        let set = permissions(&admin, &role).await;
        if set == desired { Ok(()) } else { Err(format!("{set:?}")) }
    })
    .await;
}

#[tokio::test]
async fn deleting_a_tenant_keeps_its_keyspace_with_retain_and_drops_it_with_delete() {
    OperatorProcess::shared().await;
    let (keep, drop) = (unique("ck"), unique("cd"));
    let _keep_cleanup = ready_tenant(&keep, "").await;
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {drop}\nspec:\n  deletionPolicy: Delete\n"
    ));
    let (session, keyspace) = tenant_session(&keep).await;
    admin().await.query_unpaged(format!("CREATE TABLE {keyspace}.t (k text PRIMARY KEY)"), &[]).await.unwrap();
    session.query_unpaged(format!("INSERT INTO {keyspace}.t (k) VALUES ('kept')"), &[]).await.unwrap();
    let tenants: Api<Tenant> = Api::all(Client::try_default().await.unwrap());
    wait_ready(&tenants, &drop, "True", "Provisioned").await;
    tenant_session(&drop).await;

    for name in [&keep, &drop] {
        tenants.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in [&keep, &drop] {
        wait_until(&format!("Tenant {name} to be gone"), WAIT, || async {
            if tenants.get_opt(name).await.map_err(|e| e.to_string())?.is_none() {
                Ok(())
            } else {
                Err("still there".into())
            }
        })
        .await;
    }
    let admin = admin().await;
    let keyspaces = |name: String| async move { tributary_tests::pipeline::keyspace_count(&name).await };
    assert_eq!(keyspaces(keyspace.clone()).await, 1, "Retain keeps the keyspace");
    let (k,): (String,) = admin
        .query_unpaged(format!("SELECT k FROM {keyspace}.t"), &[])
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    assert_eq!(k, "kept", "and its rows");
    assert_eq!(keyspaces(drop.replace('-', "_")).await, 0, "Delete drops the keyspace");
    let err = login(&drop.replace('-', "_"), "anything").await.expect_err("the Delete tenant's role is gone");
    assert!(err.contains("Provided username") || err.contains("incorrect"), "{err}");
}
