//! Desired Kubernetes objects and status of a Tenant, as plain values (pure).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use rand::Rng;
use rand::distr::Alphanumeric;

use super::validate::{CREDENTIALS_SECRET, ValidatedTenant};
use crate::access::kafka::{AclBinding, AclOperation, PatternType, ResourceType, ScramMechanism};
use crate::api::Reason;
use crate::api::conditions::{self, DesiredCondition};
use crate::api::tenant::SaslMechanism;
use crate::api::tenant::TenantStatus;
use crate::api::{CassandraSink, Topic};
use crate::api::{MANAGED_BY, TENANT_LABEL};
use crate::external::kafka::ClientSettings;

pub const KAFKA_USERNAME_KEY: &str = "kafka.username";
pub const KAFKA_PASSWORD_KEY: &str = "kafka.password";
pub const CASSANDRA_PASSWORD_KEY: &str = "cassandra.password";
pub const KAFKA_MECHANISM_KEY: &str = "kafka.sasl.mechanism";
pub const CASSANDRA_USERNAME_KEY: &str = "cassandra.username";
pub const KAFKA_CA_KEY: &str = "kafka.ca.crt";
pub const CASSANDRA_CA_KEY: &str = "cassandra.ca.crt";

pub fn labels(tenant: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TENANT_LABEL.to_string(), tenant.to_string()),
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
    ])
}

/// The Pod Security labels of a tenant namespace.
pub const POD_SECURITY: [(&str, &str); 4] = [
    ("pod-security.kubernetes.io/enforce", "restricted"),
    ("pod-security.kubernetes.io/enforce-version", "latest"),
    ("pod-security.kubernetes.io/warn", "restricted"),
    ("pod-security.kubernetes.io/audit", "restricted"),
];

/// The tenant namespace. `owner` is set only when the operator created the namespace: a
/// namespace that existed before is labelled, never owned, so deleting the Tenant cannot
/// delete someone else's namespace.
pub fn namespace(v: &ValidatedTenant, owner: Option<OwnerReference>) -> Namespace {
    let mut labels = labels(&v.name);
    // Pod Security `restricted`, enforced by the API server on every pod of the namespace.
    labels.extend(POD_SECURITY.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Namespace {
        metadata: ObjectMeta {
            name: Some(v.namespace.clone()),
            labels: Some(labels),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Whether `existing` already carries everything `desired` sets (its labels and owner), so
/// that applying it again would change nothing: a resync then sends no request.
pub fn namespace_current(existing: &Namespace, desired: &Namespace) -> bool {
    let labels = existing.metadata.labels.clone().unwrap_or_default();
    let owners = existing.metadata.owner_references.as_deref().unwrap_or_default();
    desired.metadata.labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v))
        && desired.metadata.owner_references.iter().flatten().all(|o| owners.iter().any(|e| e.uid == o.uid))
}

/// The passwords of the tenant's Kafka user and Cassandra login, generated once and kept
/// until a rotation, and the slots they are in (see [`super::rotation`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Passwords {
    pub kafka: String,
    pub cassandra: String,
    /// The SCRAM credential the Kafka password is (SCRAM-SHA-512 until a first rotation).
    pub kafka_slot: ScramMechanism,
    /// The Cassandra login is `<role>.2` ([`super::rotation::second_login`]), not the role.
    pub cassandra_second: bool,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords(..)")
    }
}

