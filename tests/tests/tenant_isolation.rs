//! Tenant isolation (issue 14): no Tenant can reach, reset or delete what another owns.
//! Each hostile case is tried as a new user would, and checked with independent clients:
//! the would-be intruder's own credentials (when it has any) are refused, the victim's
//! data, passwords and ACLs are unchanged, and the victim stays Ready.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tributary_tests::{ClientConfigOf, CreateClient};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use scylla::client::session::Session;
use tributary::api::Tenant;
use tributary::external::kafka::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType, ScramChange, ScramMechanism,
};
use tributary_tests::kafka::{consume, consumer, produce, producer};
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{keyspace_count, secret, wait_credentials};
use tributary_tests::{
    TenantCleanup, cassandra_admin, cassandra_session, kafka_admin, kafka_admin_ext, kubectl_apply, ready_tenant,
    unique, wait_ready, wait_until,
};

const WAIT: Duration = Duration::from_secs(90);

async fn client() -> kube::Client {
    kube::Client::try_default().await.unwrap()
}

async fn tenants() -> Api<Tenant> {
    Api::all(client().await)
}

fn tenant_yaml(name: &str, spec: &str) -> String {
    format!("apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

fn topic_yaml(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
         spec:\n  partitions: 1\n"
    )
}

/// Whether Kafka accepts `user`/`password` (a metadata request needs no ACL, only a login).
async fn kafka_login(user: &str, password: &str) -> Result<(), String> {
    let settings = tributary_tests::kafka_user_settings(user, password);
    let admin: AdminClient<DefaultClientContext> =
        settings.client_config().create_client().map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, Duration::from_secs(5)).map(|_| ()))
        .await
        .unwrap()
        .map_err(|e| e.to_string())
}

async fn cassandra_login(user: &str, password: &str) -> Result<Session, String> {
    cassandra_session(user, password).await
}

async fn cassandra_as_admin() -> Session {
    let (user, password) = cassandra_admin();
    cassandra_login(&user, &password).await.expect("admin login")
}

async fn namespace_exists(name: &str) -> bool {
    Api::<Namespace>::all(client().await).get_opt(name).await.unwrap().is_some()
}

async fn acls_of(principal: &str) -> BTreeSet<AclBinding> {
    let ext = kafka_admin_ext(&kafka_admin());
    ext.describe_acls(AclBindingFilter::for_principal(principal)).await.unwrap().into_iter().collect()
}

/// A Ready victim tenant with a topic `data` holding one record, its Secret, and the guard
/// that deletes it.
async fn victim(prefix: &str) -> (String, BTreeMap<String, String>, TenantCleanup) {
    victim_with(prefix, "").await
}

async fn victim_with(prefix: &str, extra_spec: &str) -> (String, BTreeMap<String, String>, TenantCleanup) {
    let name = unique(prefix);
    let cleanup = ready_tenant(&name, extra_spec).await;
    kubectl_apply(&topic_yaml(&name, "data"));
    let creds = wait_credentials(&name).await;
    let settings = tributary_tests::kafka_user_settings(&name, &creds["kafka.password"]);
    let p = producer(&settings);
    wait_until(&format!("{name} to produce to its own topic"), WAIT, || async {
        produce(&p, &format!("{name}.data"), "k", "victim's record").await.map_err(|e| e.to_string())
    })
    .await;
    (name, creds, cleanup)
}

/// The victim is still Ready, and its own credentials still log in, read its record and
/// use its keyspace; its ACLs are the eight it had.
async fn assert_victim_untouched(name: &str, creds: &BTreeMap<String, String>) {
    wait_ready(&tenants().await, name, "True", "Provisioned").await;
    assert_eq!(&secret(name, "tributary-credentials").await, creds, "the victim's Secret is unchanged");
    let settings = tributary_tests::kafka_user_settings(name, &creds["kafka.password"]);
    let c = consumer(&settings, &format!("{name}.check-{}", unique("g")));
    let records = consume(&c, &format!("{name}.data"), 1, Duration::from_secs(30)).await;
    assert_eq!(
        records.expect("the victim still reads its topic with its own password"),
        [("k".to_string(), "victim's record".to_string())]
    );
    let session = cassandra_login(&creds["cassandra.username"], &creds["cassandra.password"])
        .await
        .expect("the victim's Cassandra password still works");
    session
        .query_unpaged(
            format!("SELECT * FROM system_schema.tables WHERE keyspace_name = '{}'", creds["cassandra.keyspace"]),
            &[],
        )
        .await
        .unwrap();
    let acls = acls_of(&format!("User:{name}")).await;
    assert_eq!(acls.len(), 8, "{acls:?}");
    assert!(acls.iter().all(|a| a.resource_name == format!("{name}.")), "{acls:?}");
}

