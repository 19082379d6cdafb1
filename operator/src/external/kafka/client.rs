//! How a Kafka client reaches the cluster: bootstrap servers and SASL/SCRAM credentials,
//! turned into librdkafka properties.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::error::{KafkaCallError, call_error};
use crate::api::Position;

pub use crate::api::contract::SASL_MECHANISM;

/// Connection settings for one Kafka principal.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub bootstrap_servers: String,
    pub username: String,
    pub password: String,
    /// `SASL_PLAINTEXT` on the local stack, `SASL_SSL` where brokers have TLS.
    pub security_protocol: String,
}

impl ClientSettings {
    pub fn new(bootstrap_servers: impl Into<String>, username: impl Into<String>, password: impl Into<String>) -> Self {
        ClientSettings {
            bootstrap_servers: bootstrap_servers.into(),
            username: username.into(),
            password: password.into(),
            security_protocol: "SASL_PLAINTEXT".into(),
        }
    }

    /// The admin credentials from the environment `make stack-env` exports
    /// (`KAFKA_BOOTSTRAP`, `KAFKA_ADMIN_USER`, `KAFKA_ADMIN_PASSWORD`).
    pub fn admin_from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| format!("{name} is not set; run: eval \"$(make -s stack-env)\""))
        };
        Ok(ClientSettings::new(var("KAFKA_BOOTSTRAP")?, var("KAFKA_ADMIN_USER")?, var("KAFKA_ADMIN_PASSWORD")?))
    }

    /// The librdkafka properties a client of this principal needs — also what the tenant
    /// Secret hands to applications.
    pub fn librdkafka_properties(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("bootstrap.servers", self.bootstrap_servers.clone()),
            ("security.protocol", self.security_protocol.clone()),
            ("sasl.mechanism", SASL_MECHANISM.to_string()),
            ("sasl.username", self.username.clone()),
            ("sasl.password", self.password.clone()),
        ])
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in self.librdkafka_properties() {
            config.set(key, value);
        }
        config
    }
}

impl std::fmt::Debug for ClientSettings {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("username", &self.username)
            .field("security_protocol", &self.security_protocol)
            .finish_non_exhaustive()
    }
}

/// A consumer client of `group` that never joins it: for OffsetFetch and OffsetCommit on the
/// group's behalf.
fn group_client(
    settings: &ClientSettings,
    group: &str,
    call: &'static str,
) -> Result<rdkafka::consumer::BaseConsumer, KafkaCallError> {
    settings
        .client_config()
        .set("client.id", "tributary-operator")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| call_error(call, &e))
}

/// The offsets `group` committed on `topic`, by partition (absent: no commit yet), read by
/// OffsetFetch through a consumer client of that group that never joins it. Not librdkafka's
/// admin ListConsumerGroupOffsets: in 2.12 a NOT_COORDINATOR answer to it (as while a fresh
/// cluster creates `__consumer_offsets`) dereferences the admin client's missing consumer
/// group and crashes the process (rd_kafka_handle_OffsetFetch → rd_kafka_cgrp_op(NULL)).
pub(super) fn committed_offsets(
    settings: &ClientSettings,
    group: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, KafkaCallError> {
    let consumer = group_client(settings, group, "OffsetFetch")?;
    let committed = consumer
        .committed_offsets(partition_list(topic, partitions), timeout)
        .map_err(|e| call_error("OffsetFetch", &e))?;
    Ok(offsets(&committed))
}

/// Commits `group`'s offsets on `topic` at `to` (the low or high watermark, or the first
/// offset at or after a time) from a client that is not a member. Kafka accepts such a
/// commit only while the group is empty; a group with members answers UNKNOWN_MEMBER_ID (or
/// ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS), which becomes a transient "in use" error, so
/// offsets never move under a running consumer.
pub(super) fn commit_offsets(
    settings: &ClientSettings,
    group: &str,
    topic: &str,
    partitions: i32,
    to: Position,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, KafkaCallError> {
    const CALL: &str = "OffsetCommit";
    if partitions == 0 {
        return Err(KafkaCallError {
            call: CALL,
            message: format!("topic {topic} has no partitions in Kafka's metadata (yet)"),
            transient: true,
            answered: true,
        });
    }
    let consumer = group_client(settings, group, CALL)?;
    let watermarks = |p: i32| consumer.fetch_watermarks(topic, p, timeout).map_err(|e| call_error("ListOffsets", &e));
    let mut targets = BTreeMap::new();
    match to {
        Position::Earliest | Position::Latest => {
            for p in 0..partitions {
                let (low, high) = watermarks(p)?;
                targets.insert(p, if to == Position::Earliest { low } else { high });
            }
        }
        Position::Time(ms) => {
            let mut list = TopicPartitionList::new();
            for p in 0..partitions {
                list.add_partition_offset(topic, p, Offset::Offset(ms)).map_err(|e| call_error(CALL, &e))?;
            }
            let found = consumer.offsets_for_times(list, timeout).map_err(|e| call_error("ListOffsets", &e))?;
            for e in found.elements() {
                // No record at or after the time: the end of the partition.
                let offset = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => watermarks(e.partition())?.1,
                };
                targets.insert(e.partition(), offset);
            }
        }
    }
    let mut list = TopicPartitionList::new();
    for (p, offset) in &targets {
        list.add_partition_offset(topic, *p, Offset::Offset(*offset)).map_err(|e| call_error(CALL, &e))?;
    }
    consumer.commit(&list, CommitMode::Sync).map_err(|e| match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::RebalanceInProgress,
        ) => KafkaCallError {
            call: CALL,
            message: format!("consumer group {group} still has members; its offsets move once it is empty ({e})"),
            transient: true,
            answered: true,
        },
        _ => call_error(CALL, &e),
    })?;
    Ok(targets)
}

fn partition_list(topic: &str, partitions: i32) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    list
}

fn offsets(list: &TopicPartitionList) -> BTreeMap<i32, i64> {
    list.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_carry_scram_credentials_and_debug_hides_the_password() {
        let settings = ClientSettings::new("127.0.0.1:19092", "water", "s3cret");
        let props = settings.librdkafka_properties();
        assert_eq!(props["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(props["sasl.username"], "water");
        assert_eq!(props["sasl.password"], "s3cret");
        assert_eq!(props["security.protocol"], "SASL_PLAINTEXT");
        assert_eq!(settings.client_config().get("bootstrap.servers"), Some("127.0.0.1:19092"));
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
