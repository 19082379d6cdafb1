//! Managed Kafka (issue 16, item 3), both halves on the real brokers:
//! - The operator's principal is not a super user (MSK, Aiven and Confluent Cloud do not let
//!   you set `super.users`): it gets exactly the ACLs `operator_acls` lists (the README's
//!   table). That it is no super user is checked with its own credentials (its produce is
//!   refused). A whole tenant comes up through it: SCRAM user, ACLs, quotas, Secret, topic,
//!   a sink with its own user, rows in Cassandra; deleting the Tenant removes both users.
//! - A principal issued outside Kafka's API (a SASL/PLAIN user fixed in the brokers' JAAS
//!   config, as a managed Kafka's API key): the Tenant names it and a Secret with its password
//!   (`spec.kafka.externalUser`). Without the Secret the Tenant says which to create; with it
//!   the tenant's ACLs go to that principal, its bundle says PLAIN, its sink runs as it and
//!   writes every record, no SCRAM user is made for it or its sink; a second Tenant naming
//!   the same principal is refused; deleting the Tenant removes the ACLs and leaves the login.
//!
//! One test and one operator (of this binary alone, with that principal): the two parts run
//! in turn.

use std::collections::BTreeMap;
use std::time::Duration;
use tributary_tests::{ClientConfigOf, CreateClient};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PostParams};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tributary::api::{CassandraSink, Tenant};
use tributary::external::kafka::{
    AclBindingFilter, ClientSettings, DEFAULT_SCRAM_ITERATIONS, ScramChange, ScramMechanism, operator_acls,
    user_principal,
};
use tributary_sink::seed::Dataset;
use tributary_tests::kafka::{create_topic, delete_topic};
use tributary_tests::operator::{OperatorProcess, ensure_namespace};
use tributary_tests::pipeline::{apply_water_example, cassandra, expected, produce, rows, wait_credentials};
use tributary_tests::{AdminExt, KafkaWire};
use tributary_tests::{
    install_crds, kafka_admin, kafka_admin_ext, kafka_admin_settings, kafka_user_settings, kubectl_apply, unique,
    wait_ready, wait_until,
};

const WAIT: Duration = Duration::from_secs(120);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} (make stack-env)"))
}

async fn scram_users() -> std::collections::BTreeSet<String> {
    KafkaWire::new(kafka_admin_settings()).scram_users().await.unwrap()
}

/// The water example in `tenant`'s namespace, 200 records produced with the tenant's bundle,
/// and all 200 rows in Cassandra.
async fn records_flow(tenant: &str) {
    apply_water_example(tenant, 1);
    let sinks: Api<CassandraSink> = Api::namespaced(Client::try_default().await.unwrap(), tenant);
    wait_ready(&sinks, "readings", "True", "Running").await;
    let run = unique("run");
    produce(tenant, "water", &run, 200).await;
    let session = cassandra().await;
    let keyspace = tenant.replace('-', "_");
    let want = expected(Dataset::Water, &run, 200);
    wait_until(&format!("{tenant}'s 200 records in Cassandra"), WAIT, || async {
        let got = rows(&session, Dataset::Water, &keyspace, &run).await;
        if got == want { Ok(()) } else { Err(format!("{} of {} rows", got.len(), want.len())) }
    })
    .await;
}

async fn acls_of(ext: &AdminExt, user: &str) -> Vec<String> {
    let acls = ext.describe_acls(AclBindingFilter::for_principal(user_principal(user))).await.unwrap();
    acls.iter()
        .map(|a| format!("{:?} {:?} {} {:?}", a.resource_type, a.pattern_type, a.resource_name, a.operation))
        .collect()
}

