//! How a Kafka client reaches the cluster: bootstrap servers and SASL/SCRAM credentials,
//! for the operator's own client and turned into librdkafka properties for everyone else's
//! (the tenant's Secret bundle, the sink pods, the seed and the tests).

use std::collections::BTreeMap;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_carry_scram_credentials_and_debug_hides_the_password() {
        let settings = ClientSettings::new("127.0.0.1:19092", "water", "s3cret");
        let props = settings.librdkafka_properties();
        assert_eq!(props["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(props["sasl.username"], "water");
        assert_eq!(props["sasl.password"], "s3cret");
        assert_eq!(props["security.protocol"], "SASL_PLAINTEXT");
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
