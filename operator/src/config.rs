//! The operator's settings, from the environment (the chart sets them from its values and
//! the admin-credentials Secret; `make run` from `make stack-env`).

use std::net::SocketAddr;
use std::time::Duration;

use crate::external::kafka::ClientSettings;
use crate::external::kafka::client::read_ca;

#[derive(Debug, thiserror::Error)]
#[error("{name} {problem}; {hint}")]
pub struct ConfigError {
    name: &'static str,
    problem: String,
    hint: &'static str,
}

/// Cassandra contact points and the admin role the operator provisions with.
#[derive(Clone, PartialEq, Eq)]
pub struct CassandraSettings {
    /// `host:port` entries.
    pub contact_points: Vec<String>,
    pub username: String,
    pub password: String,
    /// CA bundle (PEM) of Cassandra's client encryption (`CASSANDRA_CA_FILE`); set: every
    /// session uses TLS and checks the node's certificate against it.
    pub ca_pem: Option<String>,
    /// The datacenter sinks write to unless their spec names one (`TRIBUTARY_CASSANDRA_LOCAL_DC`).
    pub local_datacenter: Option<String>,
}

impl std::fmt::Debug for CassandraSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraSettings")
            .field("contact_points", &self.contact_points)
            .field("username", &self.username)
            .field("tls", &self.ca_pem.is_some())
            .field("local_datacenter", &self.local_datacenter)
            .finish_non_exhaustive()
    }
}

/// The image the chart installs; `TRIBUTARY_SINK_IMAGE` overrides it.
pub const DEFAULT_SINK_IMAGE: &str = "ghcr.io/tributary-dev/tributary:0.1.0";

#[derive(Clone, Debug)]
pub struct Config {
    /// The Kafka admin principal.
    pub kafka: ClientSettings,
    /// Bootstrap servers handed to tenants (defaults to the admin's).
    pub kafka_client_bootstrap: String,
    pub cassandra: CassandraSettings,
    /// Namespace of the leader-election Lease.
    pub lease_namespace: String,
    /// This replica's name in the Lease.
    pub identity: String,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub http_addr: SocketAddr,
    /// Reconciles running at once, per kind.
    pub concurrency: u16,
    /// How often every object is reconciled again to find drift made outside Kubernetes
    /// (Kafka and Cassandra send no watch events); each requeue adds up to 10 % jitter.
    pub resync: Duration,
    /// How often the sink pods' reports are read into the CassandraSinks' status.
    pub sink_report: Duration,
    /// How often each tenant's usage is measured (`TRIBUTARY_USAGE_SECONDS`).
    pub usage: Duration,
    /// Image of the sink Deployments (the operator's own image; it holds both binaries).
    pub sink_image: String,
    /// The ClusterRole naming only Secrets that the operator binds to its own ServiceAccount in
    /// each tenant namespace (`TRIBUTARY_SECRETS_ROLE` and `TRIBUTARY_SERVICE_ACCOUNT`, both set
    /// by the chart): its Secret rights end at the namespaces it manages. Unset (an operator
    /// run outside the cluster, with its own credentials): no RoleBinding is written.
    pub secrets_binding: Option<SecretsBinding>,
    /// The quotas of a Tenant whose spec sets none (`TRIBUTARY_DEFAULT_QUOTAS`, e.g.
    /// `producerByteRate=10485760,consumerByteRate=20971520,requestPercentage=100`; the chart
    /// sets one), by Kafka's names. Empty: such tenants are unthrottled.
    pub default_quotas: crate::access::quotas::Quotas,
    /// The brokers' super users (`TRIBUTARY_KAFKA_SUPER_USERS`, comma-separated user names, the
    /// chart's `kafka.superUsers`): never a Tenant's principal, whatever logs them in.
    pub kafka_super_users: Vec<String>,
    /// The schema registry (Confluent API base URL) of `format: Avro` sinks whose spec names
    /// none (`TRIBUTARY_SCHEMA_REGISTRY_URL`, the chart's `schemaRegistry.url`).
    pub schema_registry_url: Option<String>,
}

