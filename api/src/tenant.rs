//! `Tenant`: one team's slice of the shared platform.
#![allow(clippy::duplicated_attributes)] // kube-derive repeats `type_ = ...` in each printcolumn(..) by design

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DeletionPolicy;

/// A tenant of the shared Kafka and Cassandra clusters. The operator gives it a namespace,
/// a Kafka user whose ACLs cover only the tenant's prefixes, a Cassandra keyspace and role,
/// and a Secret `tributary-credentials` in the namespace with everything a client needs.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "tributary.dev",
    doc = "A tenant of the shared Kafka and Cassandra clusters (cluster-scoped).",
    version = "v1alpha1",
    kind = "Tenant",
    status = "TenantStatus",
    shortname = "tn",
    category = "tributary",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Topics", type_ = "string", json_path = ".status.topics"),
    printcolumn(name = "Sinks", type_ = "string", json_path = ".status.sinks"),
    printcolumn(name = "Partitions", type_ = "string", json_path = ".status.partitions"),
    printcolumn(name = "Kafka Bytes", type_ = "integer", json_path = ".status.usage.kafkaBytes"),
    printcolumn(name = "Cassandra Bytes", type_ = "integer", json_path = ".status.usage.cassandraBytes"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$')")
        .message("a Tenant name is its Kafka prefix, namespace and keyspace: use 1-40 lowercase letters, digits and '-', starting with a letter")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.__namespace__) == has(oldSelf.__namespace__) && (!has(self.__namespace__) || self.__namespace__ == oldSelf.__namespace__)")
        .message("namespace is immutable: the tenant's objects live there. Create a new Tenant to use another namespace"),
    validation = Rule::new("!has(self.__namespace__) || !(self.__namespace__.startsWith('kube-') || self.__namespace__ == 'default')")
        .message("namespace: kube-* and default are system namespaces and never a tenant's: choose another namespace")
)]
pub struct TenantSpec {
    /// The namespace the tenant's team works in (created and labelled by the operator).
    /// Defaults to the Tenant's name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: Option<String>,

    /// Kafka settings: prefixes, quotas and guardrails.
    #[serde(default)]
    pub kafka: TenantKafka,

    /// Cassandra settings: the tenant's keyspace.
    #[serde(default)]
    pub cassandra: TenantCassandra,

    /// What happens to the tenant's data (topics, dead-letter topics, keyspace) when the
    /// Tenant is deleted: `Retain` (default) keeps it, `Delete` removes it. Access (the Kafka
    /// user, sink users, their ACLs and quotas, the Cassandra role) always goes with the Tenant.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Explicit take-over of things that already exist. Without it, a Tenant whose namespace,
    /// Kafka user, topics or groups under its prefixes, Cassandra role or keyspace already exist (and
    /// are not its own) is refused (`Ready=False`) and nothing is written.
    #[serde(default, skip_serializing_if = "TenantAdopt::is_none")]
    pub adopt: TenantAdopt,

    /// Rotation of the tenant's credentials (its Kafka user's and Cassandra login's passwords,
    /// and its sinks' Kafka users'), on request and on a schedule, without downtime: the new
    /// credentials go into the Secret while the old ones keep working, until every sink pod
    /// runs with the new ones and `gracePeriodSeconds` has passed; then the old ones are
    /// removed. Progress is in `status.credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialRotation>,
}

/// When the tenant's credentials are rotated, and how long the previous ones keep working.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialRotation {
    /// Any new value rotates once (e.g. the date, or a ticket number); the last one done is
    /// `status.credentials.rotationRequest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub rotation_request: Option<String>,
    /// Rotate every this many days (counted from the last rotation, or the first provisioning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub rotate_every_days: Option<i32>,
    /// How long after a rotation the previous credentials keep working for the tenant's own
    /// clients (which must re-read the Secret), at least until every sink pod runs with the
    /// new ones. Default 3600 (one hour); at most 7 days.
    #[serde(default = "default_grace_seconds")]
    #[schemars(range(min = 0, max = 604800))]
    pub grace_period_seconds: i64,
}

fn default_grace_seconds() -> i64 {
    3600
}

impl Default for CredentialRotation {
    fn default() -> Self {
        CredentialRotation {
            rotation_request: None,
            rotate_every_days: None,
            grace_period_seconds: default_grace_seconds(),
        }
    }
}

