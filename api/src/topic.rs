//! `Topic`: one Kafka topic of a tenant.
#![allow(clippy::duplicated_attributes)] // kube-derive repeats `type_ = ...` in each printcolumn(..) by design

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DeletionPolicy;

/// The most partitions a Topic may have (`spec.partitions`); what bounds the lists that hold
/// one entry per partition.
pub const MAX_PARTITIONS: i32 = 1000;

/// A Kafka topic of the tenant that owns this namespace. Its Kafka name is the tenant's
/// topic prefix followed by `spec.topicName` (default: the object's name), e.g. `water.data`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    doc = "A Kafka topic of a tenant.",
    version = "v1alpha1",
    kind = "Topic",
    namespaced,
    status = "TopicStatus",
    shortname = "kt",
    category = "tributary",
    printcolumn(name = "Kafka Name", type_ = "string", json_path = ".status.kafkaName"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(name = "RF", type_ = "integer", json_path = ".spec.replicationFactor"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Shared With", type_ = "string", json_path = ".status.sharedWith"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 200")
        .message("a Topic name is part of its Kafka name (at most 249 characters with the tenant prefix): use at most 200 characters")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.partitions >= oldSelf.partitions")
        .message("partitions can only grow: Kafka cannot remove partitions. To use fewer, create a new Topic and move the consumers"),
    validation = Rule::new("self.replicationFactor == oldSelf.replicationFactor")
        .message("replicationFactor is immutable: changing it needs a partition reassignment. Create a new Topic with the replication factor you need"),
    validation = Rule::new("has(self.topicName) == has(oldSelf.topicName) && (!has(self.topicName) || self.topicName == oldSelf.topicName)")
        .message("topicName is immutable: a new name is a new Kafka topic. Create a new Topic instead")
)]
pub struct TopicSpec {
    /// The topic's name after the tenant prefix. Defaults to the object's name. Kafka's
    /// rules: letters, digits, `.`, `_` and `-`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    #[x_kube(validation = Rule::new("self != '.' && self != '..'").message("topicName may not be '.' or '..'"))]
    pub topic_name: Option<String>,

    /// Number of partitions (default 3). May be increased, never decreased.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = MAX_PARTITIONS))]
    pub partitions: i32,

    /// Replicas of each partition (default 3). Immutable; the tenant's limits bound it.
    #[serde(default = "default_replication_factor")]
    #[schemars(range(min = 1, max = 32))]
    pub replication_factor: i32,

    /// Kafka topic configs, e.g. `retention.ms: "604800000"`. Only keys the tenant's
    /// `allowedConfigs` lists are accepted. Changes are applied incrementally; a value changed
    /// directly in Kafka is set back.
    /// At most 64 keys; values of at most 1,024 characters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "super::bounded_config_map")]
    pub config: BTreeMap<String, String>,

    /// What happens to the Kafka topic when this object is deleted. Defaults to the
    /// Tenant's `deletionPolicy` (itself `Retain` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

fn default_partitions() -> i32 {
    3
}
fn default_replication_factor() -> i32 {
    3
}

/// What the operator observed and did for the Topic.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// The `metadata.generation` of the spec this status describes; older than the object's
    /// generation while the operator has not yet acted on the latest change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the topic exists in Kafka as specified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::conditions::schema")]
    pub conditions: Vec<Condition>,
    /// The full Kafka topic name (tenant prefix + name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_name: Option<String>,
    /// The tenant this topic belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Partitions observed in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Replication factor observed in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
    /// Config values last found changed directly in Kafka and set back to the spec, e.g.
    /// `retention.ms: 1000 → 604800000`. Cleared when the spec changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverted_config: Vec<String>,
    /// What deleting this object will do to the Kafka topic (spec, else the Tenant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// The tenants this topic is shared with by a TopicGrant of this namespace, e.g.
    /// `bts (Read)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
}

impl Topic {
    /// The tenant it resolved to and its conditions: what other controllers react to.
    pub fn readiness(&self) -> (Option<&str>, &[Condition]) {
        let status = self.status.as_ref();
        (status.and_then(|s| s.tenant.as_deref()), status.map(|s| s.conditions.as_slice()).unwrap_or_default())
    }
}
