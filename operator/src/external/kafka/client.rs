//! How a Kafka client reaches the cluster: bootstrap servers and SASL/SCRAM credentials,
//! turned into librdkafka properties.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::error::{KafkaCallError, call_error};
use crate::api::Position;

pub use crate::api::contract::SASL_MECHANISM;

pub const SASL_SSL: &str = "SASL_SSL";
pub const SASL_PLAINTEXT: &str = "SASL_PLAINTEXT";

/// Reads a CA bundle named by the environment variable `name` and checks that it holds
/// certificates, so a wrong path or file is reported at start-up, naming the variable.
pub fn read_ca(name: &str, path: &str) -> Result<String, String> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("{name} {path} cannot be read ({e}); mount the CA bundle there or fix the path"))?;
    crate::api::tls::certificates(&format!("{name} {path}"), &pem)?;
    Ok(pem)
}

/// Connection settings for one Kafka principal.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub bootstrap_servers: String,
    pub username: String,
    pub password: String,
    /// `SASL_SSL` (brokers with TLS, as on the local stack) or `SASL_PLAINTEXT`.
    pub security_protocol: String,
    /// The CA bundle (PEM) the brokers' certificates are checked against under `SASL_SSL`;
    /// `None`: the system's CAs (a managed Kafka with a public certificate).
    pub ca_pem: Option<String>,
    /// `SCRAM-SHA-512` for the users the operator makes; an external principal's own otherwise.
    pub sasl_mechanism: String,
}

impl ClientSettings {
    pub fn new(bootstrap_servers: impl Into<String>, username: impl Into<String>, password: impl Into<String>) -> Self {
        ClientSettings {
            bootstrap_servers: bootstrap_servers.into(),
            username: username.into(),
            password: password.into(),
            security_protocol: "SASL_PLAINTEXT".into(),
            ca_pem: None,
            sasl_mechanism: SASL_MECHANISM.into(),
        }
    }

    /// TLS: `SASL_SSL`, with the brokers' certificates checked against `ca_pem` (or the
    /// system's CAs) and their names against the addresses the client connects to.
    pub fn with_tls(mut self, ca_pem: Option<String>) -> Self {
        self.security_protocol = SASL_SSL.into();
        self.ca_pem = ca_pem;
        self
    }

    pub fn tls(&self) -> bool {
        self.security_protocol == SASL_SSL
    }

    /// The admin credentials from the environment `make stack-env` exports
    /// (`KAFKA_BOOTSTRAP`, `KAFKA_ADMIN_USER`, `KAFKA_ADMIN_PASSWORD`, and for TLS
    /// `KAFKA_SECURITY_PROTOCOL`, `KAFKA_CA_FILE`).
    pub fn admin_from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| format!("{name} is not set; run: eval \"$(make -s stack-env)\""))
        };
        let settings =
            ClientSettings::new(var("KAFKA_BOOTSTRAP")?, var("KAFKA_ADMIN_USER")?, var("KAFKA_ADMIN_PASSWORD")?);
        settings.with_security_from(|name| std::env::var(name).ok())
    }

    /// `KAFKA_SECURITY_PROTOCOL` (`SASL_SSL` or `SASL_PLAINTEXT`; `SASL_SSL` when only a CA is
    /// given) and `KAFKA_CA_FILE` (a PEM bundle, read and checked here).
    pub fn with_security_from(self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let ca_file = lookup("KAFKA_CA_FILE").filter(|v| !v.is_empty());
        let protocol = lookup("KAFKA_SECURITY_PROTOCOL").filter(|v| !v.is_empty());
        let protocol = protocol.unwrap_or_else(|| if ca_file.is_some() { SASL_SSL } else { SASL_PLAINTEXT }.into());
        match protocol.as_str() {
            SASL_PLAINTEXT if ca_file.is_some() => Err(format!(
                "KAFKA_CA_FILE is set but KAFKA_SECURITY_PROTOCOL is {SASL_PLAINTEXT}; set it to {SASL_SSL} \
                 (or unset KAFKA_CA_FILE)"
            )),
            SASL_PLAINTEXT => Ok(self),
            SASL_SSL => {
                let ca_pem = ca_file.map(|path| read_ca("KAFKA_CA_FILE", &path)).transpose()?;
                Ok(self.with_tls(ca_pem))
            }
            other => Err(format!("KAFKA_SECURITY_PROTOCOL is {other:?}; use {SASL_SSL} or {SASL_PLAINTEXT}")),
        }
    }

    /// The librdkafka properties a client of this principal needs — also what the tenant
    /// Secret hands to applications.
    pub fn librdkafka_properties(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("bootstrap.servers", self.bootstrap_servers.clone()),
            ("security.protocol", self.security_protocol.clone()),
            ("sasl.mechanism", self.sasl_mechanism.clone()),
            ("sasl.username", self.username.clone()),
            ("sasl.password", self.password.clone()),
        ])
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in self.librdkafka_properties() {
            config.set(key, value);
        }
        if let Some(ca) = &self.ca_pem {
            config.set("ssl.ca.pem", ca);
        }
        config
    }
}

impl std::fmt::Debug for ClientSettings {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("username", &self.username)
            .field("security_protocol", &self.security_protocol)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "(set)"))
            .finish_non_exhaustive()
    }
}