/// What a Tenant may take over although it exists already. Each is an explicit decision of
/// the platform admin: the operator then resets the credential (new password) and the grants
/// to the tenant's, and treats the thing as the Tenant's own from then on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantAdopt {
    /// Label and use an existing namespace (never a system one). A `tributary-credentials`
    /// Secret already in it is never trusted: new passwords are generated.
    #[serde(default)]
    pub namespace: bool,
    /// Take over an existing Kafka user named like the Tenant (its password is replaced).
    #[serde(default)]
    pub kafka_user: bool,
    /// Accept Kafka topics that already exist under the topic prefix (e.g. kept by a deleted
    /// Tenant with `Retain`): the tenant gets access to them.
    #[serde(default)]
    pub kafka_topics: bool,
    /// Accept consumer groups that already exist under the group prefix (their committed
    /// offsets become the tenant's to read and reset).
    #[serde(default)]
    pub kafka_groups: bool,
    /// Take over an existing Cassandra role named like the keyspace (password and grants replaced).
    #[serde(default)]
    pub cassandra_role: bool,
    /// Use an existing keyspace (e.g. kept by a deleted Tenant with `Retain`).
    #[serde(default)]
    pub keyspace: bool,
}

impl TenantAdopt {
    pub fn is_none(&self) -> bool {
        *self == TenantAdopt::default()
    }
}

/// The tenant's Kafka principal and what it may touch. Every prefix defaults to `<tenant>.`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
// `kafka` and `cassandra` default to `{}`, so these transition rules always apply.
#[x_kube(validation = Rule::new("has(self.topicPrefix) == has(oldSelf.topicPrefix) && (!has(self.topicPrefix) || self.topicPrefix == oldSelf.topicPrefix) && has(self.groupPrefix) == has(oldSelf.groupPrefix) && (!has(self.groupPrefix) || self.groupPrefix == oldSelf.groupPrefix) && has(self.transactionalIdPrefix) == has(oldSelf.transactionalIdPrefix) && (!has(self.transactionalIdPrefix) || self.transactionalIdPrefix == oldSelf.transactionalIdPrefix)")
    .message("kafka.topicPrefix, groupPrefix and transactionalIdPrefix are immutable: they are the tenant's identity in Kafka. Create a new Tenant to use other prefixes"))]
#[x_kube(validation = Rule::new("has(self.externalUser) == has(oldSelf.externalUser) && (!has(self.externalUser) || self.externalUser.name == oldSelf.externalUser.name)")
    .message("kafka.externalUser cannot be added, removed or renamed: the tenant's ACLs, quotas and sinks belong to its principal. Its mechanism and passwordSecret may change; create a new Tenant for another principal"))]
pub struct TenantKafka {
    /// Prefix of every Kafka topic of this tenant (Kafka name = prefix + Topic name).
    /// Defaults to `<tenant>.`. Letters, digits, `.`, `_`, `-`, starting with a letter or
    /// digit (a leading `_` would reach Kafka's internal topics). Immutable. It may not
    /// overlap another Tenant's (neither may be a prefix of the other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100), regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"))]
    pub topic_prefix: Option<String>,

    /// Prefix of the consumer groups the tenant may use. Defaults to `<tenant>.`. Same
    /// rules as `topicPrefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100), regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"))]
    pub group_prefix: Option<String>,

    /// Prefix of the transactional ids the tenant may use. Defaults to `<tenant>.`. Same
    /// rules as `topicPrefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100), regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"))]
    pub transactional_id_prefix: Option<String>,

    /// Client quotas for the tenant's user (all its clients together, per broker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<KafkaQuotas>,

    /// Guardrails every Topic of the tenant must respect.
    #[serde(default)]
    pub limits: TenantLimits,

    /// A Kafka principal issued outside the operator (a managed Kafka's API key, a SASL/PLAIN
    /// user of the brokers' JAAS config), for clusters where users cannot be created through
    /// the Kafka API. The operator then creates no Kafka user for the tenant or its sinks:
    /// it grants this principal the tenant's ACLs and quotas, hands its login out in the
    /// tenant's Secret, and the sinks run as it. Deleting the Tenant removes the ACLs and
    /// quotas, never the principal. Its name is immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user: Option<ExternalKafkaUser>,
}

