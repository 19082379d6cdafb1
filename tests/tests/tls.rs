//! TLS to Kafka and Cassandra on the local stack (issue 16, items 1 and 2). The brokers'
//! BROKER listener is SASL_SSL only and Cassandra has client encryption on, both with
//! certificates from the stack's own CA (`stack.sh env`: KAFKA_CA_FILE, CASSANDRA_CA_FILE).
//! Checked with each side's own clients: a plain or wrongly trusting client gets nothing, the
//! tenant's bundle carries the CA and works as handed out, and every Cassandra connection of
//! the operator and of a sink pod on the node is encrypted (`system_views.clients`).

use std::time::Duration;
use tributary_tests::{ClientConfigOf, CreateClient};

use kube::Client;
use kube::api::Api;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tributary::api::CassandraSink;
use tributary::external::kafka::ClientSettings;
use tributary_tests::KafkaWire;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::wait_credentials;
use tributary_tests::{
    cassandra_admin, cassandra_contact, cassandra_session, kafka_admin_settings, kubectl_apply, ready_tenant,
    tenant_kafka_settings, unique, wait_ready, wait_until,
};

/// A CA that did not sign the stack's certificates: the API server's (same machine, other CA).
fn other_ca() -> String {
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG (make stack-env)");
    let path = std::path::Path::new(&kubeconfig).parent().unwrap().join("pki/ca.crt");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn stack_ca() -> String {
    std::fs::read_to_string(std::env::var("KAFKA_CA_FILE").expect("KAFKA_CA_FILE (make stack-env)")).unwrap()
}

/// An operator started with `var` naming a CA that did not sign the servers' certificates:
/// it stops at start-up, and its last words are returned.
async fn operator_with_wrong_ca(var: &str) -> String {
    tributary_tests::install_crds().await;
    let lease_namespace = unique("tributary-tls");
    tributary_tests::operator::ensure_namespace(&lease_namespace).await;
    let ca_file = std::env::temp_dir().join(format!("{}.crt", unique("other-ca")));
    std::fs::write(&ca_file, other_ca()).unwrap();
    let operator = OperatorProcess::spawn_with(
        &unique("operator-wrong-ca"),
        &lease_namespace,
        &[(var, ca_file.to_str().unwrap())],
    );
    wait_until("the operator with a wrong CA to stop", Duration::from_secs(60), || async {
        if operator.alive() { Err("still running".to_string()) } else { Ok(()) }
    })
    .await;
    std::fs::remove_file(&ca_file).unwrap();
    operator.log_tail()
}

/// Whether a client of `settings` gets the cluster's metadata (which needs the SASL login,
/// which needs the TLS handshake).
fn metadata(settings: &ClientSettings) -> Result<usize, String> {
    let consumer: BaseConsumer = settings.client_config().create_client().map_err(|e| e.to_string())?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(8)).map_err(|e| e.to_string())?;
    Ok(metadata.brokers().len())
}

#[tokio::test]
async fn kafka_answers_only_over_tls_to_clients_that_trust_its_ca() {
    let good = kafka_admin_settings();
    assert_eq!(good.security_protocol, "SASL_SSL", "the stack's environment selects TLS");
    assert_eq!(metadata(&good), Ok(3), "SASL_SSL with the stack's CA sees the three brokers");

    // The same credentials without TLS: the listener only speaks TLS.
    let plain = ClientSettings { security_protocol: "SASL_PLAINTEXT".into(), ca_pem: None, ..good.clone() };
    assert!(metadata(&plain).is_err(), "a SASL_PLAINTEXT client was answered");
    // TLS that trusts another CA: the handshake fails, so the password is never sent.
    let wrong = ClientSettings { ca_pem: Some(other_ca()), ..good.clone() };
    assert!(metadata(&wrong).is_err(), "a client trusting another CA was answered");

    // The operator's own client-quota connection (kafka-protocol over rustls): the same rules,
    // and the error says it is the certificate.
    let quotas = KafkaWire::new(good.clone());
    quotas.describe_user(&good.username).await.expect("DescribeClientQuotas over TLS");
    let err = KafkaWire::new(wrong).describe_user(&good.username).await.unwrap_err();
    let err = err.to_string();
    assert!(err.contains("certificate") && err.contains("configured CA"), "{err}");

    // The operator given that CA stops at start-up and says why, naming the setting.
    let log = operator_with_wrong_ca("KAFKA_CA_FILE").await;
    let broker = good.bootstrap_servers.split(',').next().unwrap().to_string();
    let says = format!("Kafka (KAFKA_CA_FILE): {broker} presents a certificate that does not pass");
    assert!(log.contains(&says) && log.contains("signed by the configured CA"), "{log}");
}