/// Who the operator is in the cluster, for the RoleBinding of each tenant namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretsBinding {
    pub cluster_role: String,
    pub service_account: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        const STACK_HINT: &str = "set it (locally: eval \"$(make -s stack-env)\"; in a cluster: the chart's values)";
        let required = |name: &'static str| {
            lookup(name).filter(|v| !v.is_empty()).ok_or(ConfigError {
                name,
                problem: "is not set".into(),
                hint: STACK_HINT,
            })
        };
        let parsed = |name: &'static str, default: &str, hint: &'static str| -> Result<String, ConfigError> {
            Ok(lookup(name).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())).and_then(|v| {
                if v.trim().is_empty() { Err(ConfigError { name, problem: "is empty".into(), hint }) } else { Ok(v) }
            })
        };
        const TLS_HINT: &str = "see the configuration reference in the README (TLS)";
        let tls_error = |problem: String| ConfigError { name: "TLS:", problem, hint: TLS_HINT };
        let kafka = ClientSettings::new(
            required("KAFKA_BOOTSTRAP")?,
            required("KAFKA_ADMIN_USER")?,
            required("KAFKA_ADMIN_PASSWORD")?,
        )
        .with_security_from(&lookup)
        .map_err(tls_error)?;
        let kafka_client_bootstrap =
            lookup("KAFKA_CLIENT_BOOTSTRAP").unwrap_or_else(|| kafka.bootstrap_servers.clone());
        let cassandra = CassandraSettings {
            contact_points: required("CASSANDRA_CONTACT")?.split(',').map(|s| s.trim().to_string()).collect(),
            username: required("CASSANDRA_ADMIN_USER")?,
            password: required("CASSANDRA_ADMIN_PASSWORD")?,
            ca_pem: lookup("CASSANDRA_CA_FILE")
                .filter(|v| !v.is_empty())
                .map(|path| read_ca("CASSANDRA_CA_FILE", &path))
                .transpose()
                .map_err(tls_error)?,
            local_datacenter: lookup("TRIBUTARY_CASSANDRA_LOCAL_DC").filter(|v| !v.trim().is_empty()),
        };
        let http_addr = parsed("TRIBUTARY_HTTP_ADDR", "0.0.0.0:8080", "use host:port, e.g. 127.0.0.1:8080")?;
        let http_addr = http_addr.parse().map_err(|e| ConfigError {
            name: "TRIBUTARY_HTTP_ADDR",
            problem: format!("is not host:port ({e})"),
            hint: "use e.g. 127.0.0.1:8080",
        })?;
        let concurrency = parsed("TRIBUTARY_CONCURRENCY", "16", "use a number from 1 to 64")?;
        let concurrency = concurrency.parse::<u16>().ok().filter(|c| (1..=64).contains(c)).ok_or(ConfigError {
            name: "TRIBUTARY_CONCURRENCY",
            problem: format!("is {concurrency:?}"),
            hint: "use a number from 1 to 64",
        })?;
        let seconds = |name: &'static str, default: &str| -> Result<Duration, ConfigError> {
            const HINT: &str = "use whole seconds, at least 5";
            let value = parsed(name, default, HINT)?;
            value.parse::<u64>().ok().filter(|s| *s >= 5).map(Duration::from_secs).ok_or(ConfigError {
                name,
                problem: format!("is {value:?}"),
                hint: HINT,
            })
        };
        let resync = seconds("TRIBUTARY_RESYNC_SECONDS", "300")?;
        let sink_report = seconds("TRIBUTARY_SINK_REPORT_SECONDS", "30")?;
        let usage = seconds("TRIBUTARY_USAGE_SECONDS", "60")?;
        let identity = lookup("POD_NAME").or_else(|| lookup("HOSTNAME").map(|h| format!("{h}-{}", std::process::id())));
        Ok(Config {
            kafka,
            kafka_client_bootstrap,
            cassandra,
            lease_namespace: parsed("TRIBUTARY_NAMESPACE", "tributary-system", "name the operator's namespace")?,
            identity: identity.unwrap_or_else(|| format!("tributary-{}", std::process::id())),
            http_addr,
            concurrency,
            resync,
            sink_report,
            usage,
            sink_image: parsed("TRIBUTARY_SINK_IMAGE", DEFAULT_SINK_IMAGE, "name an image")?,
            schema_registry_url: lookup("TRIBUTARY_SCHEMA_REGISTRY_URL").filter(|v| !v.trim().is_empty()),
            kafka_super_users: lookup("TRIBUTARY_KAFKA_SUPER_USERS")
                .unwrap_or_default()
                .split(',')
                .map(|u| u.trim().trim_start_matches("User:").to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            default_quotas: default_quotas(lookup("TRIBUTARY_DEFAULT_QUOTAS").as_deref().unwrap_or_default())?,
            secrets_binding: match (lookup("TRIBUTARY_SECRETS_ROLE"), lookup("TRIBUTARY_SERVICE_ACCOUNT")) {
                (Some(cluster_role), Some(service_account))
                    if !cluster_role.is_empty() && !service_account.is_empty() =>
                {
                    Some(SecretsBinding { cluster_role, service_account })
                }
                _ => None,
            },
        })
    }
}