/// A Kafka login issued outside the operator; its password is read from a Secret in the
/// operator's namespace (the platform admin's, never the tenant's).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalKafkaUser {
    /// The user name the brokers authenticate (ACLs go to `User:<name>`). Not the operator's
    /// own user, another Tenant's, or a name with `.sink.` (the operator's sink users).
    #[schemars(length(min = 1, max = 200), regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9._@=+-]*$"))]
    pub name: String,
    /// The SASL mechanism this login uses.
    pub mechanism: SaslMechanism,
    /// The Secret (in the operator's namespace) and key holding the password.
    pub password_secret: SecretKey,
}

/// SASL mechanisms a Kafka login can use.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SaslMechanism {
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// SASL/PLAIN, e.g. Confluent Cloud API keys; only ever over TLS outside a laptop.
    #[serde(rename = "PLAIN")]
    Plain,
}

impl SaslMechanism {
    /// The name Kafka clients use (`sasl.mechanism`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::Plain => "PLAIN",
        }
    }

    /// The JAAS login module of the JVM client.
    pub const fn java_login_module(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "org.apache.kafka.common.security.plain.PlainLoginModule",
            _ => "org.apache.kafka.common.security.scram.ScramLoginModule",
        }
    }
}

/// A key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKey {
    /// The name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Defaults to `password`.
    #[serde(default = "default_password_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_password_key() -> String {
    "password".into()
}

/// Kafka client quotas, as Kafka defines them (per broker).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaQuotas {
    /// Produce bandwidth, bytes per second per broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024))]
    pub producer_byte_rate: Option<i64>,
    /// Fetch bandwidth, bytes per second per broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024))]
    pub consumer_byte_rate: Option<i64>,
    /// Share of broker request-handler and network threads time, in percent (100 = one thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub request_percentage: Option<i32>,
}

/// Guardrails for the tenant's topics. A Topic beyond them is refused (`Ready=False`,
/// reason `GuardrailViolated`) and nothing is created in Kafka.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicationFactor <= self.maxReplicationFactor")
    .message("minReplicationFactor must not exceed maxReplicationFactor"))]
pub struct TenantLimits {
    /// Most topics the tenant may have. Unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_topics: Option<i32>,
    /// Most partitions over all the tenant's topics. Unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_partitions: Option<i32>,
    /// Smallest replication factor a Topic may ask for (default 3: the seeds' cluster shape).
    #[serde(default = "default_min_rf")]
    #[schemars(range(min = 1, max = 32))]
    pub min_replication_factor: i32,
    /// Largest replication factor a Topic may ask for (default 3).
    #[serde(default = "default_max_rf")]
    #[schemars(range(min = 1, max = 32))]
    pub max_replication_factor: i32,
    /// Topic config keys a Topic may set (e.g. `retention.ms`). Unset: the operator's safe
    /// default list; an empty list allows none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 255)))]
    pub allowed_configs: Option<Vec<String>>,
    /// Largest `retention.ms` a Topic may set (default 30 days); `-1` also allows infinite
    /// retention (`retention.ms: "-1"`), which is refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1))]
    pub max_retention_ms: Option<i64>,
    /// Largest `max.message.bytes` a Topic may set (default 8 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024))]
    pub max_message_bytes: Option<i64>,
    /// Bounds of the other topic configs that touch the shared brokers (`segment.ms`,
    /// `segment.bytes`, `min.compaction.lag.ms`, `max.compaction.lag.ms`,
    /// `delete.retention.ms`), replacing the operator's defaults for this tenant (README,
    /// "Topic config bounds"). Only the platform admin writes a Tenant, so only the admin
    /// can widen them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    pub config_bounds: Vec<ConfigBound>,
    /// Most Topic objects in the tenant's namespace, enforced by Kubernetes (a ResourceQuota
    /// the operator writes there). Default 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub max_topic_objects: Option<i32>,
    /// Most CassandraSinks in the tenant's namespace (ResourceQuota). Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub max_sinks: Option<i32>,
    /// Most KafkaUsers (application logins) in the tenant's namespace (ResourceQuota), and
    /// what the applications' quarter of the tenant's quotas is divided by. Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub max_kafka_users: Option<i32>,
    /// Most pods in the tenant's namespace, sink pods included (ResourceQuota). Default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub max_pods: Option<i32>,
    /// CPU all pods of the namespace may request together (ResourceQuota `requests.cpu`),
    /// e.g. `"8"` or `"500m"`. Default `"8"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[0-9]+(\.[0-9]+)?m?$"))]
    pub cpu: Option<String>,
    /// Memory all pods of the namespace may use together (ResourceQuota `limits.memory`),
    /// e.g. `"16Gi"`. Default `"16Gi"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"))]
    pub memory: Option<String>,
}