/// The intruder got nothing: no namespace, no Secret, no ACLs, no Kafka login.
async fn assert_intruder_got_nothing(intruder: &str, namespace: &str) {
    assert!(
        !namespace_exists(namespace).await || {
            let secrets: Api<Secret> = Api::namespaced(client().await, namespace);
            secrets.get_opt("tributary-credentials").await.unwrap().is_none()
        },
        "no credentials were written for {intruder}"
    );
    assert!(acls_of(&format!("User:{intruder}")).await.is_empty(), "no ACLs for {intruder}");
}

async fn delete_tenant(name: &str) {
    let api = tenants().await;
    let _ = api.delete(name, &DeleteParams::default()).await;
    wait_until(&format!("Tenant {name} to be gone"), WAIT, || async {
        match api.get_opt(name).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;
}

#[tokio::test]
async fn claims_on_another_tenants_keyspace_prefixes_or_namespace_are_refused_and_the_victim_is_untouched() {
    OperatorProcess::shared().await;
    let (water, creds, _water_cleanup) = victim("iv").await;
    let keyspace = water.replace('-', "_");
    let cases = [
        ("ik", format!("  cassandra:\n    keyspace: {keyspace}\n"), "keyspace and role"),
        ("ip", format!("  kafka:\n    topicPrefix: \"{water}\"\n"), "topicPrefix"),
        ("ip2", format!("  kafka:\n    topicPrefix: \"{water}.data\"\n"), "topicPrefix"),
        // Kafka treats '.' and '_' in topic names alike: `<water>_data` would take `<water>.data`.
        ("iu", format!("  kafka:\n    topicPrefix: \"{water}_\"\n"), "topicPrefix"),
        ("ig", format!("  kafka:\n    groupPrefix: \"{water}.sink\"\n"), "groupPrefix"),
        ("it", format!("  kafka:\n    transactionalIdPrefix: \"{water}\"\n"), "transactionalIdPrefix"),
        ("in", format!("  namespace: {water}\n"), "namespace"),
    ];
    for (prefix, spec, field) in cases {
        let intruder = unique(prefix);
        kubectl_apply(&tenant_yaml(&intruder, &format!("  deletionPolicy: Delete\n{spec}")));
        let _intruder_cleanup = TenantCleanup::new(&intruder);
        let reason = if field == "namespace" { "NamespaceTaken" } else { "OwnershipConflict" };
        let message = wait_ready(&tenants().await, &intruder, "False", reason).await;
        assert!(message.contains(&format!("Tenant {water}")), "the holder is named: {message}");
        assert!(message.contains(field), "{message}");
        let status = tenants().await.get(&intruder).await.unwrap().status.unwrap();
        assert_eq!((status.namespace, status.credentials_secret), (None, None), "its status points at nothing");
        if field != "namespace" {
            assert_intruder_got_nothing(&intruder, &intruder).await;
        }
        // Deleting the refused intruder (deletionPolicy Delete) touches nothing of the victim.
        delete_tenant(&intruder).await;
    }
    // The operator's own namespace is never a tenant's (kube-* and default are refused by the
    // API server already, see the crds test).
    let operator = OperatorProcess::shared().await;
    let intruder = unique("isys");
    kubectl_apply(&tenant_yaml(&intruder, &format!("  namespace: {}\n", operator.namespace)));
    let _intruder_cleanup = TenantCleanup::new(&intruder);
    let message = wait_ready(&tenants().await, &intruder, "False", "NamespaceTaken").await;
    assert!(message.contains(&format!("namespace {} is a system namespace", operator.namespace)), "{message}");
    assert_intruder_got_nothing(&intruder, &operator.namespace).await;
    delete_tenant(&intruder).await;
    assert_victim_untouched(&water, &creds).await;
    assert_eq!(keyspace_count(&keyspace).await, 1, "the victim's keyspace survived the intruders' deletion");
}

#[tokio::test]
async fn an_existing_kafka_user_or_cassandra_role_is_not_taken_over_unless_the_spec_adopts_it() {
    OperatorProcess::shared().await;
    let billing = unique("billing");
    let ext = kafka_admin_ext(&kafka_admin());
    let change = ScramChange::Upsert {
        user: billing.clone(),
        mechanism: ScramMechanism::Sha512,
        iterations: 4096,
        password: "billing-own-password".into(),
    };
    ext.alter_scram_credentials(vec![change]).await.unwrap()[0].1.clone().unwrap();
    wait_until("the pre-existing user to log in", WAIT, || kafka_login(&billing, "billing-own-password")).await;

    kubectl_apply(&tenant_yaml(&billing, "  deletionPolicy: Delete\n"));
    let _billing_cleanup = TenantCleanup::new(&billing);
    let message = wait_ready(&tenants().await, &billing, "False", "OwnershipConflict").await;
    assert!(message.contains(&format!("Kafka principal User:{billing} exists with a SCRAM credential")), "{message}");
    assert!(message.contains("spec.adopt.kafkaUser: true"), "{message}");
    assert!(!namespace_exists(&billing).await, "nothing written, not even the namespace");
    kafka_login(&billing, "billing-own-password").await.expect("the existing user's password is unchanged");

    // The admin decides to take it over: only then is the password replaced.
    kubectl_apply(&tenant_yaml(&billing, "  deletionPolicy: Delete\n  adopt:\n    kafkaUser: true\n"));
    wait_ready(&tenants().await, &billing, "True", "Provisioned").await;
    let creds = wait_credentials(&billing).await;
    wait_until("the old password to be refused", WAIT, || async {
        match kafka_login(&billing, "billing-own-password").await {
            Err(_) => Ok(()),
            Ok(()) => Err("still accepted".to_string()),
        }
    })
    .await;
    kafka_login(&billing, &creds["kafka.password"]).await.expect("the adopted user logs in with the Secret's password");
    delete_tenant(&billing).await;

    // A Cassandra role of that name: same rule.
    let role = unique("ledger").replace('-', "_");
    let admin = cassandra_as_admin().await;
    admin
        .query_unpaged(format!("CREATE ROLE {role} WITH PASSWORD = 'ledger-own' AND LOGIN = true"), &[])
        .await
        .unwrap();
    admin.query_unpaged(format!("GRANT SELECT ON KEYSPACE system_auth TO {role}"), &[]).await.unwrap();
    let tenant = unique("ledger");
    kubectl_apply(&tenant_yaml(&tenant, &format!("  deletionPolicy: Delete\n  cassandra:\n    keyspace: {role}\n")));
    let _tenant_cleanup = TenantCleanup::new(&tenant);
    let message = wait_ready(&tenants().await, &tenant, "False", "OwnershipConflict").await;
    assert!(message.contains(&format!("Cassandra role {role} exists")), "{message}");
    delete_tenant(&tenant).await;
    let session = cassandra_login(&role, "ledger-own").await.expect("the role's password is unchanged");
    session
        .query_unpaged("SELECT role FROM system_auth.roles LIMIT 1", &[])
        .await
        .expect("and its own grants are kept (not revoked), even after the refused Tenant was deleted with Delete");
    admin.query_unpaged(format!("DROP ROLE {role}"), &[]).await.unwrap();
}

#[tokio::test]
async fn a_planted_secret_in_a_namespace_the_tenant_did_not_create_is_never_adopted() {
    OperatorProcess::shared().await;
    let squat = unique("squat");
    let namespaces: Api<Namespace> = Api::all(client().await);
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": squat}})).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let planted: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "tributary-credentials"},
        "stringData": {"kafka.password": "planted-password", "cassandra.password": "planted-password"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client().await, &squat).create(&PostParams::default(), &planted).await.unwrap();

    kubectl_apply(&tenant_yaml(&squat, "  deletionPolicy: Delete\n"));
    let _squat_cleanup = TenantCleanup::new(&squat);
    let message = wait_ready(&tenants().await, &squat, "False", "NamespaceTaken").await;
    assert!(message.contains("was not created by Tenant"), "{message}");
    assert!(message.contains("spec.adopt.namespace: true"), "{message}");
    assert!(kafka_login(&squat, "planted-password").await.is_err(), "no Kafka user with the planted password");
    assert!(acls_of(&format!("User:{squat}")).await.is_empty());

    // Even when the admin adopts the namespace, the planted password is replaced, not used.
    kubectl_apply(&tenant_yaml(&squat, "  deletionPolicy: Delete\n  adopt:\n    namespace: true\n"));
    wait_ready(&tenants().await, &squat, "True", "Provisioned").await;
    let creds = secret(&squat, "tributary-credentials").await;
    assert_ne!(creds["kafka.password"], "planted-password");
    assert_ne!(creds["cassandra.password"], "planted-password");
    wait_until("the Secret's password to log in", WAIT, || kafka_login(&squat, &creds["kafka.password"])).await;
    assert!(kafka_login(&squat, "planted-password").await.is_err(), "the planted password never logs in");
    let role = squat.replace('-', "_");
    assert!(cassandra_login(&role, "planted-password").await.is_err());
    delete_tenant(&squat).await;
    let _ = namespaces.delete(&squat, &DeleteParams::default()).await;
}

#[tokio::test]
async fn a_team_made_quoted_table_and_the_admins_deny_acl_leave_the_tenant_ready() {
    OperatorProcess::shared().await;
    // A team that may change its schema (it asked for it) makes a quoted table.
    let (tenant, creds, _tenant_cleanup) = victim_with("quoted", "  cassandra:\n    schemaChanges: true\n").await;
    let keyspace = &creds["cassandra.keyspace"];
    let team = cassandra_login(&creds["cassandra.username"], &creds["cassandra.password"]).await.unwrap();
    team.query_unpaged(format!("CREATE TABLE {keyspace}.\"Foo\" (k int PRIMARY KEY, v text)"), &[]).await.unwrap();

    // The admin denies the tenant one topic of its own prefix and grants a stray Allow.
    let principal = format!("User:{tenant}");
    let deny = AclBinding {
        permission: AclPermission::Deny,
        ..AclBinding::allow(
            &principal,
            ResourceType::Topic,
            PatternType::Literal,
            format!("{tenant}.data"),
            AclOperation::Write,
        )
    };
    let stray =
        AclBinding::allow(&principal, ResourceType::Topic, PatternType::Literal, "elsewhere", AclOperation::Read);
    let ext = kafka_admin_ext(&kafka_admin());
    for result in ext.create_acls(vec![deny.clone(), stray.clone()]).await.unwrap() {
        result.unwrap();
    }
    // The next resync revokes the table grants Cassandra gave the creator (the keyspace
    // grants cover the table) and the stray Allow; it keeps the Deny.
    let admin = cassandra_as_admin().await;
    let role = creds["cassandra.username"].clone();
    wait_until("the resync to converge grants and ACLs", WAIT, || async {
        let listed = admin
            .query_unpaged(format!("LIST ALL PERMISSIONS OF {role} NORECURSIVE"), &[])
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?
            .rows::<(String, String, String, String)>()
            .map_err(|e| e.to_string())?
            .filter_map(|r| r.ok())
            .filter(|(_, _, resource, _)| resource.contains("Foo"))
            .count();
        let acls = acls_of(&principal).await;
        if listed == 0 && !acls.contains(&stray) { Ok(()) } else { Err(format!("Foo grants {listed}, {acls:?}")) }
    })
    .await;
    let acls = acls_of(&principal).await;
    assert!(acls.contains(&deny), "the admin's Deny is kept: {acls:?}");
    wait_ready(&tenants().await, &tenant, "True", "Provisioned").await;
    team.query_unpaged(format!("INSERT INTO {keyspace}.\"Foo\" (k, v) VALUES (1, 'still mine')"), &[])
        .await
        .expect("the team still uses its table through the keyspace grants");
    let settings = tributary_tests::kafka_user_settings(&tenant, &creds["kafka.password"]);
    let refused = produce(&producer(&settings), &format!("{tenant}.data"), "k", "v").await;
    assert!(refused.is_err(), "the Deny holds: the tenant may not write {tenant}.data");
    delete_tenant(&tenant).await;
}

/// The Kafka password in a sink's Secret.
async fn sink_password(namespace: &str, sink: &str) -> String {
    let secrets: Api<Secret> = Api::namespaced(client().await, namespace);
    let name = format!("tributary-sink-{sink}");
    let found = wait_until(&format!("the sink's Secret {name}"), WAIT, || async {
        secrets.get_opt(&name).await.map_err(|e| e.to_string())?.ok_or_else(|| "not yet".to_string())
    })
    .await;
    String::from_utf8(found.data.unwrap()["kafka.password"].0.clone()).unwrap()
}

fn sink_yaml(namespace: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: CassandraSink\nmetadata:\n  name: rows\n  namespace: {namespace}\n\
         spec:\n  topic: data\n  table: rows\n  columns:\n  - {{name: id, type: text}}\n  partitionKey: [id]\n"
    )
}

async fn topics_with_prefix(prefix: &str) -> Vec<String> {
    let admin = kafka_admin();
    let metadata = tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, Duration::from_secs(10)))
        .await
        .unwrap()
        .unwrap();
    metadata.topics().iter().map(|t| t.name().to_string()).filter(|n| n.starts_with(prefix)).collect()
}

