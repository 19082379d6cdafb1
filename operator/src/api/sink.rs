//! `CassandraSink`: streams one Topic into one Cassandra table.
#![allow(clippy::duplicated_attributes)] // kube-derive repeats `type_ = ...` in each printcolumn(..) by design

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Streams the records of one Topic (in this namespace) into one table of the tenant's
/// keyspace. Runs as its own Deployment with its own consumer group and least-privilege
/// Kafka user; offsets are committed only after Cassandra acknowledged the writes, and a
/// record that cannot be written goes to the sink's dead-letter topic.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    doc = "Streams a Topic into a Cassandra table.",
    version = "v1alpha1",
    kind = "CassandraSink",
    namespaced,
    status = "CassandraSinkStatus",
    shortname = "cs",
    category = "tributary",
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.topic"),
    printcolumn(name = "Table", type_ = "string", json_path = ".status.table"),
    printcolumn(name = "Replicas", type_ = "string", json_path = ".status.replicas"),
    printcolumn(name = "Lag", type_ = "integer", json_path = ".status.lag"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.partitionKey.all(k, self.columns.exists(c, c.name == k))")
        .message("every partitionKey entry must be the name of a column in columns"),
    validation = Rule::new("self.clusteringKey.all(k, self.columns.exists(c, c.name == k.column))")
        .message("every clusteringKey entry must be the name of a column in columns"),
    validation = Rule::new("self.partitionKey == oldSelf.partitionKey && self.clusteringKey == oldSelf.clusteringKey")
        .message("the primary key is immutable: Cassandra cannot change a table's primary key. Create a new CassandraSink with a new table"),
    validation = Rule::new("self.table == oldSelf.table && self.topic == oldSelf.topic")
        .message("topic and table are immutable: create a new CassandraSink to stream elsewhere"),
    validation = Rule::new("self.format != 'Csv' || self.columns.all(c, !has(c.field) || !c.field.contains('.'))")
        .message("CSV records have no nested fields: with format Csv, field must be a header name or a column position, without '.'")
)]
pub struct CassandraSinkSpec {
    /// Name of the Topic object (in this namespace) to read.
    #[schemars(length(min = 1, max = 253))]
    pub topic: String,

    /// Table in the tenant's keyspace; created from `columns` and the keys when absent,
    /// checked against them when present.
    #[schemars(length(min = 1, max = 48), regex(pattern = r"^[a-z][a-z0-9_]{0,47}$"))]
    pub table: String,

    /// The table's columns and where each value comes from in a record.
    #[schemars(length(min = 1, max = 256))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub columns: Vec<Column>,

    /// Partition key columns, in order (at least one).
    #[schemars(length(min = 1, max = 16))]
    pub partition_key: Vec<String>,

    /// Clustering columns, in order.
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub clustering_key: Vec<ClusteringColumn>,

    /// How records are encoded.
    #[serde(default)]
    pub format: RecordFormat,

    /// CSV options (with `format: Csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvOptions>,

    /// Time to live of written rows, in seconds. Unset: rows do not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 630720000))]
    pub ttl_seconds: Option<i32>,

    /// Consistency level of writes (default `LocalQuorum`).
    #[serde(default)]
    pub consistency: Consistency,

    /// Sink replicas (consumers in the group). Capped at the topic's partitions.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 64))]
    pub replicas: i32,
}

fn default_replicas() -> i32 {
    1
}

/// One table column.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    /// Column name (lowercase letters, digits, `_`; at most 48).
    #[schemars(length(min = 1, max = 48), regex(pattern = r"^[a-z][a-z0-9_]{0,47}$"))]
    pub name: String,
    /// CQL type: a scalar (`text`, `int`, `bigint`, `double`, `decimal`, `boolean`,
    /// `timestamp`, `uuid`, ...) or `list<T>`, `set<T>`, `map<K, V>` of scalars.
    #[serde(rename = "type")]
    #[schemars(
        length(min = 1, max = 64),
        regex(
            pattern = r"^((ascii|bigint|blob|boolean|date|decimal|double|float|inet|int|smallint|text|time|timestamp|timeuuid|tinyint|uuid|varchar|varint)|(list|set)<(ascii|bigint|boolean|date|decimal|double|float|inet|int|smallint|text|time|timestamp|timeuuid|tinyint|uuid|varchar|varint)>|map<(ascii|bigint|boolean|date|decimal|double|float|inet|int|smallint|text|time|timestamp|timeuuid|tinyint|uuid|varchar|varint), ?(ascii|bigint|boolean|date|decimal|double|float|inet|int|smallint|text|time|timestamp|timeuuid|tinyint|uuid|varchar|varint)>)$"
        )
    )]
    pub type_: String,
    /// Where the value is in a record. JSON: a dotted path (`reading.ph`); CSV: a header
    /// name, or a 0-based position. Defaults to the column name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub field: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusteringColumn {
    /// A column from `columns`.
    #[schemars(length(min = 1, max = 48))]
    pub column: String,
    /// Sort order (default `Asc`).
    #[serde(default)]
    pub order: SortOrder,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RecordFormat {
    #[default]
    Json,
    Csv,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsvOptions {
    /// Names of the CSV fields in order, e.g. `station,ts,ph` (each record is one CSV line
    /// without a header). Unset: columns reference fields by 0-based position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub header: Option<String>,
    /// Field delimiter, one character (default `,`).
    #[serde(default = "default_delimiter")]
    #[schemars(length(min = 1, max = 1))]
    pub delimiter: String,
}

fn default_delimiter() -> String {
    ",".into()
}

/// Cassandra write consistency levels.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Consistency {
    Any,
    One,
    Two,
    Three,
    Quorum,
    All,
    #[default]
    LocalQuorum,
    EachQuorum,
    LocalOne,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraSinkStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `MappingValid`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::conditions::schema")]
    pub conditions: Vec<Condition>,
    /// The tenant this sink belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `keyspace.table` the sink writes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Ready / desired replicas, e.g. `2/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// The sink's consumer group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// Records in the topic not yet committed by the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_written: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl CassandraSink {
    /// The tenant it resolved to and its conditions: what other controllers react to.
    pub fn readiness(&self) -> (Option<&str>, &[Condition]) {
        let status = self.status.as_ref();
        (status.and_then(|s| s.tenant.as_deref()), status.map(|s| s.conditions.as_slice()).unwrap_or_default())
    }
}
