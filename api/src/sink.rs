//! `CassandraSink`: streams one Topic into one Cassandra table.
#![allow(clippy::duplicated_attributes)] // kube-derive repeats `type_ = ...` in each printcolumn(..) by design

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An RFC 3339 time (`2026-12-01T00:00:00Z`, fractions and offsets allowed) as a CEL regex
/// literal: the rules of `startFrom` and `replay.from`. `Position::parse` is the same check
/// for objects older than the rules.
const RFC3339_CEL: &str =
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$";

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
    validation = Rule::new("self.table == oldSelf.table && self.topic == oldSelf.topic && (has(self.topicTenant) == has(oldSelf.topicTenant)) && (!has(self.topicTenant) || self.topicTenant == oldSelf.topicTenant)")
        .message("topic and table are immutable: create a new CassandraSink to stream elsewhere"),
    validation = Rule::new("self.format != 'Csv' || self.columns.all(c, (has(c.from) && c.from != 'Value') || !has(c.field) || !c.field.contains('.'))")
        .message("CSV records have no nested fields: with format Csv, field must be a header name or a column position, without '.'"),
    validation = Rule::new(format!("!has(self.startFrom) || self.startFrom in ['Earliest', 'Latest'] || self.startFrom.matches('{RFC3339_CEL}')"))
        .message("startFrom must be Earliest, Latest or an RFC 3339 time such as 2026-12-01T00:00:00Z"),
    validation = Rule::new(format!("!has(self.replay) || self.replay.from == 'Earliest' || self.replay.from.matches('{RFC3339_CEL}')"))
        .message("replay.from must be Earliest or an RFC 3339 time such as 2026-12-01T00:00:00Z"),
    validation = Rule::new("!has(self.autoscale) || self.autoscale.maxReplicas >= self.replicas")
        .message("autoscale.maxReplicas must be at least replicas (the minimum when autoscaling)"),
    validation = Rule::new("self.columns.all(c, has(c.value) == (has(c.from) && c.from == 'Constant'))")
        .message("a column has value exactly when it is from: Constant"),
    validation = Rule::new("self.columns.all(c, !has(c.from) || c.from != 'Header' || has(c.field))")
        .message("a column from: Header needs field: the header's name"),
    validation = Rule::new("self.columns.all(c, !has(c.from) || !(c.from in ['Timestamp', 'Partition', 'Offset', 'Now', 'Constant']) || !has(c.field))")
        .message("a column from Timestamp, Partition, Offset, Now or Constant takes no field"),
    validation = Rule::new("!has(self.avro) || self.format == 'Avro'")
        .message("avro (the schema registry's settings) goes with format: Avro")
)]
pub struct CassandraSinkSpec {
    /// Name of the Topic object (in this namespace) to read; with `topicTenant`, the Kafka
    /// name of that tenant's topic (e.g. `water.data`).
    #[schemars(length(min = 1, max = 253))]
    pub topic: String,

    /// The tenant whose topic `topic` is, when it is another tenant's: that tenant must share
    /// it with this one (a TopicGrant in its namespace). Unset: a Topic of this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z0-9-]+$"))]
    pub topic_tenant: Option<String>,

    /// Table in the tenant's keyspace; created from `columns` and the keys when absent,
    /// checked against them when present.
    #[schemars(length(min = 1, max = 48), regex(pattern = r"^[a-z][a-z0-9_]{0,47}$"))]
    pub table: String,

    /// The table's columns and where each value comes from in a record.
    #[schemars(length(min = 1, max = 256))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub columns: Vec<Column>,