#[tokio::test]
async fn deleting_a_tenant_removes_every_principal_and_its_data_as_the_policy_says() {
    OperatorProcess::shared().await;
    for policy in ["Delete", "Retain"] {
        let tenant = unique(&policy.to_lowercase()[..3]);
        kubectl_apply(&tenant_yaml(
            &tenant,
            &format!(
                "  deletionPolicy: {policy}\n  kafka:\n    quotas:\n      producerByteRate: 1048576\n    limits:\n      \
                 maxSinks: 4\n"
            ),
        ));
        let _tenant_cleanup = TenantCleanup::new(&tenant);
        wait_ready(&tenants().await, &tenant, "True", "Provisioned").await;
        let creds = wait_credentials(&tenant).await;
        let keep = format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: keep\n  namespace: {tenant}\n\
             spec:\n  partitions: 1\n  deletionPolicy: Retain\n"
        );
        kubectl_apply(&format!("{}---\n{}---\n{keep}", topic_yaml(&tenant, "data"), sink_yaml(&tenant)));
        let topic_api: Api<tributary::api::Topic> = Api::namespaced(client().await, &tenant);
        wait_ready(&topic_api, "keep", "True", "Provisioned").await;
        let sink_user = format!("{tenant}.sink.rows");
        let sink_pw = sink_password(&tenant, "rows").await;
        // The sink user's share: half the tenant's quota over its 4 possible sinks, so the
        // tenant's principals together never pass the tenant's quota.
        wait_until("the sink user to log in with its ACLs and its share of the tenant's quotas", WAIT, || async {
            kafka_login(&sink_user, &sink_pw).await?;
            let q = tributary_tests::KafkaWire::new(tributary_tests::kafka_admin_settings())
                .describe_user(&sink_user)
                .await
                .map_err(|e| e.to_string())?;
            if acls_of(&format!("User:{sink_user}")).await.is_empty() || q.get("producer_byte_rate") != Some(&131_072.0)
            {
                return Err(format!("quotas {q:?}"));
            }
            Ok(())
        })
        .await;
        let dlq = format!("{tenant}.dlq.rows");
        wait_until("the dead-letter topic", WAIT, || async {
            let t = topics_with_prefix(&dlq).await;
            if t.is_empty() { Err("not yet".to_string()) } else { Ok(()) }
        })
        .await;

        delete_tenant(&tenant).await;
        for (user, password) in [(tenant.as_str(), creds["kafka.password"].as_str()), (&sink_user, &sink_pw)] {
            wait_until(&format!("{user}'s login to be refused"), WAIT, || async {
                match kafka_login(user, password).await {
                    Err(_) => Ok(()),
                    Ok(()) => Err("still accepted".to_string()),
                }
            })
            .await;
            assert!(acls_of(&format!("User:{user}")).await.is_empty(), "{user}'s ACLs are gone");
        }
        let role = &creds["cassandra.username"];
        assert!(cassandra_login(role, &creds["cassandra.password"]).await.is_err(), "the role is gone ({policy})");
        let topics = topics_with_prefix(&format!("{tenant}.")).await;
        let keyspace = keyspace_count(&creds["cassandra.keyspace"]).await;
        if policy == "Delete" {
            assert_eq!(
                topics,
                [format!("{tenant}.keep")],
                "Delete removes the topics and the dead-letter topic, not a Topic that says Retain itself"
            );
            assert_eq!(keyspace, 0, "Delete drops the keyspace");
        } else {
            assert_eq!(topics.len(), 3, "Retain keeps the topics and the dead-letter topic: {topics:?}");
            assert_eq!(keyspace, 1, "Retain keeps the keyspace");
            // A new Tenant of the same name does not inherit the retained data silently.
            let fresh_ns = unique("fresh");
            kubectl_apply(&tenant_yaml(&tenant, &format!("  namespace: {fresh_ns}\n")));
            let message = wait_ready(&tenants().await, &tenant, "False", "OwnershipConflict").await;
            assert!(message.contains(&format!("Kafka topics under prefix {tenant}.")), "{message}");
            assert!(
                message.contains(&format!("Cassandra keyspace {} exists", creds["cassandra.keyspace"])),
                "{message}"
            );
            delete_tenant(&tenant).await;
            assert_eq!(topics_with_prefix(&format!("{tenant}.")).await.len(), 3, "the refused one deleted nothing");
        }
    }
}