/// `producerByteRate=…,consumerByteRate=…,requestPercentage=…` (any of them) under Kafka's names.
fn default_quotas(text: &str) -> Result<crate::access::quotas::Quotas, ConfigError> {
    use crate::access::quotas::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE};
    const HINT: &str = "use e.g. producerByteRate=10485760,consumerByteRate=20971520,requestPercentage=100";
    let error = |problem: String| ConfigError { name: "TRIBUTARY_DEFAULT_QUOTAS", problem, hint: HINT };
    let mut quotas = crate::access::quotas::Quotas::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (key, value) = entry.split_once('=').ok_or_else(|| error(format!("has {entry:?} without '='")))?;
        let kafka_key = match key.trim() {
            "producerByteRate" => PRODUCER_BYTE_RATE,
            "consumerByteRate" => CONSUMER_BYTE_RATE,
            "requestPercentage" => REQUEST_PERCENTAGE,
            other => return Err(error(format!("names {other:?}"))),
        };
        let value: f64 =
            value.trim().parse().ok().filter(|v: &f64| *v > 0.0).ok_or_else(|| error(format!("has {entry:?}")))?;
        quotas.insert(kafka_key.to_string(), value);
    }
    Ok(quotas)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    const BASE: [(&str, &str); 6] = [
        ("KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        ("KAFKA_ADMIN_USER", "admin"),
        ("KAFKA_ADMIN_PASSWORD", "admin-secret"),
        ("CASSANDRA_CONTACT", "127.0.0.1:19042, 127.0.0.2:19042"),
        ("CASSANDRA_ADMIN_USER", "cassandra"),
        ("CASSANDRA_ADMIN_PASSWORD", "cassandra"),
    ];

    #[test]
    fn defaults_fill_everything_optional() {
        let config = Config::from_lookup(env(&BASE)).unwrap();
        assert_eq!(config.cassandra.contact_points, ["127.0.0.1:19042", "127.0.0.2:19042"]);
        assert_eq!(config.kafka_client_bootstrap, "127.0.0.1:19092");
        assert_eq!(config.concurrency, 16);
        assert_eq!(config.resync, Duration::from_secs(300));
        assert_eq!(config.sink_report, Duration::from_secs(30));
        assert_eq!(config.usage, Duration::from_secs(60));
        assert_eq!(config.lease_namespace, "tributary-system");
        assert!(!format!("{config:?}").contains("admin-secret"), "no password in debug output");
        assert!(config.default_quotas.is_empty(), "no default quota unless one is set");
    }

    #[test]
    fn default_quotas_are_read_under_kafkas_names_and_a_bad_one_is_named() {
        let mut with = BASE.to_vec();
        with.push(("TRIBUTARY_DEFAULT_QUOTAS", "producerByteRate=1048576, requestPercentage=100"));
        let config = Config::from_lookup(env(&with)).unwrap();
        assert_eq!(config.default_quotas["producer_byte_rate"], 1_048_576.0);
        assert_eq!(config.default_quotas["request_percentage"], 100.0);
        let mut bad = BASE.to_vec();
        bad.push(("TRIBUTARY_DEFAULT_QUOTAS", "bandwidth=1"));
        let err = Config::from_lookup(env(&bad)).unwrap_err().to_string();
        assert!(err.contains("TRIBUTARY_DEFAULT_QUOTAS names \"bandwidth\""), "{err}");
    }

    #[test]
    fn a_missing_or_bad_setting_is_named_with_what_to_do() {
        let err = Config::from_lookup(env(&BASE[1..])).unwrap_err().to_string();
        assert!(err.starts_with("KAFKA_BOOTSTRAP is not set; set it"), "{err}");
        let mut bad = BASE.to_vec();
        bad.push(("TRIBUTARY_CONCURRENCY", "0"));
        let err = Config::from_lookup(env(&bad)).unwrap_err().to_string();
        assert!(err.contains("TRIBUTARY_CONCURRENCY is \"0\"; use a number from 1 to 64"), "{err}");
    }

    #[test]
    fn tls_settings_are_read_and_a_wrong_ca_is_named() {
        let dir = std::env::temp_dir().join(format!("tributary-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("garbage.crt");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let garbage = garbage.to_str().unwrap();

        let mut with = BASE.to_vec();
        with.push(("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"));
        let config = Config::from_lookup(env(&with)).unwrap();
        assert!(config.kafka.tls() && config.kafka.ca_pem.is_none(), "SASL_SSL without a CA: the system's CAs");

        let mut bad = BASE.to_vec();
        bad.push(("KAFKA_CA_FILE", "/nonexistent/ca.crt"));
        let err = Config::from_lookup(env(&bad)).unwrap_err().to_string();
        assert!(err.contains("KAFKA_CA_FILE /nonexistent/ca.crt cannot be read"), "{err}");

        let mut bad = BASE.to_vec();
        bad.push(("CASSANDRA_CA_FILE", garbage));
        let err = Config::from_lookup(env(&bad)).unwrap_err().to_string();
        assert!(err.contains(&format!("CASSANDRA_CA_FILE {garbage} holds no PEM certificate")), "{err}");

        let mut bad = BASE.to_vec();
        bad.push(("KAFKA_SECURITY_PROTOCOL", "SSL"));
        let err = Config::from_lookup(env(&bad)).unwrap_err().to_string();
        assert!(err.contains("KAFKA_SECURITY_PROTOCOL is \"SSL\"; use SASL_SSL or SASL_PLAINTEXT"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
