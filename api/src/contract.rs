//! The contract between the operator and the sink process: the operator renders a
//! [`SinkConfig`] into the sink's ConfigMap as `sink.yaml`, and `tributary-sink` reads it.
//! Fields added later get serde defaults, so a sink reads the config of an older operator.

use serde::{Deserialize, Serialize};

use crate::sink::{CassandraSinkSpec, PartitionCount, WriteTime};

/// SASL mechanism every Tributary user authenticates with.
pub const SASL_MECHANISM: &str = "SCRAM-SHA-512";

/// Everything a sink needs except its secrets (those come from the environment). The
/// operator renders it into the sink's ConfigMap as `sink.yaml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SinkConfig {
    /// `namespace/name` of the CassandraSink, for logs.
    pub sink: String,
    pub topic: String,
    pub group: String,
    pub dead_letter_topic: String,
    pub bootstrap_servers: String,
    #[serde(default = "default_security_protocol")]
    pub security_protocol: String,
    /// `SCRAM-SHA-512` (the sink's own user), or the mechanism of the tenant's external one.
    #[serde(default = "default_sasl_mechanism")]
    pub sasl_mechanism: String,
    /// CA bundle (PEM) the brokers' certificates are checked against when
    /// `security_protocol` is `SASL_SSL`; unset: the system's CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_ca_pem: Option<String>,
    pub contact_points: Vec<String>,
    /// CA bundle (PEM) of Cassandra's client encryption; set: the sessions use TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cassandra_ca_pem: Option<String>,
    pub keyspace: String,
    pub spec: CassandraSinkSpec,
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    #[serde(default = "default_commit_interval")]
    pub commit_interval_ms: u64,
    /// Every write carries the timestamp (µs) `writeTime.base + offset`, so of the records
    /// that land on one row the last one of its partition wins, whatever the order in which
    /// retries, concurrent batches, restarts and replays deliver them. The operator chooses
    /// the base once per sink and topic ([`WriteTime::choose`]). Unset: Cassandra's clock
    /// stamps the writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_time: Option<WriteTime>,
    /// The Cassandra datacenter the sink sends its writes to (the spec's, else the
    /// operator's default); unset: any node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_datacenter: Option<String>,
    /// The schema registry's Confluent-API base URL (`format: Avro`): the spec's
    /// `avro.registryUrl`, else the operator's default. Its credentials come as environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_registry_url: Option<String>,
}

fn default_security_protocol() -> String {
    "SASL_PLAINTEXT".into()
}
fn default_sasl_mechanism() -> String {
    SASL_MECHANISM.into()
}
fn default_in_flight() -> usize {
    256
}
fn default_commit_interval() -> u64 {
    1000
}

/// Path on a sink pod's HTTP port where it answers with its [`SinkReport`] as JSON.
pub const REPORT_PATH: &str = "/report";

/// What one sink pod has done since it started, as it answers on [`REPORT_PATH`]; the
/// operator keeps the newest count of each partition in the CassandraSink's status.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SinkReport {
    /// Records Cassandra acknowledged, by this pod since it started (its own metric).
    pub records_written: u64,
    /// The count of each partition the pod owns now, cumulative since the sink began: the
    /// count committed with the partition's offset when the pod took it, plus what the pod has
    /// written of it since. A partition whose committed count the pod could not read yet is
    /// left out. (Absent from a sink older than the per-partition counts.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionCount>,
    /// Records sent to the dead-letter topic (acknowledged by Kafka).
    pub dead_lettered: u64,
    /// The last record-level error (a record dead-lettered, a write refused or retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ReportedError>,
}

/// An error with the time it happened.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReportedError {
    pub message: String,
    /// RFC 3339, UTC.
    pub time: String,
}

/// The count a sink commits with each partition's offset, as the offset commit's metadata
/// (`w=<records>`): the records of that partition written to Cassandra, not dead-lettered,
/// below that offset, since the sink began. Whoever moves the group's offsets (a pod, a
/// replay) carries it along, so the count survives any pod's end.
pub fn count_metadata(records: u64) -> String {
    format!("{COUNT_KEY}{records}")
}

/// The count in an offset commit's metadata (see [`count_metadata`]); `None` when the
/// commit carries none (committed by an older sink or another tool).
pub fn count_in_metadata(metadata: &str) -> Option<u64> {
    metadata.split(',').find_map(|field| field.trim().strip_prefix(COUNT_KEY)?.parse().ok())
}

const COUNT_KEY: &str = "w=";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_reads_back_from_the_metadata_it_is_committed_as() {
        assert_eq!(count_metadata(9000), "w=9000");
        for n in [0, 1, 9000, u64::MAX] {
            assert_eq!(count_in_metadata(&count_metadata(n)), Some(n));
        }
        assert_eq!(count_in_metadata("x=1,w=42"), Some(42), "other fields are passed over");
    }

    #[test]
    fn a_commit_without_a_count_has_none() {
        for metadata in ["", "w=", "w=-1", "w=12x", "written=5", "somebody else's"] {
            assert_eq!(count_in_metadata(metadata), None, "{metadata:?}");
        }
    }

    #[test]
    fn a_report_of_an_older_sink_reads_without_partitions() {
        let report: SinkReport = serde_json::from_str(r#"{"recordsWritten":7,"deadLettered":0}"#).unwrap();
        assert_eq!((report.records_written, report.partitions.len()), (7, 0));
        let newer = SinkReport { partitions: vec![PartitionCount { partition: 1, records_written: 5 }], ..report };
        let json = serde_json::to_string(&newer).unwrap();
        assert!(json.contains(r#""partitions":[{"partition":1,"recordsWritten":5}]"#), "{json}");
    }
}