    /// Partition key columns, in order (at least one).
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 48)))]
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

    /// Schema registry settings (with `format: Avro`). Unset: the operator's registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avro: Option<AvroOptions>,

    /// Time to live of written rows, in seconds. Unset: rows do not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 630720000))]
    pub ttl_seconds: Option<i32>,

    /// Consistency level of writes (default `LocalQuorum`).
    #[serde(default)]
    pub consistency: Consistency,

    /// Sink replicas (consumers in the group); with `autoscale`, the fewest. Capped at the
    /// topic's partitions.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 64))]
    pub replicas: i32,

    /// How long the dead-letter topic (`<topicPrefix>dlq.<sink>`) keeps a record, in hours
    /// (default 168, a week). Counts against nothing else of the tenant's.
    #[serde(default = "default_dead_letter_retention_hours")]
    #[schemars(range(min = 1, max = 87600))]
    pub dead_letter_retention_hours: i32,

    /// Where a new sink starts reading: `Earliest` (default: every record the topic still
    /// holds), `Latest` (the records produced after the sink was created), or an RFC 3339
    /// time such as `2026-12-01T00:00:00Z` (the first record at or after it). Applied once,
    /// before the sink's first pod, and only when its consumer group has no offsets yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub start_from: Option<String>,

    /// A replay of the topic into the table: the sink's pods are stopped, its consumer
    /// group's offsets are moved to `from`, and the pods start again. Runs once for each new
    /// `id`; `status.replay` tells how far it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<Replay>,

    /// Scaling on consumer lag between `replicas` and `autoscale.maxReplicas` (and the
    /// topic's partitions). Unset: `replicas` is fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,

    /// Stops the sink without deleting it: its pods stop (each commits what Cassandra
    /// acknowledged first), its consumer group keeps its offsets, and with `false` again it
    /// resumes where it stopped. Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,

    /// The Cassandra datacenter the sink sends its writes to (its `LocalQuorum` is that
    /// datacenter's quorum; no other datacenter's nodes are asked). Unset: the operator's
    /// default (`TRIBUTARY_CASSANDRA_LOCAL_DC`), else any node. Must name one of the
    /// cluster's datacenters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub local_datacenter: Option<String>,
}

/// Scaling a sink on its consumer group's lag (see `CassandraSinkSpec::autoscale`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Autoscale {
    /// The most replicas (at most the topic's partitions are used).
    #[schemars(range(min = 1, max = 64))]
    pub max_replicas: i32,
    /// The lag one replica is meant to carry: the sink runs ceil(lag / lagPerReplica)
    /// replicas, within the range. Default 10,000 records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub lag_per_replica: Option<i64>,
    /// How long the lag must call for fewer replicas before the sink scales down, in seconds
    /// (default 300); scaling up is immediate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 86400))]
    pub scale_down_delay_seconds: Option<i32>,
}

impl Autoscale {
    pub const DEFAULT_LAG_PER_REPLICA: i64 = 10_000;
    pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 300;

    pub fn lag_per_replica(&self) -> i64 {
        self.lag_per_replica.unwrap_or(Self::DEFAULT_LAG_PER_REPLICA).max(1)
    }

    pub fn scale_down_delay_seconds(&self) -> i32 {
        self.scale_down_delay_seconds.unwrap_or(Self::DEFAULT_SCALE_DOWN_DELAY_SECONDS)
    }
}

/// The autoscaler's last decision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscaleStatus {
    /// The replicas the Deployment runs now.
    pub replicas: i32,
    /// Why, in words (the lag and what it calls for).
    pub decision: String,
    /// When the replicas last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<String>,
    /// Since when the lag has called for fewer replicas (RFC 3339); the sink scales down once
    /// this is `scaleDownDelaySeconds` old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below_since: Option<String>,
}

/// A declared replay (see `CassandraSinkSpec::replay`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    /// Any new value runs the replay once (e.g. a date or a ticket number).
    #[schemars(length(min = 1, max = 63))]
    pub id: String,
    /// `Earliest` (every record the topic still holds) or an RFC 3339 time (the first
    /// record at or after it).
    #[schemars(length(min = 1, max = 64))]
    pub from: String,
}

/// Where a consumer group's offsets go: a position parsed from `startFrom` or `replay.from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Earliest,
    Latest,
    /// The first record whose timestamp is at or after this, in milliseconds since the epoch.
    Time(i64),
}