#[tokio::test]
async fn a_newcomer_beyond_the_limits_is_refused_while_the_older_ones_stay_ready() {
    use tributary::api::Topic;
    OperatorProcess::shared().await;
    let tenant = unique("lim");
    let _tenant_cleanup = ready_tenant(&tenant, "  kafka:\n    limits:\n      maxTopics: 2\n").await;
    let topics: Api<Topic> = Api::namespaced(client().await, &tenant);
    kubectl_apply(&topic_yaml(&tenant, "data"));
    wait_ready(&topics, "data", "True", "Provisioned").await;
    // The sink's dead-letter topic is the tenant's second topic.
    kubectl_apply(&sink_yaml(&tenant));
    let dlq = format!("{tenant}.dlq.rows");
    wait_until("the dead-letter topic", WAIT, || async {
        if topics_with_prefix(&dlq).await.is_empty() { Err("not yet".to_string()) } else { Ok(()) }
    })
    .await;
    // Creation order is creationTimestamp (seconds), then name: "zlate" sorts after the sink
    // "rows" even when both were created within the same second.
    kubectl_apply(&topic_yaml(&tenant, "zlate"));
    let message = wait_ready(&topics, "zlate", "False", "GuardrailViolated").await;
    assert!(message.contains("may have 2 topics and already has 2 (dead-letter topics included)"), "{message}");
    assert!(topics_with_prefix(&format!("{tenant}.zlate")).await.is_empty(), "nothing created in Kafka");

    // The older Topic is reconciled again (its spec changes) and stays Ready.
    let patch = serde_json::json!({"spec": {"config": {"retention.ms": "3600000"}}});
    topics.patch("data", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    wait_until("the older Topic to be reconciled at its new generation and Ready", WAIT, || async {
        let t = topics.get("data").await.map_err(|e| e.to_string())?;
        let status = t.status.clone().unwrap_or_default();
        let ready = status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        if ready && status.observed_generation == t.metadata.generation { Ok(()) } else { Err(format!("{status:?}")) }
    })
    .await;

    // Harmful config values are refused unless the Tenant allows them.
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: forever\n  namespace: {tenant}\n\
         spec:\n  partitions: 1\n  config:\n    retention.ms: \"-1\"\n"
    ));
    let message = wait_ready(&topics, "forever", "False", "GuardrailViolated").await;
    assert!(message.contains("retention.ms -1 is beyond") && message.contains("maxRetentionMs"), "{message}");
    delete_tenant(&tenant).await;
}