#[tokio::test]
async fn managed_kafka_an_operator_without_super_user_and_a_tenant_with_an_external_principal() {
    install_crds().await;
    let admin = kafka_admin();
    let ext = kafka_admin_ext(&admin);
    let user = unique("tributary-op");
    let password = format!("{user}-password");
    let upsert = ScramChange::Upsert {
        user: user.clone(),
        mechanism: ScramMechanism::Sha512,
        iterations: DEFAULT_SCRAM_ITERATIONS,
        password: password.clone(),
    };
    ext.alter_scram_credentials(vec![upsert]).await.unwrap()[0].1.clone().unwrap();
    for created in ext.create_acls(operator_acls(&user)).await.unwrap() {
        created.unwrap();
    }

    // No super user: with its own credentials it cannot write to a topic.
    let probe_topic = unique("managed-probe");
    create_topic(&admin, &probe_topic, 1, 3).await;
    let producer: FutureProducer = kafka_user_settings(&user, &password)
        .client_config()
        .set("message.timeout.ms", "10000")
        .create_client()
        .unwrap();
    let refused = producer.send(FutureRecord::<str, str>::to(&probe_topic).payload("x"), Duration::from_secs(10)).await;
    let (err, _) = refused.expect_err("the operator's principal wrote to a topic: it is a super user");
    assert!(err.to_string().contains("Authorization"), "{err}");

    // The operator with that principal, the only one running.
    let lease_namespace = unique("tributary-managed");
    ensure_namespace(&lease_namespace).await;
    let operator = OperatorProcess::spawn_with(
        &unique("operator-managed"),
        &lease_namespace,
        &[("KAFKA_ADMIN_USER", &user), ("KAFKA_ADMIN_PASSWORD", &password)],
    );
    operator.wait_leader().await;
    let tenants: Api<Tenant> = Api::all(Client::try_default().await.unwrap());

    // 1. A tenant of the operator's own making, through ACLs alone.
    let tenant = unique("mg");
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {tenant}\n\
         spec:\n  deletionPolicy: Delete\n  kafka:\n    quotas: {{producerByteRate: 1048576}}\n"
    ));
    wait_ready(&tenants, &tenant, "True", "Provisioned").await;
    records_flow(&tenant).await;
    let sink_user = format!("{tenant}.sink.readings");
    let users = scram_users().await;
    assert!(users.contains(&tenant) && users.contains(&sink_user), "{users:?}");
    let quotas = KafkaWire::new(kafka_admin_settings());
    let quota = quotas.describe_user(&tenant).await.unwrap();
    assert_eq!(quota.get("producer_byte_rate"), Some(&262_144.0), "a quarter of the tenant's quota: {quota:?}");
    tenants.delete(&tenant, &Default::default()).await.unwrap();
    wait_until("the Tenant's users and ACLs removed", WAIT, || async {
        let users = scram_users().await;
        let acls = acls_of(&ext, &tenant).await;
        match (users.contains(&tenant) || users.contains(&sink_user), acls.is_empty()) {
            (false, true) => Ok(()),
            state => Err(format!("users left, ACLs empty: {state:?}")),
        }
    })
    .await;

    // 2. A principal issued outside Kafka's API: the stack's PLAIN user.
    let (external, external_password) = (env("KAFKA_EXTERNAL_USER"), env("KAFKA_EXTERNAL_PASSWORD"));
    assert!(!scram_users().await.contains(&external), "{external} is a PLAIN login, not a SCRAM user");
    let secret_name = unique("external-login");
    let tenant = unique("xt");
    let tenant_yaml = |name: &str| {
        format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:\n  deletionPolicy: Delete\n\
             \x20 kafka:\n    externalUser: {{name: {external}, mechanism: PLAIN, passwordSecret: {{name: {secret_name}}}}}\n"
        )
    };
    kubectl_apply(&tenant_yaml(&tenant));
    let message = wait_ready(&tenants, &tenant, "False", "InvalidSpec").await;
    assert!(message.contains(&format!("Secret {lease_namespace}/{secret_name} has no key \"password\"")), "{message}");
    let secrets: Api<Secret> = Api::namespaced(Client::try_default().await.unwrap(), &lease_namespace);
    let login = Secret {
        metadata: kube::api::ObjectMeta { name: Some(secret_name.clone()), ..Default::default() },
        string_data: Some(BTreeMap::from([("password".to_string(), external_password.clone())])),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &login).await.unwrap();
    wait_ready(&tenants, &tenant, "True", "Provisioned").await;
    let creds = wait_credentials(&tenant).await;
    assert_eq!(creds["kafka.username"], external);
    assert_eq!(creds["kafka.password"], external_password);
    assert_eq!(creds["kafka.sasl.mechanism"], "PLAIN");
    assert!(creds["librdkafka.properties"].contains("sasl.mechanism=PLAIN\n"), "{}", creds["librdkafka.properties"]);
    assert!(creds["kafka-java.properties"].contains("PlainLoginModule required"), "{}", creds["kafka-java.properties"]);
    let granted = acls_of(&ext, &external).await;
    assert!(granted.iter().any(|a| a.contains(&format!("Prefixed {tenant}."))), "{granted:?}");

    // Another Tenant naming the same principal is refused, and grants it nothing.
    let intruder = unique("xt-intruder");
    kubectl_apply(&tenant_yaml(&intruder));
    let refused = wait_ready(&tenants, &intruder, "False", "OwnershipConflict").await;
    assert!(refused.contains(&format!("Kafka user {external} belongs to Tenant {tenant}")), "{refused}");
    tenants.delete(&intruder, &Default::default()).await.unwrap();

    // Its sink runs as the external principal and writes every record; no SCRAM user made.
    records_flow(&tenant).await;
    let sink_secret = tributary_tests::pipeline::secret(&tenant, "tributary-sink-readings").await;
    assert_eq!(sink_secret["kafka.username"], external);
    assert_eq!(sink_secret["kafka.password"], creds["kafka.password"], "the sink's login is the bundle's");
    let users = scram_users().await;
    assert!(
        !users.contains(&external) && !users.iter().any(|u| u.starts_with(&format!("{external}.sink."))),
        "{users:?}"
    );

    // Deleting the Tenant removes the grants; the login itself stays the issuer's.
    tenants.delete(&tenant, &Default::default()).await.unwrap();
    wait_until("the external principal's ACLs removed", WAIT, || async {
        let acls = acls_of(&ext, &external).await;
        if acls.is_empty() { Ok(()) } else { Err(format!("{acls:?}")) }
    })
    .await;
    let plain = ClientSettings {
        username: external.clone(),
        password: external_password,
        sasl_mechanism: "PLAIN".into(),
        ..kafka_admin_settings()
    };
    let consumer: BaseConsumer = plain.client_config().create_client().unwrap();
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).expect("the PLAIN login still works");
    assert_eq!(metadata.brokers().len(), 3);

    operator.terminate();
    secrets.delete(&secret_name, &Default::default()).await.unwrap();
    let bindings = ext.describe_acls(AclBindingFilter::for_principal(user_principal(&user))).await.unwrap();
    ext.delete_acls(bindings.iter().map(AclBindingFilter::exact).collect()).await.unwrap();
    let delete = ScramChange::Delete { user: user.clone(), mechanism: ScramMechanism::Sha512 };
    ext.alter_scram_credentials(vec![delete]).await.unwrap();
    delete_topic(&admin, &probe_topic).await;
}