impl Passwords {
    /// The passwords in a credentials Secret, when it has both, and their slots, when the
    /// Secret names slots of this tenant's (`None` otherwise).
    pub fn from_secret(secret: &Secret, v: &ValidatedTenant) -> Option<Self> {
        let read = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .filter(|p| !p.is_empty())
        };
        let kafka_slot = match read(KAFKA_MECHANISM_KEY) {
            Some(name) if v.external_user.is_none() => ScramMechanism::from_name(&name)?,
            _ => ScramMechanism::Sha512,
        };
        let cassandra_second = match read(CASSANDRA_USERNAME_KEY) {
            None => false,
            Some(user) if user == v.cassandra_role => false,
            Some(user) if user == super::rotation::second_login(&v.cassandra_role) => true,
            Some(_) => return None,
        };
        Some(Passwords {
            kafka: read(KAFKA_PASSWORD_KEY)?,
            cassandra: read(CASSANDRA_PASSWORD_KEY)?,
            kafka_slot,
            cassandra_second,
        })
    }

    pub fn generate() -> Self {
        Passwords {
            kafka: generate_password(),
            cassandra: generate_password(),
            kafka_slot: ScramMechanism::Sha512,
            cassandra_second: false,
        }
    }

    /// New passwords in the other slots; an external Kafka login is its issuer's and stays.
    pub fn rotated(&self, external_kafka: bool) -> Self {
        let (kafka, kafka_slot) = if external_kafka {
            (self.kafka.clone(), self.kafka_slot)
        } else {
            (generate_password(), self.kafka_slot.other())
        };
        Passwords { kafka, kafka_slot, cassandra: generate_password(), cassandra_second: !self.cassandra_second }
    }

    /// The SASL mechanism of the tenant's Kafka login.
    pub fn kafka_mechanism(&self, v: &ValidatedTenant) -> SaslMechanism {
        match (&v.external_user, self.kafka_slot) {
            (Some(_), _) => v.kafka_mechanism,
            (None, ScramMechanism::Sha512) => SaslMechanism::ScramSha512,
            (None, ScramMechanism::Sha256) => SaslMechanism::ScramSha256,
        }
    }

    /// The Cassandra login: the tenant's role, or its second login.
    pub fn cassandra_user(&self, v: &ValidatedTenant) -> String {
        if self.cassandra_second { super::rotation::second_login(&v.cassandra_role) } else { v.cassandra_role.clone() }
    }
}

/// 32 random letters and digits (~190 bits).
pub fn generate_password() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect()
}

/// Where clients are expected to mount the Secret `tributary-credentials`: the properties
/// files in it name the CA bundles by this path.
pub const CREDENTIALS_MOUNT: &str = "/etc/tributary/credentials";

/// How clients reach the shared clusters, as the operator hands it to tenants.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    pub kafka_bootstrap: String,
    /// `SASL_SSL` or `SASL_PLAINTEXT`.
    pub kafka_protocol: String,
    /// The CA bundle (PEM) of the brokers' certificates, when there is one to hand out.
    pub kafka_ca: Option<String>,
    pub cassandra_contact_points: Vec<String>,
    /// The CA bundle (PEM) of Cassandra's client encryption; set: Cassandra needs TLS.
    pub cassandra_ca: Option<String>,
}

impl Endpoints {
    pub fn of(config: &crate::config::Config) -> Self {
        Endpoints {
            kafka_bootstrap: config.kafka_client_bootstrap.clone(),
            kafka_protocol: config.kafka.security_protocol.clone(),
            kafka_ca: config.kafka.ca_pem.clone(),
            cassandra_contact_points: config.cassandra.contact_points.clone(),
            cassandra_ca: config.cassandra.ca_pem.clone(),
        }
    }
}

/// The Secret `tributary-credentials`: the whole client bundle of the tenant. With TLS it
/// holds the CA bundles (`kafka.ca.crt`, `cassandra.ca.crt`), and the properties files name
/// them under [`CREDENTIALS_MOUNT`]: `librdkafka.properties` for librdkafka clients (C, Go,
/// Python, Rust) and `kafka-java.properties` for the JVM client (a PEM truststore).
pub fn credentials_secret(
    v: &ValidatedTenant,
    owner: OwnerReference,
    endpoints: &Endpoints,
    passwords: &Passwords,
) -> Secret {
    let mut data = kafka_bundle(v, &v.kafka_user, &passwords.kafka, passwords.kafka_mechanism(v), endpoints);
    data.extend([
        ("cassandra.contact.points".into(), endpoints.cassandra_contact_points.join(",")),
        ("cassandra.keyspace".into(), v.keyspace.clone()),
        (CASSANDRA_USERNAME_KEY.into(), passwords.cassandra_user(v)),
        (CASSANDRA_PASSWORD_KEY.into(), passwords.cassandra.clone()),
        ("cassandra.tls".into(), endpoints.cassandra_ca.is_some().to_string()),
    ]);
    if let Some(ca) = &endpoints.cassandra_ca {
        data.insert(CASSANDRA_CA_KEY.into(), ca.clone());
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(CREDENTIALS_SECRET.into()),
            namespace: Some(v.namespace.clone()),
            labels: Some(labels(&v.name)),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v.into_bytes()))).collect()),
        ..Default::default()
    }
}