impl Position {
    /// `Earliest`, `Latest` or an RFC 3339 time; the error says what is accepted.
    pub fn parse(text: &str) -> Result<Position, String> {
        match text {
            "Earliest" => Ok(Position::Earliest),
            "Latest" => Ok(Position::Latest),
            _ => {
                text.parse::<k8s_openapi::jiff::Timestamp>().map(|t| Position::Time(t.as_millisecond())).map_err(|e| {
                    format!("{text:?} is not Earliest, Latest or an RFC 3339 time such as 2026-12-01T00:00:00Z ({e})")
                })
            }
        }
    }
}

fn default_replicas() -> i32 {
    1
}

fn default_dead_letter_retention_hours() -> i32 {
    168
}

/// One table column.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
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
    /// Which part of the record the value comes from (default `Value`). `Key`: the whole
    /// key, or with `field` a dotted path into a JSON key; `Header`: the header `field`
    /// names; `Timestamp`, `Partition`, `Offset`: the record's; `Now`: the write time
    /// (CQL `now()`); `Constant`: `value`.
    #[serde(default, skip_serializing_if = "ColumnSource::is_value")]
    pub from: ColumnSource,
    /// The value of a `from: Constant` column, as text, converted to the column's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub value: Option<String>,
}

/// Which part of a Kafka record a column's value comes from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ColumnSource {
    /// The record's value (JSON path or CSV field), as before `from` existed.
    #[default]
    Value,
    /// The record's key: raw, or a dotted path into a JSON key.
    Key,
    /// A record header, named by `field`.
    Header,
    /// The record's Kafka timestamp (epoch milliseconds): a `timestamp` or `bigint` column.
    Timestamp,
    /// The record's partition: an `int` or `bigint` column.
    Partition,
    /// The record's offset: a `bigint` column.
    Offset,
    /// The time of the write: a `timeuuid` or `timestamp` column (CQL `now()`).
    Now,
    /// The column's `value`, the same for every row.
    Constant,
}

impl ColumnSource {
    pub fn is_value(&self) -> bool {
        *self == ColumnSource::Value
    }
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
    /// Avro in Confluent's wire format (a zero byte, the schema id, the Avro body), the
    /// writer schema from a schema registry; fields are read like JSON ones (dotted paths).
    Avro,
}

/// Where an Avro sink finds its writer schemas.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvroOptions {
    /// The registry's Confluent-API base URL, e.g. `http://registry:8081` (a sink asks it
    /// `GET {registryUrl}/schemas/ids/{id}`). Unset: the operator's
    /// `TRIBUTARY_SCHEMA_REGISTRY_URL` (chart `schemaRegistry.url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^http://[^\s/?#]+(/[^\s?#]*)?$"))]
    pub registry_url: Option<String>,
    /// A Secret in this namespace with keys `username` and `password`: the registry's HTTP
    /// basic auth. The sink pods read it as environment; the operator never reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub credentials_secret: Option<String>,
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

/// What became of the last replay (or of where a new sink started).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayStatus {
    /// `spec.replay.id`, or `startFrom` for where a new sink started.
    pub id: String,
    /// `spec.replay.from` (or `spec.startFrom`).
    pub from: String,
    /// `Stopping` (the pods are going away; the group must be empty before its offsets move)
    /// or `Done`.
    pub phase: ReplayPhase,
    /// The offsets the group was set to, by partition (`0=120, 1=98`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<String>,
    /// When the offsets were moved (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ReplayPhase {
    Stopping,
    Done,
}

