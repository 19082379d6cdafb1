//! A topic as the spec wants it and as Kafka has it: plain values (no client, no I/O), which
//! validation, the diffs and the Kafka adapter share.

use std::collections::{BTreeMap, BTreeSet};

/// A topic as the operator wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub config: BTreeMap<String, String>,
    /// The config keys the Topic owns: its own and every key its tenant may set. An
    /// override of an owned key that the spec does not set is removed; other keys (set by
    /// the platform admin) are left alone.
    pub owned_keys: BTreeSet<String>,
}

/// A topic as Kafka has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedTopic {
    pub partitions: i32,
    pub replication_factor: i32,
    /// Partitions with fewer in-sync replicas than replicas (a broker is down or behind).
    pub under_replicated: i32,
    /// Every config entry Kafka reports for the topic.
    pub config: BTreeMap<String, LiveConfig>,
}

/// One config entry of a topic. `dynamic`: set on the topic itself (an override), as
/// opposed to a broker or built-in default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    pub value: Option<String>,
    pub dynamic: bool,
}

/// What one DescribeTopics + DescribeConfigs round trip tells about a topic and the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicView {
    /// `None` when the topic does not exist.
    pub topic: Option<ObservedTopic>,
    /// Brokers the cluster reports alive, where the adapter asked already (a topic missing or
    /// under-replicated); `None`: ask [`crate::external::kafka::KafkaAdmin::live_brokers`]
    /// when it matters.
    pub brokers: Option<i32>,
}

/// Read-only counts of a topic, for the sink status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopicProgress {
    pub records: i64,
    pub lag: i64,
    /// The highest high watermark of its partitions (the next offset to be written).
    pub end: i64,
}