/// The Kafka half of a credentials bundle, for `user` of tenant `v` (the tenant's own login
/// or one of its KafkaUsers): endpoints, login, prefixes, and client properties for
/// librdkafka and Java clients, with the brokers' CA.
pub fn kafka_bundle(
    v: &ValidatedTenant,
    user: &str,
    password: &str,
    sasl: crate::api::tenant::SaslMechanism,
    endpoints: &Endpoints,
) -> BTreeMap<String, String> {
    let mut kafka = ClientSettings::new(&endpoints.kafka_bootstrap, user, password);
    kafka.security_protocol = endpoints.kafka_protocol.clone();
    let ca_path = format!("{CREDENTIALS_MOUNT}/{KAFKA_CA_KEY}");
    kafka.sasl_mechanism = sasl.as_str().into();
    let mechanism = sasl.as_str();
    let mut librdkafka = kafka.librdkafka_properties();
    if endpoints.kafka_ca.is_some() {
        librdkafka.insert("ssl.ca.location", ca_path.clone());
    }
    let properties: String = librdkafka.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let mut java = BTreeMap::from([
        ("bootstrap.servers", endpoints.kafka_bootstrap.clone()),
        ("security.protocol", kafka.security_protocol.clone()),
        ("sasl.mechanism", mechanism.to_string()),
        (
            "sasl.jaas.config",
            format!("{} required username=\"{}\" password=\"{}\";", sasl.java_login_module(), user, password),
        ),
    ]);
    if endpoints.kafka_ca.is_some() {
        java.insert("ssl.truststore.type", "PEM".into());
        java.insert("ssl.truststore.location", ca_path);
    }
    let java: String = java.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let mut data: BTreeMap<String, String> = BTreeMap::from([
        ("kafka.bootstrap.servers".into(), endpoints.kafka_bootstrap.clone()),
        ("kafka.security.protocol".into(), kafka.security_protocol.clone()),
        (KAFKA_MECHANISM_KEY.into(), mechanism.to_string()),
        (KAFKA_USERNAME_KEY.into(), user.to_string()),
        (KAFKA_PASSWORD_KEY.into(), password.to_string()),
        ("kafka.topic.prefix".into(), v.topic_prefix.clone()),
        ("kafka.group.prefix".into(), v.group_prefix.clone()),
        ("kafka.transactional.id.prefix".into(), v.transactional_id_prefix.clone()),
        ("librdkafka.properties".into(), properties),
        ("kafka-java.properties".into(), java),
    ]);
    if let Some(ca) = &endpoints.kafka_ca {
        data.insert(KAFKA_CA_KEY.into(), ca.clone());
    }
    data
}

/// How many of the tenant's Topics and sinks are ready, and the partitions they use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollup {
    pub topics_ready: i32,
    pub topics_total: i32,
    pub sinks_ready: i32,
    pub sinks_total: i32,
    pub partitions_used: i32,
    /// Names of the Topics and sinks that are not ready, for the Ready message.
    pub not_ready: Vec<String>,
}

pub fn rollup<'a>(
    topics: impl IntoIterator<Item = &'a Topic>,
    sinks: impl IntoIterator<Item = &'a CassandraSink>,
) -> Rollup {
    let ready = |conds: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>| {
        conds.and_then(|c| conditions::status_of(c, conditions::READY)) == Some("True")
    };
    let mut r = Rollup::default();
    for t in topics {
        r.topics_total += 1;
        r.partitions_used += t.spec.partitions;
        if ready(t.status.as_ref().map(|s| &s.conditions)) {
            r.topics_ready += 1;
        } else {
            r.not_ready.push(format!("Topic {}", t.metadata.name.as_deref().unwrap_or_default()));
        }
    }
    for s in sinks {
        r.sinks_total += 1;
        if ready(s.status.as_ref().map(|s| &s.conditions)) {
            r.sinks_ready += 1;
        } else {
            r.not_ready.push(format!("CassandraSink {}", s.metadata.name.as_deref().unwrap_or_default()));
        }
    }
    r
}