#[tokio::test]
async fn cassandra_sessions_are_encrypted_and_check_the_nodes_certificate() {
    let (user, password) = cassandra_admin();
    // The tests' session (as every client here) runs over TLS with the stack's CA.
    let admin = cassandra_session(&user, &password).await.expect("TLS session with the stack's CA");

    // Trusting another CA: no session, and the error says why.
    let Err(err) = scylla::client::session_builder::SessionBuilder::new()
        .known_node(cassandra_contact())
        .user(&user, &password)
        .tls_context(Some(tributary::api::tls::connector("other CA", Some(&other_ca())).unwrap()))
        .build()
        .await
    else {
        panic!("a session trusting another CA was opened");
    };
    let err = format!("{err}{}", tributary::api::tls::hint(&err.to_string()));
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let log = operator_with_wrong_ca("CASSANDRA_CA_FILE").await;
    let says =
        format!("Cassandra (CASSANDRA_CA_FILE): {} presents a certificate that does not pass", cassandra_contact());
    assert!(log.contains(&says), "{log}");

    // A tenant with a sink: the bundle hands out the CA, and the operator's and the sink pod's
    // connections to Cassandra are all encrypted.
    OperatorProcess::shared().await;
    let tenant = unique("tls");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let creds = wait_credentials(&tenant).await;
    assert_eq!(creds["kafka.security.protocol"], "SASL_SSL");
    assert_eq!(creds["kafka.ca.crt"], stack_ca());
    assert_eq!(creds["cassandra.ca.crt"], stack_ca());
    assert_eq!(creds["cassandra.tls"], "true");
    assert!(creds["kafka-java.properties"].contains("ssl.truststore.type=PEM"), "{}", creds["kafka-java.properties"]);
    // The bundle as handed out works: the tenant's own login, over TLS, with its CA.
    assert_eq!(metadata(&tenant_kafka_settings(&tenant).await), Ok(3), "the tenant's bundle connects");
    let team = cassandra_session(&creds["cassandra.username"], &creds["cassandra.password"]).await;
    team.expect("the tenant's Cassandra login over TLS");

    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata: {{name: data, namespace: {tenant}}}\nspec: {{partitions: 1}}\n---\n\
         apiVersion: tributary.dev/v1alpha1\nkind: CassandraSink\nmetadata: {{name: main, namespace: {tenant}}}\n\
         spec:\n  topic: data\n  table: main\n  columns:\n  - {{name: id, type: text}}\n  partitionKey: [id]\n"
    ));
    let sinks: Api<CassandraSink> = Api::namespaced(Client::try_default().await.unwrap(), &tenant);
    wait_ready(&sinks, "main", "True", "Running").await;
    let node_ip = std::env::var("TRIBUTARY_NODE_IP").expect("TRIBUTARY_NODE_IP (make stack-env)");
    let role = creds["cassandra.username"].clone();
    let clients = wait_until("the sink pod's Cassandra connections", Duration::from_secs(60), || async {
        let rows: Vec<(std::net::IpAddr, Option<String>, Option<bool>)> = admin
            .query_unpaged("SELECT address, username, ssl_enabled FROM system_views.clients", &[])
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?
            .rows()
            .map_err(|e| e.to_string())?
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        // The sink pod connects from its pod address as the tenant's role.
        let from_pod = |(address, username, _): &(std::net::IpAddr, Option<String>, Option<bool>)| {
            username.as_deref() == Some(role.as_str()) && address.to_string() != node_ip
        };
        if rows.iter().any(from_pod) { Ok(rows) } else { Err(format!("no connection of {role} from a pod: {rows:?}")) }
    })
    .await;
    let plain: Vec<_> = clients.iter().filter(|(_, _, tls)| *tls != Some(true)).collect();
    assert!(plain.is_empty(), "unencrypted Cassandra connections: {plain:?} (all: {clients:?})");
    assert!(
        clients.iter().any(|(_, user, _)| user.as_deref() == Some(cassandra_admin().0.as_str())),
        "the operator's and the tests' admin sessions are among them: {clients:?}"
    );
    sinks.delete("main", &Default::default()).await.unwrap();
}
