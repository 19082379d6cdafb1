//! `KafkaUser` (one application's own Kafka login inside its tenant) and `TopicGrant` (a
//! tenant sharing its topics with another tenant). Both are the tenant team's objects.
#![allow(clippy::duplicated_attributes)] // kube-derive repeats `type_ = ...` in each printcolumn(..) by design

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::tenant::KafkaQuotas;

/// One application's own Kafka login in the tenant of this namespace: a SCRAM user
/// `<tenant user>.app.<name>` that may do exactly what `spec.acls` lists, with its own
/// credentials Secret (`kafka-user-<name>`, the same keys as the tenant's) and its own share
/// of the tenant's quotas. It can never reach beyond its tenant's prefixes, except a topic
/// another tenant shared with this one through a TopicGrant.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "tributary.dev",
    doc = "One application's least-privilege Kafka login in a tenant.",
    version = "v1alpha1",
    kind = "KafkaUser",
    namespaced,
    status = "KafkaUserStatus",
    shortname = "ku",
    category = "tributary",
    printcolumn(name = "Username", type_ = "string", json_path = ".status.username"),
    printcolumn(name = "Secret", type_ = "string", json_path = ".status.secret"),
    printcolumn(name = "ACLs", type_ = "integer", json_path = ".status.acls"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63")
        .message("a KafkaUser name is part of its Kafka principal: use lowercase letters, digits and '-' (at most 63, no dots)")
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserSpec {
    /// What the application may do, each entry one resource and its operations. Topics
    /// and transactional ids are named by their Kafka names under the tenant's topic prefix,
    /// groups under its group prefix; a topic of another tenant names that tenant in
    /// `resource.tenant` and needs its TopicGrant. At most 64 entries.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub acls: Vec<UserAcl>,
    /// This login's client quotas. Unset figures get its share of the tenant's quotas
    /// (README, "Applications and sharing"); a figure above that share is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<KafkaQuotas>,
}

/// One resource and what the login may do with it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.resource.type == 'Topic' || self.operations.all(o, o != 'Write' || self.resource.type == 'TransactionalId')")
        .message("Write applies to topics and transactional ids, not to groups"),
    validation = Rule::new("self.resource.type != 'TransactionalId' || self.operations.all(o, o != 'Read')")
        .message("Read applies to topics and groups, not to transactional ids"),
    validation = Rule::new("!has(self.resource.tenant) || self.resource.type == 'Topic'")
        .message("only a topic can be another tenant's (resource.tenant)")
)]
pub struct UserAcl {
    /// The Kafka resource this entry is about: its type, its name (or name prefix) and, for
    /// a topic shared by another tenant, that tenant.
    pub resource: AclResource,
    /// `Read`, `Write` and `Describe`: on a topic, consume, produce and read its metadata; on
    /// a group, join it and commit offsets (`Read`) or see it (`Describe`); on a
    /// transactional id, use it (`Write`) or see it (`Describe`).
    #[schemars(length(min = 1, max = 3))]
    pub operations: Vec<UserOperation>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclResource {
    /// `Topic`, `Group` (a consumer group) or `TransactionalId` (a producer's transactional id).
    #[serde(rename = "type")]
    pub type_: AclResourceType,
    /// The Kafka name (or prefix of names, with `patternType: Prefixed`), e.g. `water.data`
    /// or `water.dashboard`.
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub name: String,
    /// `Literal` (the default): exactly this name; `Prefixed`: every name that starts with it.
    #[serde(default)]
    pub pattern_type: AclPatternType,
    /// The tenant whose topic this is, when it is not this tenant's own: it must grant this
    /// tenant access with a TopicGrant in its namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z0-9-]+$"))]
    pub tenant: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum AclResourceType {
    Topic,
    Group,
    TransactionalId,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum AclPatternType {
    #[default]
    Literal,
    Prefixed,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum UserOperation {
    Read,
    Write,
    Describe,
}

/// What the operator observed and did for the KafkaUser.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserStatus {
    /// The `metadata.generation` of the spec this status describes; older than the object's
    /// generation while the operator has not yet acted on the latest change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the login exists with exactly its ACLs and quotas, and its Secret holds it.
    /// `SharedAccess`: whether every topic of another tenant it names is granted now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::conditions::schema")]
    pub conditions: Vec<Condition>,
    /// The Kafka principal's user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The Secret with the login (same keys as the tenant's `tributary-credentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// ACL entries in effect in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acls: Option<i32>,
    /// The topics of other tenants it may read (or write) now, e.g. `water.data (Read, from water)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<String>,
    /// The fingerprint of the login the operator wrote (what makes the Secret its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_credential: Option<String>,
}

/// A tenant sharing its topics with another tenant: the owner grants here (in its own
/// namespace), the receiving tenant accepts by naming the topic in its own KafkaUser or
/// CassandraSink. Access exists only while both sides say so and both Tenants are Ready.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    doc = "A tenant granting another tenant access to its topics.",
    version = "v1alpha1",
    kind = "TopicGrant",
    namespaced,
    status = "TopicGrantStatus",
    shortname = "tg",
    category = "tributary",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenant"),
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.topic"),
    printcolumn(name = "Access", type_ = "string", json_path = ".spec.access"),
    printcolumn(name = "Readers", type_ = "integer", json_path = ".status.readerCount"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TopicGrantSpec {
    /// The tenant granted access.
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z0-9-]+$"))]
    pub tenant: String,
    /// The Kafka name of one of this tenant's topics, e.g. `water.data`, or with
    /// `patternType: Prefixed` a prefix of them (which must lie under this tenant's prefix).
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub topic: String,
    /// `Literal` (the default): exactly that topic; `Prefixed`: every topic whose name
    /// starts with `topic`.
    #[serde(default)]
    pub pattern_type: AclPatternType,
    /// `Read` (consume and describe) or `ReadWrite` (produce too).
    #[serde(default)]
    pub access: GrantAccess,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum GrantAccess {
    #[default]
    Read,
    ReadWrite,
}

/// What the operator observed and did for the TopicGrant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicGrantStatus {
    /// The `metadata.generation` of the spec this status describes; older than the object's
    /// generation while the operator has not yet acted on the latest change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the grant is valid and both Tenants are Ready, so the receiver's logins that
    /// name the topic have access.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::conditions::schema")]
    pub conditions: Vec<Condition>,
    /// Who reads through this grant: each receiving login or sink, and a sink's lag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readers: Vec<String>,
    /// How many entries `readers` has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_count: Option<i32>,
}
