//! How a Kafka client reaches the cluster: bootstrap servers and SASL/SCRAM credentials,
//! turned into librdkafka properties.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// SASL mechanism every Tributary user authenticates with.
pub const SASL_MECHANISM: &str = "SCRAM-SHA-512";

/// Connection settings for one Kafka principal.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub bootstrap_servers: String,
    pub username: String,
    pub password: String,
    /// `SASL_PLAINTEXT` on the local stack, `SASL_SSL` where brokers have TLS.
    pub security_protocol: String,
}

impl ClientSettings {
    pub fn new(bootstrap_servers: impl Into<String>, username: impl Into<String>, password: impl Into<String>) -> Self {
        ClientSettings {
            bootstrap_servers: bootstrap_servers.into(),
            username: username.into(),
            password: password.into(),
            security_protocol: "SASL_PLAINTEXT".into(),
        }
    }

    /// The admin credentials from the environment `make stack-env` exports
    /// (`KAFKA_BOOTSTRAP`, `KAFKA_ADMIN_USER`, `KAFKA_ADMIN_PASSWORD`).
    pub fn admin_from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| format!("{name} is not set; run: eval \"$(make -s stack-env)\""))
        };
        Ok(ClientSettings::new(var("KAFKA_BOOTSTRAP")?, var("KAFKA_ADMIN_USER")?, var("KAFKA_ADMIN_PASSWORD")?))
    }

    /// The librdkafka properties a client of this principal needs — also what the tenant
    /// Secret hands to applications.
    pub fn librdkafka_properties(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("bootstrap.servers", self.bootstrap_servers.clone()),
            ("security.protocol", self.security_protocol.clone()),
            ("sasl.mechanism", SASL_MECHANISM.to_string()),
            ("sasl.username", self.username.clone()),
            ("sasl.password", self.password.clone()),
        ])
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in self.librdkafka_properties() {
            config.set(key, value);
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
        assert_eq!(settings.client_config().get("bootstrap.servers"), Some("127.0.0.1:19092"));
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