/// The Ready condition of a provisioned tenant: true only when every Topic and sink is.
pub fn ready_condition(r: &Rollup) -> DesiredCondition {
    if r.not_ready.is_empty() {
        DesiredCondition::ready(
            Reason::Provisioned,
            format!("{} topics and {} sinks ready", r.topics_total, r.sinks_total),
        )
    } else {
        let mut names = r.not_ready.clone();
        let more = names.len().saturating_sub(5);
        names.truncate(5);
        let suffix = if more > 0 { format!(" and {more} more") } else { String::new() };
        DesiredCondition::not_ready(
            Reason::ChildrenNotReady,
            format!("not ready: {}{suffix}; see their status (kubectl describe)", names.join(", ")),
        )
    }
}

pub fn status(
    old: Option<&TenantStatus>,
    v: Option<&ValidatedTenant>,
    rollup: &Rollup,
    generation: Option<i64>,
) -> TenantStatus {
    let limit = v.and_then(|v| v.limits.max_partitions).map_or("-".to_string(), |l| l.to_string());
    TenantStatus {
        observed_generation: generation,
        conditions: old.map(|s| s.conditions.clone()).unwrap_or_default(),
        namespace: v.map(|v| v.namespace.clone()),
        credentials_secret: v.map(|_| CREDENTIALS_SECRET.to_string()),
        topics: Some(format!("{}/{}", rollup.topics_ready, rollup.topics_total)),
        sinks: Some(format!("{}/{}", rollup.sinks_ready, rollup.sinks_total)),
        partitions: Some(format!("{}/{limit}", rollup.partitions_used)),
        topics_ready: rollup.topics_ready,
        topics_total: rollup.topics_total,
        sinks_ready: rollup.sinks_ready,
        sinks_total: rollup.sinks_total,
        partitions_used: rollup.partitions_used,
        left_behind: old.map(|s| s.left_behind.clone()).unwrap_or_default(),
        credentials: old.and_then(|s| s.credentials.clone()),
        // Written by the usage loop alone (`usage.rs`).
        usage: None,
    }
}

/// The Kafka principal of a tenant.
pub fn principal(v: &ValidatedTenant) -> String {
    crate::access::kafka::user_principal(&v.kafka_user)
}

/// Exactly the ACLs a tenant needs: its topics (read, write, describe; no create or
/// delete, so topics go through Topic objects and their guardrails), its consumer groups
/// and its transactional ids — all by prefix, nothing else.
pub fn desired_acls(v: &ValidatedTenant) -> BTreeSet<AclBinding> {
    let p = principal(v);
    let acl = |r, name: &str, op| AclBinding::allow(&p, r, PatternType::Prefixed, name, op);
    let mut out = BTreeSet::new();
    for op in [AclOperation::Read, AclOperation::Write, AclOperation::Describe, AclOperation::DescribeConfigs] {
        out.insert(acl(ResourceType::Topic, &v.topic_prefix, op));
    }
    for op in [AclOperation::Read, AclOperation::Describe] {
        out.insert(acl(ResourceType::Group, &v.group_prefix, op));
    }
    for op in [AclOperation::Write, AclOperation::Describe] {
        out.insert(acl(ResourceType::TransactionalId, &v.transactional_id_prefix, op));
    }
    out
}