/// What the operator observed and did for the CassandraSink.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraSinkStatus {
    /// The `metadata.generation` of the spec this status describes; older than the object's
    /// generation while the operator has not yet acted on the latest change.
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
    /// How many of the sink's pods are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// The sink's consumer group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// Records in the topic not yet committed by the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<i64>,
    /// Records the sink has written to Cassandra (acknowledged, not dead-lettered) since it
    /// began: the sum of `partitionsCounted`. Each record is counted once, whichever pod wrote
    /// it and even when a pod was killed between two reports; a record replayed is written,
    /// and counted, again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_written: Option<i64>,
    /// Records in the dead-letter topic (read from Kafka).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_count: Option<i64>,
    /// The last record-level error a sink pod met (a record dead-lettered, a write retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When `lastError` happened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_time: Option<String>,
    /// The newest count of each partition of the topic, as the pods owning them reported
    /// (read every `TRIBUTARY_SINK_REPORT_SECONDS`). A partition's count travels with its
    /// committed offset, so the pod that takes a partition over goes on from the last commit;
    /// a figure here only grows, and a partition no pod reports keeps its last one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::topic::MAX_PARTITIONS))]
    pub partitions_counted: Vec<PartitionCount>,
    /// Where the sink's write timestamps start: every write is stamped `base + offset`, so
    /// on a row the last record of its partition wins. Chosen once per Kafka topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_time: Option<WriteTime>,
    /// The last replay, or where the sink started (`startFrom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayStatus>,
    /// The autoscaler's last decision (with `spec.autoscale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<AutoscaleStatus>,
    /// Fingerprint (SHA-256, 128 bits) of the sink's Kafka login the operator wrote, recorded
    /// before it is written anywhere: only a Secret holding this login is read back, so a
    /// Secret planted under the sink's Secret name is never adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_credential: Option<String>,
}

/// Records of one partition written to Cassandra since the sink began.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionCount {
    /// The partition of the sink's topic.
    #[schemars(range(min = 0))]
    pub partition: i32,
    /// Its records written to Cassandra (acknowledged, not dead-lettered), cumulative.
    #[schemars(range(min = 0))]
    pub records_written: i64,
}

/// The base of a sink's write timestamps, and the Kafka topic it belongs to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WriteTime {
    /// Id of the Kafka topic whose offsets are added to the base (a re-created topic has a
    /// new id, and gets a new, later base).
    pub topic_id: String,
    /// Microseconds since the epoch, chosen so that `base + offset` was about the time the
    /// base was chosen; never moved back for the same topic.
    pub base: i64,
}

impl WriteTime {
    /// The base for `topic_id`, whose partitions end at offset `end` at `now` (µs): the one
    /// already chosen for that topic, else `now − end` (so new records are stamped about the
    /// time they are written), and never earlier than a previous topic's base (whose
    /// writes a re-created topic's records must win over).
    pub fn choose(previous: Option<&WriteTime>, topic_id: &str, now: i64, end: i64) -> WriteTime {
        match previous {
            Some(w) if w.topic_id == topic_id => w.clone(),
            _ => {
                let fresh = now.saturating_sub(end.max(0));
                let base = previous.map_or(fresh, |w| fresh.max(w.base));
                WriteTime { topic_id: topic_id.to_string(), base }
            }
        }
    }
}

impl CassandraSink {
    /// The tenant it resolved to and its conditions: what other controllers react to.
    pub fn readiness(&self) -> (Option<&str>, &[Condition]) {
        let status = self.status.as_ref();
        (status.and_then(|s| s.tenant.as_deref()), status.map(|s| s.conditions.as_slice()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::WriteTime;

    #[test]
    fn a_base_is_chosen_so_that_the_next_record_is_stamped_about_now() {
        let w = WriteTime::choose(None, "id-a", 1_000_000_000, 5_000);
        assert_eq!(w, WriteTime { topic_id: "id-a".into(), base: 999_995_000 });
        assert_eq!(w.base + 5_000, 1_000_000_000, "the next record's stamp is the time of choosing");
    }

    #[test]
    fn the_base_of_a_topic_never_moves() {
        let first = WriteTime::choose(None, "id-a", 1_000_000_000, 5_000);
        let later = WriteTime::choose(Some(&first), "id-a", 9_000_000_000, 70_000);
        assert_eq!(later, first);
    }

    #[test]
    fn a_re_created_topic_gets_a_later_base_than_every_write_of_the_old_one() {
        let old = WriteTime { topic_id: "id-a".into(), base: 1_000_000 };
        let new = WriteTime::choose(Some(&old), "id-b", 2_000_000, 0);
        assert_eq!(new, WriteTime { topic_id: "id-b".into(), base: 2_000_000 });
        // Even when the clock reads earlier than the old base (a skewed operator clock).
        let skewed = WriteTime::choose(Some(&old), "id-b", 500_000, 0);
        assert_eq!(skewed.base, 1_000_000, "never earlier than the old base");
    }
}
