//! An independent Kafka admin client for the tests: librdkafka's C API for the calls that
//! rdkafka does not wrap (ACLs, SCRAM credentials, incremental configs, DescribeTopics,
//! ListOffsets). The operator speaks the Kafka protocol through its own client; the tests
//! check what it did through this other implementation, so one client's bug cannot hide
//! in both the change and its check.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use tributary::external::kafka::ClientSettings;

pub mod admin;
mod native;

pub use admin::AdminExt;

/// librdkafka's configuration for a principal's [`ClientSettings`]: the properties the
/// tenant's Secret hands to applications, and the CA in PEM.
pub trait ClientConfigOf {
    fn client_config(&self) -> ClientConfig;
}

impl ClientConfigOf for ClientSettings {
    fn client_config(&self) -> ClientConfig {
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

/// Creating a librdkafka client, then emptying the thread's OpenSSL error queue, which
/// librdkafka leaves dirty when it parses `ssl.ca.pem` ([`tributary_api::tls::clear_thread_errors`]).
/// Every librdkafka client of the tests is made this way.
pub trait CreateClient {
    fn create_client<C: rdkafka::config::FromClientConfig>(&self) -> rdkafka::error::KafkaResult<C>;
}

impl CreateClient for ClientConfig {
    fn create_client<C: rdkafka::config::FromClientConfig>(&self) -> rdkafka::error::KafkaResult<C> {
        let client = self.create();
        tributary_api::tls::clear_thread_errors();
        client
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminExtError {
    #[error("{op}: invalid argument: {message}")]
    InvalidArgument { op: &'static str, message: String },
    #[error("{op}: no answer from Kafka within {timeout:?}; check that the brokers are reachable")]
    Timeout { op: &'static str, timeout: Duration },
    #[error("{op} failed: {code:?}: {message}")]
    Kafka { op: &'static str, code: RDKafkaErrorCode, message: String },
    #[error("{op}: the admin task did not complete: {message}")]
    Task { op: &'static str, message: String },
}

/// The error Kafka returned for one item of a batched call (one user, one ACL, one filter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ItemError {
    pub code: RDKafkaErrorCode,
    pub message: String,
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
}
