//! `tributary-api`: what the operator, the sink and the tests share, without any Kubernetes,
//! Kafka or Cassandra client: the custom resources of `tributary.dev/v1alpha1` — [`Tenant`]
//! (cluster-scoped, the platform admin's object), [`Topic`] and [`CassandraSink`]
//! (namespaced, the tenant team's objects) —, their labels and conditions, the sink's config
//! ([`contract`]), CQL quoting and the shutdown signal.
//!
//! Doc comments on fields become `kubectl explain` text; schema attributes and CEL rules here
//! are what the API server enforces at apply time.

pub mod access;
pub mod columns;
pub mod conditions;
pub mod contract;
pub mod cql;
pub mod signal;
pub mod sink;
pub mod tenant;
#[cfg(feature = "tls")]
pub mod tls;
pub mod topic;

pub use access::{KafkaUser, KafkaUserSpec, KafkaUserStatus, TopicGrant, TopicGrantSpec, TopicGrantStatus};
pub use conditions::{ConditionStatus, DesiredCondition, Reason};
pub use sink::{
    Autoscale, AutoscaleStatus, CassandraSink, CassandraSinkSpec, CassandraSinkStatus, PartitionCount, Position,
    Replay, ReplayPhase, ReplayStatus, WriteTime,
};
pub use tenant::{Tenant, TenantSpec, TenantStatus};
pub use topic::{Topic, TopicSpec, TopicStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// The schema of a map a team writes (topic configs): at most 64 entries, keys of at most
/// 255 characters, values of at most 1,024. Without bounds the API server stored 40 Topics
/// with a 900 KiB config value each, and every watcher (the operator) held them all.
pub fn bounded_config_map(_: &mut SchemaGenerator) -> Schema {
    bounded_map(64, 255, serde_json::json!({"type": "string", "maxLength": 1024}))
}

/// The schema of a `datacenter → replicas` map: at most 16 datacenters.
pub fn bounded_datacenters(_: &mut SchemaGenerator) -> Schema {
    bounded_map(16, 48, serde_json::json!({"type": "integer", "format": "int32", "minimum": 1, "maximum": 10}))
}

fn bounded_map(entries: u32, key_length: u32, value: serde_json::Value) -> Schema {
    let rule = format!("self.all(k, size(k) <= {key_length})");
    let message = format!("keys may have at most {key_length} characters");
    serde_json::from_value(serde_json::json!({
        "type": "object",
        "maxProperties": entries,
        "additionalProperties": value,
        "x-kubernetes-validations": [{"rule": rule, "message": message}],
    }))
    .expect("a map schema")
}

/// Every CustomResourceDefinition of Tributary, generated from the types above: what
/// `make generate` writes (one `<plural>.yaml` each) and what the schema tests walk, so a new
/// kind listed here is both written and checked.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![Tenant::crd(), Topic::crd(), CassandraSink::crd(), KafkaUser::crd(), TopicGrant::crd()]
}

pub const GROUP: &str = "tributary.dev";
/// Label on every namespace and child object the operator manages for a tenant.
pub const TENANT_LABEL: &str = "tributary.dev/tenant";
/// `app.kubernetes.io/managed-by` on everything the operator creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "tributary");
pub const VERSION: &str = "v1alpha1";

/// What happens to external data (topics, keyspace, users) when its object is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the data in Kafka/Cassandra; only the Kubernetes object goes away. The default:
    /// nothing is lost because an object was deleted by mistake.
    #[default]
    Retain,
    /// Delete the data too.
    Delete,
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Every string, list and map a team or an admin writes has a bound the API server
    /// enforces: a spec field without one lets a single object grow every watcher's memory.
    fn unbounded(path: &str, schema: &Value, found: &mut Vec<String>) {
        let Some(object) = schema.as_object() else { return };
        match object.get("type").and_then(Value::as_str) {
            Some("string") if !object.contains_key("maxLength") && !object.contains_key("enum") => {
                found.push(format!("{path}: string without maxLength"))
            }
            Some("array") if !object.contains_key("maxItems") => found.push(format!("{path}: list without maxItems")),
            Some("object") if object.contains_key("additionalProperties") && !object.contains_key("maxProperties") => {
                found.push(format!("{path}: map without maxProperties"))
            }
            _ => {}
        }
        for (key, child) in object {
            match key.as_str() {
                "properties" => {
                    for (name, field) in child.as_object().into_iter().flatten() {
                        unbounded(&format!("{path}.{name}"), field, found);
                    }
                }
                "items" | "additionalProperties" => unbounded(&format!("{path}[]"), child, found),
                "oneOf" | "anyOf" | "allOf" => {
                    for (i, branch) in child.as_array().into_iter().flatten().enumerate() {
                        unbounded(&format!("{path}<{i}>"), branch, found);
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn every_spec_string_list_and_map_is_bounded() {
        let mut found = Vec::new();
        for crd in crate::crds() {
            let kind = crd.spec.names.kind.clone();
            let version = &crd.spec.versions[0];
            let schema = serde_json::to_value(&version.schema.as_ref().unwrap().open_api_v3_schema).unwrap();
            unbounded(&format!("{kind}.spec"), &schema["properties"]["spec"], &mut found);
        }
        assert!(found.is_empty(), "unbounded fields in the CRD schemas:\n{}", found.join("\n"));
    }
}
