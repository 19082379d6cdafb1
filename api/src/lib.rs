//! `tributary-api`: what the operator, the sink and the tests share, without any Kubernetes,
//! Kafka or Cassandra client: the custom resources of `tributary.dev/v1alpha1` — [`Tenant`]
//! (cluster-scoped, the platform admin's object), [`Topic`] and [`CassandraSink`]
//! (namespaced, the tenant team's objects) —, their labels and conditions, the sink's config
//! ([`contract`]), CQL quoting and the shutdown signal.
//!
//! Doc comments on fields become `kubectl explain` text; schema attributes and CEL rules here
//! are what the API server enforces at apply time.

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

pub use conditions::{ConditionStatus, DesiredCondition, Reason};
pub use sink::{
    Autoscale, AutoscaleStatus, CassandraSink, CassandraSinkSpec, CassandraSinkStatus, PodCount, Position, Replay,
    ReplayPhase, ReplayStatus, WriteTime,
};
pub use tenant::{Tenant, TenantSpec, TenantStatus};
pub use topic::{Topic, TopicSpec, TopicStatus};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