/// The data a Tenant deleted with `Retain` keeps (its access goes either way).
pub fn retained(v: &ValidatedTenant) -> Vec<String> {
    vec![
        format!("Kafka topics with prefix {} (deletionPolicy Retain)", v.topic_prefix),
        format!("Cassandra keyspace {} (deletionPolicy Retain)", v.keyspace),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::kafka::{AclPermission, acl_changes};
    use crate::api::{Tenant, TenantSpec, TopicSpec};
    use crate::tenant::validate;

    pub(crate) fn plain(bootstrap: &str, contact_points: &[&str]) -> Endpoints {
        Endpoints {
            kafka_bootstrap: bootstrap.into(),
            kafka_protocol: "SASL_PLAINTEXT".into(),
            cassandra_contact_points: contact_points.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        }
    }

    fn water() -> ValidatedTenant {
        validate(&Tenant::new("water", TenantSpec::default())).unwrap()
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "tributary.dev/v1alpha1".into(),
            kind: "Tenant".into(),
            name: "water".into(),
            uid: "uid-1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn text(secret: &Secret, key: &str) -> String {
        String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
    }

    #[test]
    fn the_secret_holds_a_ready_to_use_client_bundle() {
        let passwords = Passwords { kafka: "kpw".into(), cassandra: "cpw".into(), ..Passwords::generate() };
        let secret = credentials_secret(&water(), owner(), &plain("k1:9092,k2:9092", &["c1:9042"]), &passwords);
        assert_eq!(secret.metadata.namespace.as_deref(), Some("water"));
        assert_eq!(secret.metadata.owner_references.as_ref().unwrap()[0].uid, "uid-1");
        assert_eq!(text(&secret, "kafka.username"), "water");
        assert_eq!(text(&secret, "kafka.topic.prefix"), "water.");
        assert_eq!(text(&secret, "cassandra.keyspace"), "water");
        assert_eq!(text(&secret, "cassandra.password"), "cpw");
        assert_eq!(
            text(&secret, "librdkafka.properties"),
            "bootstrap.servers=k1:9092,k2:9092\nsasl.mechanism=SCRAM-SHA-512\nsasl.password=kpw\n\
             sasl.username=water\nsecurity.protocol=SASL_PLAINTEXT\n"
        );
        assert!(!secret.data.as_ref().unwrap().contains_key(KAFKA_CA_KEY));
        assert_eq!(text(&secret, "cassandra.tls"), "false");
    }

    #[test]
    fn with_tls_the_bundle_holds_the_cas_and_names_them_where_it_is_mounted() {
        let passwords = Passwords { kafka: "kpw".into(), cassandra: "cpw".into(), ..Passwords::generate() };
        let endpoints = Endpoints {
            kafka_protocol: "SASL_SSL".into(),
            kafka_ca: Some("KAFKA CA".into()),
            cassandra_ca: Some("CASSANDRA CA".into()),
            ..plain("k1:9093", &["c1:9042"])
        };
        let secret = credentials_secret(&water(), owner(), &endpoints, &passwords);
        assert_eq!(text(&secret, KAFKA_CA_KEY), "KAFKA CA");
        assert_eq!(text(&secret, CASSANDRA_CA_KEY), "CASSANDRA CA");
        assert_eq!(text(&secret, "cassandra.tls"), "true");
        let librdkafka = text(&secret, "librdkafka.properties");
        assert!(librdkafka.contains("security.protocol=SASL_SSL\n"), "{librdkafka}");
        assert!(librdkafka.contains("ssl.ca.location=/etc/tributary/credentials/kafka.ca.crt\n"), "{librdkafka}");
        let java = text(&secret, "kafka-java.properties");
        assert!(java.contains("ssl.truststore.type=PEM\n"), "{java}");
        assert!(java.contains("ssl.truststore.location=/etc/tributary/credentials/kafka.ca.crt\n"), "{java}");
        assert!(java.contains("username=\"water\" password=\"kpw\";"), "{java}");
    }

    #[test]
    fn passwords_are_generated_once_and_then_kept() {
        let first = Passwords::generate();
        assert_eq!(first.kafka.len(), 32);
        assert_ne!(first.kafka, first.cassandra);
        let secret = credentials_secret(&water(), owner(), &plain("k:9092", &[]), &first);
        assert_eq!(Passwords::from_secret(&secret, &water()), Some(first.clone()));
        assert!(!format!("{first:?}").contains(&first.kafka));
    }

    #[test]
    fn a_rotation_moves_both_logins_to_their_other_slot_and_back() {
        let first = Passwords::generate();
        let second = first.rotated(false);
        assert_ne!((&second.kafka, &second.cassandra), (&first.kafka, &first.cassandra));
        assert_eq!((second.kafka_slot, second.cassandra_second), (ScramMechanism::Sha256, true));
        let secret = credentials_secret(&water(), owner(), &plain("k:9092", &[]), &second);
        assert_eq!(text(&secret, KAFKA_MECHANISM_KEY), "SCRAM-SHA-256");
        assert_eq!(text(&secret, CASSANDRA_USERNAME_KEY), "water.2");
        assert!(text(&secret, "kafka-java.properties").contains("sasl.mechanism=SCRAM-SHA-256\n"));
        assert_eq!(Passwords::from_secret(&secret, &water()), Some(second.clone()), "the slots are read back");
        let third = second.rotated(false);
        assert_eq!((third.kafka_slot, third.cassandra_second), (ScramMechanism::Sha512, false));

        // A Secret naming any other Cassandra login is not this tenant's.
        let mut planted = secret.clone();
        planted.data.as_mut().unwrap().insert(CASSANDRA_USERNAME_KEY.into(), ByteString(b"other_tenant".to_vec()));
        assert_eq!(Passwords::from_secret(&planted, &water()), None);
    }

    #[test]
    fn an_existing_namespace_is_labelled_but_not_owned() {
        let adopted = namespace(&water(), None);
        assert!(adopted.metadata.owner_references.is_none());
        assert_eq!(adopted.metadata.labels.unwrap()[TENANT_LABEL], "water");
        assert!(namespace(&water(), Some(owner())).metadata.owner_references.is_some());
    }

    fn topic(name: &str, partitions: i32, ready: bool) -> Topic {
        let mut t = Topic::new(
            name,
            TopicSpec {
                topic_name: None,
                partitions,
                replication_factor: 3,
                config: Default::default(),
                deletion_policy: None,
            },
        );
        let c = if ready {
            DesiredCondition::ready(Reason::Provisioned, "")
        } else {
            DesiredCondition::not_ready(Reason::Pending, "")
        };
        t.status = Some(crate::api::TopicStatus {
            conditions: conditions::merge(&[], &[c], None, k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            ..Default::default()
        });
        t
    }

    #[test]
    fn rollup_counts_ready_children_and_partitions() {
        let r = rollup(&[topic("a", 3, true), topic("b", 6, false)], &[]);
        assert_eq!((r.topics_ready, r.topics_total, r.partitions_used), (1, 2, 9));
        let c = ready_condition(&r);
        assert_eq!(
            (c.reason, c.message.as_str()),
            (Reason::ChildrenNotReady, "not ready: Topic b; see their status (kubectl describe)")
        );
        let s = status(None, Some(&water()), &r, Some(4));
        assert_eq!(
            (s.topics.as_deref(), s.sinks.as_deref(), s.partitions.as_deref()),
            (Some("1/2"), Some("0/0"), Some("9/-"))
        );
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(ready_condition(&rollup(&[topic("a", 3, true)], &[])).reason, Reason::Provisioned);
    }

    #[test]
    fn the_tenant_acls_cover_its_prefixes_and_nothing_else() {
        let acls = desired_acls(&water());
        assert_eq!(acls.len(), 8);
        assert!(acls.iter().all(|a| a.principal == "User:water" && a.pattern_type == PatternType::Prefixed));
        assert!(acls.iter().all(|a| a.resource_name == "water."));
        assert!(
            !acls
                .iter()
                .any(|a| matches!(a.operation, AclOperation::Create | AclOperation::Delete | AclOperation::All))
        );
        assert!(!acls.iter().any(|a| a.resource_type == ResourceType::Cluster));

        let stray =
            AclBinding::allow("User:water", ResourceType::Topic, PatternType::Literal, "bts.data", AclOperation::Read);
        let mut current: Vec<AclBinding> = acls.iter().skip(1).cloned().collect();
        current.push(stray.clone());
        let mut admins_deny = AclBinding { permission: AclPermission::Deny, ..stray.clone() };
        admins_deny.resource_name = "water.secret".into();
        current.push(admins_deny);
        let (add, remove) = acl_changes(&acls, &current);
        assert_eq!(add, vec![acls.iter().next().unwrap().clone()]);
        assert_eq!(remove, vec![stray], "the admin's Deny entry is left alone");
        let (add, remove) = acl_changes(&acls, &acls.iter().cloned().collect::<Vec<_>>());
        assert!(add.is_empty() && remove.is_empty(), "a converged set needs no write");
    }
}