/// Creating a librdkafka client, then emptying the thread's OpenSSL error queue, which
/// librdkafka leaves dirty when it parses `ssl.ca.pem` ([`crate::api::tls::clear_thread_errors`]).
/// Every Kafka client of the operator and the tests is made this way.
pub trait CreateClient {
    fn create_client<C: rdkafka::config::FromClientConfig>(&self) -> rdkafka::error::KafkaResult<C>;
}

impl CreateClient for ClientConfig {
    fn create_client<C: rdkafka::config::FromClientConfig>(&self) -> rdkafka::error::KafkaResult<C> {
        let client = self.create();
        crate::api::tls::clear_thread_errors();
        client
    }
}

/// A consumer client of `group` that never joins it: for OffsetCommit on the group's behalf
/// (a replay, rare: committed offsets are read on the protocol client's connections, see
/// [`super::quotas::QuotaClient::committed_offsets`]).
fn group_client(
    settings: &ClientSettings,
    group: &str,
    call: &'static str,
) -> Result<rdkafka::consumer::BaseConsumer, KafkaCallError> {
    settings
        .client_config()
        .set("client.id", "tributary-operator")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create_client()
        .map_err(|e| call_error(call, &e))
}

/// Commits `group`'s offsets on `topic` at `to` (the low or high watermark, or the first
/// offset at or after a time) from a client that is not a member. Kafka accepts such a
/// commit only while the group is empty; a group with members answers UNKNOWN_MEMBER_ID (or
/// ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS), which becomes a transient "in use" error, so
/// offsets never move under a running consumer.
pub(super) fn commit_offsets(
    settings: &ClientSettings,
    group: &str,
    topic: &str,
    partitions: i32,
    to: Position,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, KafkaCallError> {
    const CALL: &str = "OffsetCommit";
    if partitions == 0 {
        return Err(KafkaCallError {
            call: CALL,
            message: format!("topic {topic} has no partitions in Kafka's metadata (yet)"),
            transient: true,
            answered: true,
        });
    }
    let consumer = group_client(settings, group, CALL)?;
    let watermarks = |p: i32| consumer.fetch_watermarks(topic, p, timeout).map_err(|e| call_error("ListOffsets", &e));
    let mut targets = BTreeMap::new();
    match to {
        Position::Earliest | Position::Latest => {
            for p in 0..partitions {
                let (low, high) = watermarks(p)?;
                targets.insert(p, if to == Position::Earliest { low } else { high });
            }
        }
        Position::Time(ms) => {
            let mut list = TopicPartitionList::new();
            for p in 0..partitions {
                list.add_partition_offset(topic, p, Offset::Offset(ms)).map_err(|e| call_error(CALL, &e))?;
            }
            let found = consumer.offsets_for_times(list, timeout).map_err(|e| call_error("ListOffsets", &e))?;
            for e in found.elements() {
                // No record at or after the time: the end of the partition.
                let offset = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => watermarks(e.partition())?.1,
                };
                targets.insert(e.partition(), offset);
            }
        }
    }
    let mut list = TopicPartitionList::new();
    for (p, offset) in &targets {
        list.add_partition_offset(topic, *p, Offset::Offset(*offset)).map_err(|e| call_error(CALL, &e))?;
    }
    consumer.commit(&list, CommitMode::Sync).map_err(|e| match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::RebalanceInProgress,
        ) => KafkaCallError {
            call: CALL,
            message: format!("consumer group {group} still has members; its offsets move once it is empty ({e})"),
            transient: true,
            answered: true,
        },
        _ => call_error(CALL, &e),
    })?;
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA certificate in PEM.
    fn ca_pem() -> String {
        use openssl::{asn1::Asn1Time, bn::BigNum, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "test-ca").unwrap();
        let name = name.build();
        let mut cert = x509::X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap()).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        String::from_utf8(cert.build().to_pem().unwrap()).unwrap()
    }

    #[test]
    fn a_client_with_a_pem_ca_leaves_no_openssl_error_behind_for_the_next_tls_io() {
        let settings = ClientSettings::new("127.0.0.1:1", "u", "p").with_tls(Some(ca_pem()));
        let _ = openssl::error::ErrorStack::get();
        // What librdkafka leaves on the thread (the cause of a broken Cassandra TLS read).
        let _plain: rdkafka::producer::BaseProducer = settings.client_config().create().unwrap();
        let left = openssl::error::ErrorStack::get();
        assert!(left.errors().iter().any(|e| e.reason() == Some("no start line")), "{left:?}");
        let _clean: rdkafka::producer::BaseProducer = settings.client_config().create_client().unwrap();
        let left = openssl::error::ErrorStack::get();
        assert!(left.errors().is_empty(), "{left:?}");
    }

    #[test]
    fn properties_carry_scram_credentials_and_debug_hides_the_password() {
        let settings = ClientSettings::new("127.0.0.1:19092", "water", "s3cret");
        let props = settings.librdkafka_properties();
        assert_eq!(props["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(props["sasl.username"], "water");
        assert_eq!(props["sasl.password"], "s3cret");
        assert_eq!(props["security.protocol"], "SASL_PLAINTEXT");
        assert_eq!(settings.client_config().get("bootstrap.servers"), Some("127.0.0.1:19092"));
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
