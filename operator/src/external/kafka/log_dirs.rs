//! How many bytes each topic takes on the brokers' disks: DescribeLogDirs at every broker
//! (each answers for the replicas it holds), summed over log dirs, partitions and replicas.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;
use kafka_protocol::messages::DescribeLogDirsRequest;

use super::calls::{check, metadata};
use super::error::KafkaCallError;
use super::wire::{Broker, Wire};

/// DescribeLogDirs v3: the answer's own error code (v0 is gone in Kafka 4).
const DESCRIBE_LOG_DIRS: i16 = 3;

/// One topic on the brokers' disks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicOnDisk {
    /// Bytes, every replica on every broker counted (a topic with replication factor 3 takes
    /// three times its log).
    pub bytes: i64,
    /// Partitions with a replica on some broker.
    pub partitions: i32,
}

/// What the live brokers hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogDirs {
    /// Brokers the cluster reports alive (each was asked).
    pub brokers: i32,
    /// Every topic on their disks, by name.
    pub topics: BTreeMap<String, TopicOnDisk>,
}

/// Every topic on the live brokers' disks. A broker that does not answer fails the call: a
/// figure without it would be too small.
pub async fn log_dirs(wire: &Wire) -> Result<LogDirs, KafkaCallError> {
    const CALL: &str = "DescribeLogDirs";
    let brokers = metadata(wire, Some(&[])).await?.brokers;
    let addresses: Vec<String> = brokers.iter().map(|b| format!("{}:{}", b.host.as_str(), b.port)).collect();
    let answers = try_join_all(addresses.iter().map(|address| async move {
        // No topics named: every topic the broker holds.
        let request = DescribeLogDirsRequest::default().with_topics(None);
        let response = wire.call(Broker::At(address), CALL, &request, DESCRIBE_LOG_DIRS).await?;
        check(CALL, &format!("broker {address}"), response.error_code, None)?;
        Ok::<_, KafkaCallError>(response)
    }))
    .await?;
    let mut sizes: BTreeMap<String, (i64, BTreeSet<i32>)> = BTreeMap::new();
    for response in answers {
        // A log dir offline (error) holds nothing readable: it adds nothing.
        for dir in response.results.into_iter().filter(|d| d.error_code == 0) {
            for topic in dir.topics {
                let (bytes, partitions) = sizes.entry(topic.name.to_string()).or_default();
                for p in topic.partitions {
                    *bytes += p.partition_size.max(0);
                    partitions.insert(p.partition_index);
                }
            }
        }
    }
    let count = |p: BTreeSet<i32>| i32::try_from(p.len()).unwrap_or(i32::MAX);
    let topics =
        sizes.into_iter().map(|(name, (bytes, p))| (name, TopicOnDisk { bytes, partitions: count(p) })).collect();
    Ok(LogDirs { brokers: i32::try_from(addresses.len()).unwrap_or(i32::MAX), topics })
}