/// The smallest and largest value a Topic of the tenant may give one config key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.min) || !has(self.max) || self.min <= self.max")
    .message("a config bound's min must not exceed its max"))]
pub struct ConfigBound {
    /// The config key.
    #[schemars(regex(
        pattern = r"^(segment\.ms|segment\.bytes|min\.compaction\.lag\.ms|max\.compaction\.lag\.ms|delete\.retention\.ms)$"
    ))]
    #[schemars(length(min = 1, max = 64))]
    pub key: String,
    /// Smallest value a Topic may set (unset: no lower bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Largest value a Topic may set (unset: no upper bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            max_topics: None,
            max_partitions: None,
            min_replication_factor: default_min_rf(),
            max_replication_factor: default_max_rf(),
            allowed_configs: None,
            max_retention_ms: None,
            max_message_bytes: None,
            config_bounds: Vec::new(),
            max_topic_objects: None,
            max_sinks: None,
            max_kafka_users: None,
            max_pods: None,
            cpu: None,
            memory: None,
        }
    }
}

fn default_min_rf() -> i32 {
    3
}
fn default_max_rf() -> i32 {
    3
}

/// The tenant's Cassandra keyspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.keyspace) == has(oldSelf.keyspace) && (!has(self.keyspace) || self.keyspace == oldSelf.keyspace)")
    .message("cassandra.keyspace is immutable: it is the tenant's data and role in Cassandra. Create a new Tenant to use another keyspace"))]
pub struct TenantCassandra {
    /// Keyspace name, also the name of the tenant's Cassandra role. Defaults to the tenant
    /// name with `-` replaced by `_`. Cassandra identifier rules: up to 48 lowercase letters,
    /// digits and `_`, starting with a letter; never `system*`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 48), regex(pattern = r"^[a-z][a-z0-9_]*$"))]
    #[x_kube(validation = Rule::new("!self.startsWith('system')").message("keyspaces named system* are Cassandra's own: choose another spec.cassandra.keyspace"))]
    pub keyspace: Option<String>,
    /// Keyspace replication.
    #[serde(default)]
    pub replication: CassandraReplication,
    /// Let the tenant's role change the keyspace's schema (CREATE, ALTER and DROP of its
    /// tables and types). Default false: the role reads and writes rows (SELECT, MODIFY),
    /// which is all an application and the sinks need (the operator creates and evolves the
    /// sinks' tables itself); table options that touch the shared node stay out of reach.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub schema_changes: bool,
}

/// How the keyspace is replicated.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraReplication {
    /// Replication strategy.
    #[serde(default)]
    pub class: ReplicationClass,
    /// Replicas per datacenter (`SimpleStrategy`: in the cluster). Default 1.
    #[serde(default = "default_keyspace_rf")]
    #[schemars(range(min = 1, max = 10))]
    pub replication_factor: i32,
    /// `NetworkTopologyStrategy` only: replicas per datacenter, overriding replicationFactor.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "super::bounded_datacenters")]
    pub datacenters: BTreeMap<String, i32>,
}

impl Default for CassandraReplication {
    fn default() -> Self {
        CassandraReplication { class: ReplicationClass::default(), replication_factor: 1, datacenters: BTreeMap::new() }
    }
}