#[tokio::test]
async fn a_status_naming_another_tenants_topic_neither_conflicts_with_it_nor_deletes_it() {
    use tributary::api::Topic;
    OperatorProcess::shared().await;
    let (water, creds, _water_cleanup) = victim("sv").await;
    let victim_topics: Api<Topic> = Api::namespaced(client().await, &water);
    wait_ready(&victim_topics, "data", "True", "Provisioned").await;
    // Another tenant's Topic is refused by its guardrails, so the operator keeps its status
    // as it is; whoever may write status points its kafkaName at the victim's topic.
    let other = unique("so");
    let _other_cleanup = ready_tenant(&other, "  kafka:\n    limits:\n      maxTopics: 0\n").await;
    let other_topics: Api<Topic> = Api::namespaced(client().await, &other);
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: x\n  namespace: {other}\n\
         spec:\n  partitions: 1\n  deletionPolicy: Delete\n"
    ));
    wait_ready(&other_topics, "x", "False", "GuardrailViolated").await;
    let spoof = serde_json::json!({"status": {"kafkaName": format!("{water}.late")}});
    other_topics.patch_status("x", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&spoof)).await.unwrap();

    // The victim's new Topic of that name is created, not refused as a Conflict.
    kubectl_apply(&topic_yaml(&water, "late"));
    wait_ready(&victim_topics, "late", "True", "Provisioned").await;
    // Deleting the spoofed Topic (deletionPolicy Delete) deletes its own name only.
    other_topics.delete("x", &DeleteParams::default()).await.unwrap();
    wait_until("the spoofed Topic to be gone", WAIT, || async {
        if other_topics.get_opt("x").await.map_err(|e| e.to_string())?.is_none() {
            Ok(())
        } else {
            Err("still there".into())
        }
    })
    .await;
    assert_eq!(
        topics_with_prefix(&format!("{water}.data")).await,
        [format!("{water}.data")],
        "the victim's topic stays"
    );
    assert_victim_untouched(&water, &creds).await;
    delete_tenant(&other).await;
}