fn default_keyspace_rf() -> i32 {
    1
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ReplicationClass {
    #[default]
    SimpleStrategy,
    NetworkTopologyStrategy,
}

/// What the operator observed and did for the tenant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The `metadata.generation` of the spec this status describes; older than the object's
    /// generation while the operator has not yet acted on the latest change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: everything of the tenant is provisioned and every Topic and sink is ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::conditions::schema")]
    pub conditions: Vec<Condition>,
    /// The tenant's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Secret (in the namespace) with the tenant's client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// Ready / total Topics, e.g. `2/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<String>,
    /// Ready / total CassandraSinks, e.g. `1/1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinks: Option<String>,
    /// Partitions used / limit, e.g. `9/30` (`9/-` without a limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<String>,
    /// Topics of the tenant that are Ready (the first number of `topics`).
    #[serde(default)]
    pub topics_ready: i32,
    /// All Topics of the tenant (the second number of `topics`).
    #[serde(default)]
    pub topics_total: i32,
    /// CassandraSinks of the tenant that are Ready (the first number of `sinks`).
    #[serde(default)]
    pub sinks_ready: i32,
    /// All CassandraSinks of the tenant (the second number of `sinks`).
    #[serde(default)]
    pub sinks_total: i32,
    /// Partitions the tenant's Topics ask for in total, ready or not; counted against
    /// `spec.limits.maxPartitions`.
    #[serde(default)]
    pub partitions_used: i32,
    /// External state kept when the Tenant was being deleted with `Retain`, or that could
    /// not be reached during deletion (for the admin to clean up by hand).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_behind: Vec<String>,
    /// The credentials in the Secret: since when, which logins, and whether the previous
    /// ones still work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsStatus>,
    /// What the tenant uses of the shared clusters now (for chargeback), refreshed on a
    /// bound and rewritten only when a figure moved by more than a small step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TenantUsage>,
}

/// What a tenant uses of the shared clusters. Counts are rewritten on any change; bytes,
/// records and lag when they moved by more than 5% since last written (or from or to zero),
/// so a steady platform writes no status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantUsage {
    /// Kafka topics under the tenant's prefix (its Topics and its sinks' dead-letter topics).
    pub topics: i64,
    /// Partitions of those topics.
    pub partitions: i64,
    /// Bytes those topics take on the brokers' disks, every replica on every broker counted.
    pub kafka_bytes: i64,
    /// Bytes of the tenant's keyspace in Cassandra's SSTables on disk, in whole MiB as
    /// Cassandra reports them (rows still only in memory are not counted yet).
    pub cassandra_bytes: i64,
    /// Records the tenant's sinks have written to Cassandra (the sum of their `recordsWritten`).
    pub sink_records_written: i64,
    /// Records the tenant's sinks have not written yet (the sum of their `lag`).
    pub sink_lag: i64,
    /// When these figures were written (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// Which credentials the tenant's Secret holds (never the passwords).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsStatus {
    /// When the passwords in the Secret were made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<String>,
    /// The last `spec.credentials.rotationRequest` carried out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_request: Option<String>,
    /// The SASL mechanism of the Kafka login in the Secret (rotation alternates SCRAM-SHA-512
    /// and SCRAM-SHA-256, the two credentials a SCRAM user can hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_mechanism: Option<String>,
    /// The Cassandra login in the Secret (rotation alternates the keyspace's role and
    /// `<role>.2`, a login role granted it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cassandra_username: Option<String>,
    /// Set while the previous credentials still work: what they wait for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

impl Tenant {
    /// The Tenant's own things (namespace, user, keyspace, role) exist: Ready, or not Ready
    /// only because some of its Topics or sinks are not.
    pub fn provisioned(&self) -> bool {
        let conditions = self.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
        let ready = conditions.iter().find(|c| c.type_ == super::conditions::READY);
        ready.is_some_and(|c| c.status == "True" || c.reason == super::conditions::Reason::ChildrenNotReady.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_is_provisioned_when_ready_or_waiting_only_for_its_children() {
        let with_ready = |status: &str, reason: &str| {
            let mut tenant = Tenant::new("water", serde_json::from_value(serde_json::json!({})).unwrap());
            let ready = Condition {
                type_: "Ready".into(),
                status: status.into(),
                reason: reason.into(),
                message: String::new(),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
                observed_generation: None,
            };
            tenant.status = Some(TenantStatus { conditions: vec![ready], ..Default::default() });
            tenant
        };
        assert!(with_ready("True", "Provisioned").provisioned());
        assert!(with_ready("False", "ChildrenNotReady").provisioned());
        assert!(!with_ready("False", "CassandraUnavailable").provisioned());
        assert!(!Tenant::new("water", serde_json::from_value(serde_json::json!({})).unwrap()).provisioned());
    }
}