#[tokio::test]
async fn consumer_groups_that_exist_under_the_group_prefix_are_not_taken_without_adopt() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    OperatorProcess::shared().await;
    // The admin's application has committed offsets under a group id.
    let apps = unique("apps");
    let source = format!("{apps}-source");
    tributary_tests::kafka::create_topic(&kafka_admin(), &source, 1, 3).await;
    let group = format!("{apps}.billing");
    let admin_consumer: BaseConsumer =
        tributary_tests::kafka_admin_settings().client_config().set("group.id", &group).create_client().unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(&source, 0, Offset::Offset(0)).unwrap();
    admin_consumer.commit(&offsets, CommitMode::Sync).expect("the admin's commit");

    let tenant = unique("grp");
    let spec = format!("  deletionPolicy: Delete\n  kafka:\n    groupPrefix: \"{apps}.\"\n");
    kubectl_apply(&tenant_yaml(&tenant, &spec));
    let _tenant_cleanup = TenantCleanup::new(&tenant);
    let message = wait_ready(&tenants().await, &tenant, "False", "OwnershipConflict").await;
    assert!(message.contains(&format!("Kafka consumer groups under prefix {apps}. exist ({group}")), "{message}");
    assert!(message.contains("spec.adopt.kafkaGroups: true"), "{message}");
    assert!(acls_of(&format!("User:{tenant}")).await.is_empty(), "no ACL on the admin's group");

    kubectl_apply(&tenant_yaml(&tenant, &format!("{spec}  adopt:\n    kafkaGroups: true\n")));
    wait_ready(&tenants().await, &tenant, "True", "Provisioned").await;
    let acls = acls_of(&format!("User:{tenant}")).await;
    assert!(acls.iter().any(|a| a.resource_type == ResourceType::Group && a.resource_name == format!("{apps}.")));
    delete_tenant(&tenant).await;
}
