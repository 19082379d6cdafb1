//! Every request the operator sends Kafka about topics, offsets and groups, each on the
//! [`Wire`]: built from the domain's values, its answer turned back into them, every error
//! code through [`answer_error`]. ACLs, SCRAM credentials and quotas are in
//! `access_calls.rs`.
//!
//! Versions are ones that every Kafka since 3.0 accepts, Kafka 4 included (it dropped the
//! oldest versions of several calls, KIP-896).

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, FindCoordinatorRequest, GroupId, IncrementalAlterConfigsRequest, ListGroupsRequest,
    ListOffsetsRequest, MetadataRequest, MetadataResponse, OffsetCommitRequest, OffsetFetchRequest, TopicName,
    create_partitions_request::CreatePartitionsTopic,
    create_topics_request::{CreatableTopic, CreatableTopicConfig},
    describe_configs_request::DescribeConfigsResource,
    incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    metadata_request::MetadataRequestTopic,
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch_request::OffsetFetchRequestTopic,
};
use kafka_protocol::protocol::StrBytes;

use super::error::{KafkaCallError, answer_error, group_error, no_answer, partitions_error};
use super::wire::{Broker, Wire};
use crate::access::kafka::ConfigOp;
use crate::api::contract::{count_in_metadata, count_metadata};
use crate::topic::model::{DesiredTopic, LiveConfig};

const METADATA: i16 = 12;
const CREATE_TOPICS: i16 = 7;
const DELETE_TOPICS: i16 = 4;
const CREATE_PARTITIONS: i16 = 3;
const DESCRIBE_CONFIGS: i16 = 4;
const ALTER_CONFIGS: i16 = 1;
pub(super) const ACLS: i16 = 3;
pub(super) const SCRAM: i16 = 0;
pub(super) const QUOTAS: i16 = 1;
const LIST_OFFSETS: i16 = 7;
const FIND_COORDINATOR: i16 = 3;
const OFFSET_FETCH: i16 = 7;
const OFFSET_COMMIT: i16 = 8;
const LIST_GROUPS: i16 = 4;
const DELETE_GROUPS: i16 = 2;

/// Kafka's code for "no such topic".
const UNKNOWN_TOPIC: i16 = 3;
/// Kafka's config resource type of a topic.
const TOPIC_RESOURCE: i8 = 2;

pub(super) fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn topic_name(s: &str) -> TopicName {
    text(s).into()
}

fn detail(message: Option<StrBytes>) -> Option<String> {
    message.map(|m| m.to_string())
}

/// How long the controller may take over a write (the call's own timeout).
fn timeout_ms(wire: &Wire) -> i32 {
    i32::try_from(wire.timeout().as_millis()).unwrap_or(i32::MAX)
}

pub(super) fn check(
    call: &'static str,
    what: &str,
    code: i16,
    message: Option<StrBytes>,
) -> Result<(), KafkaCallError> {
    if code == 0 { Ok(()) } else { Err(answer_error(call, what, code, detail(message))) }
}

// ---- Topics ---------------------------------------------------------------------------

/// What Metadata tells of one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicShape {
    /// The topic's id in base64 without padding (as librdkafka printed it, so ids recorded
    /// before keep matching): a deleted and re-created topic gets a new one.
    pub id: Option<String>,
    /// Each partition's replicas and in-sync replicas (counts).
    pub partitions: Vec<(usize, usize)>,
}

/// Metadata for `topics` (`None`: every topic; empty: none, only the brokers). Never
/// creates a topic it names.
pub async fn metadata(wire: &Wire, topics: Option<&[String]>) -> Result<MetadataResponse, KafkaCallError> {
    let topics = topics
        .map(|names| names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n)))).collect());
    let request = MetadataRequest::default().with_topics(topics).with_allow_auto_topic_creation(false);
    wire.call(Broker::Any, "Metadata", &request, METADATA).await
}

/// Each named topic's shape (`None`: no such topic).
pub fn shapes(metadata: &MetadataResponse) -> BTreeMap<String, Result<Option<TopicShape>, KafkaCallError>> {
    use base64::Engine;
    metadata
        .topics
        .iter()
        .filter_map(|t| Some((t.name.as_ref()?.to_string(), t)))
        .map(|(name, t)| {
            let shape = match t.error_code {
                0 => {
                    let id = (!t.topic_id.is_nil())
                        .then(|| base64::engine::general_purpose::STANDARD_NO_PAD.encode(t.topic_id.as_bytes()));
                    let partitions = t.partitions.iter().map(|p| (p.replica_nodes.len(), p.isr_nodes.len())).collect();
                    Ok(Some(TopicShape { id, partitions }))
                }
                UNKNOWN_TOPIC => Ok(None),
                code => Err(answer_error("Metadata", &format!("topic {name}"), code, None)),
            };
            (name, shape)
        })
        .collect()
}

/// One CreateTopics request; each topic's outcome by name. A topic that already exists
/// (another reconcile or replica created it first) counts as created.
pub async fn create_topics(
    wire: &Wire,
    topics: &[&DesiredTopic],
) -> Result<BTreeMap<String, Result<(), KafkaCallError>>, KafkaCallError> {
    const CALL: &str = "CreateTopics";
    let creatable = topics
        .iter()
        .map(|t| {
            let configs = t
                .config
                .iter()
                .map(|(k, v)| CreatableTopicConfig::default().with_name(text(k)).with_value(Some(text(v))));
            CreatableTopic::default()
                .with_name(topic_name(&t.name))
                .with_num_partitions(t.partitions)
                .with_replication_factor(i16::try_from(t.replication_factor).unwrap_or(i16::MAX))
                .with_configs(configs.collect())
        })
        .collect();
    let timeout_ms = timeout_ms(wire);
    let request = CreateTopicsRequest::default().with_topics(creatable).with_timeout_ms(timeout_ms);
    let response = wire.call(Broker::Any, CALL, &request, CREATE_TOPICS).await?;
    Ok(response
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.to_string();
            let outcome = match kafka_protocol::error::ResponseError::try_from_code(t.error_code) {
                None | Some(kafka_protocol::error::ResponseError::TopicAlreadyExists) => Ok(()),
                Some(_) => Err(answer_error(CALL, &format!("topic {name}"), t.error_code, detail(t.error_message))),
            };
            (name, outcome)
        })
        .collect())
}

/// Deletes a topic and its records; one that does not exist is not an error.
pub async fn delete_topic(wire: &Wire, name: &str) -> Result<(), KafkaCallError> {
    const CALL: &str = "DeleteTopics";
    let timeout_ms = timeout_ms(wire);
    let request = DeleteTopicsRequest::default().with_topic_names(vec![topic_name(name)]).with_timeout_ms(timeout_ms);
    let response = wire.call(Broker::Any, CALL, &request, DELETE_TOPICS).await?;
    for result in response.responses {
        if result.error_code != UNKNOWN_TOPIC {
            check(CALL, &format!("topic {name}"), result.error_code, result.error_message)?;
        }
    }
    Ok(())
}

/// Raises the topic's partition count to `total`.
pub async fn create_partitions(wire: &Wire, name: &str, total: i32) -> Result<(), KafkaCallError> {
    const CALL: &str = "CreatePartitions";
    let timeout_ms = timeout_ms(wire);
    let topic = CreatePartitionsTopic::default().with_name(topic_name(name)).with_count(total).with_assignments(None);
    let request = CreatePartitionsRequest::default().with_topics(vec![topic]).with_timeout_ms(timeout_ms);
    let response = wire.call(Broker::Any, CALL, &request, CREATE_PARTITIONS).await?;
    for result in response.results {
        if result.error_code != 0 {
            return Err(partitions_error(name, result.error_code, detail(result.error_message)));
        }
    }
    Ok(())
}

/// Every config entry of each topic (names distinct), by name.
pub async fn describe_configs(
    wire: &Wire,
    names: &[&str],
) -> Result<BTreeMap<String, Result<BTreeMap<String, LiveConfig>, KafkaCallError>>, KafkaCallError> {
    const CALL: &str = "DescribeConfigs";
    /// DYNAMIC_TOPIC_CONFIG: a value set on the topic itself.
    const DYNAMIC_TOPIC: i8 = 1;
    let resources = names
        .iter()
        .map(|n| DescribeConfigsResource::default().with_resource_type(TOPIC_RESOURCE).with_resource_name(text(n)))
        .collect();
    let request = DescribeConfigsRequest::default().with_resources(resources);
    let response = wire.call(Broker::Any, CALL, &request, DESCRIBE_CONFIGS).await?;
    Ok(response
        .results
        .into_iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let config = check(CALL, &format!("topic {name}"), r.error_code, r.error_message).map(|()| {
                r.configs
                    .into_iter()
                    .map(|e| {
                        let value = e.value.map(|v| v.to_string());
                        (e.name.to_string(), LiveConfig { value, dynamic: e.config_source == DYNAMIC_TOPIC })
                    })
                    .collect()
            });
            (name, config)
        })
        .collect())
}

/// Changes only the given keys of one topic's config; every other key keeps its value.
pub async fn alter_topic_config(wire: &Wire, name: &str, changes: &[(String, ConfigOp)]) -> Result<(), KafkaCallError> {
    const CALL: &str = "IncrementalAlterConfigs";
    let configs = changes
        .iter()
        .map(|(key, op)| match op {
            ConfigOp::Set(value) => {
                AlterableConfig::default().with_name(text(key)).with_config_operation(0).with_value(Some(text(value)))
            }
            ConfigOp::Delete => AlterableConfig::default().with_name(text(key)).with_config_operation(1),
        })
        .collect();
    let resource = AlterConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(text(name))
        .with_configs(configs);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
    let response = wire.call(Broker::Any, CALL, &request, ALTER_CONFIGS).await?;
    let result = response.responses.into_iter().next().ok_or_else(|| no_answer(CALL, &format!("topic {name}")))?;
    check(CALL, &format!("topic {name}"), result.error_code, result.error_message)
}

// ---- Offsets and groups ----------------------------------------------------------------

/// Where each partition's leader listens, from a Metadata answer: `(topic, partition)` →
/// `host:port` (`None`: no leader now).
pub fn leaders(metadata: &MetadataResponse) -> BTreeMap<(String, i32), Option<String>> {
    let brokers: BTreeMap<BrokerId, String> =
        metadata.brokers.iter().map(|b| (b.node_id, format!("{}:{}", b.host.as_str(), b.port))).collect();
    let mut leaders = BTreeMap::new();
    for topic in &metadata.topics {
        let Some(name) = &topic.name else { continue };
        for p in &topic.partitions {
            leaders.insert((name.to_string(), p.partition_index), brokers.get(&p.leader_id).cloned());
        }
    }
    leaders
}

/// ListOffsets `at` (-2: each partition's first offset, -1: its high watermark, else the
/// first offset at or after that time in ms, -1 when there is none) for distinct
/// partitions, each asked of its leader, the leaders at once.
pub async fn list_offsets(
    wire: &Wire,
    leaders: &BTreeMap<(String, i32), Option<String>>,
    partitions: &[(String, i32)],
    at: i64,
) -> Result<BTreeMap<(String, i32), Result<i64, KafkaCallError>>, KafkaCallError> {
    const CALL: &str = "ListOffsets";
    let mut answers = BTreeMap::new();
    let mut by_leader: BTreeMap<&str, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for (topic, p) in partitions {
        match leaders.get(&(topic.clone(), *p)) {
            Some(Some(leader)) => by_leader.entry(leader).or_default().entry(topic).or_default().push(*p),
            // LEADER_NOT_AVAILABLE (5): a leader being elected, or a topic just created.
            _ => drop(answers.insert((topic.clone(), *p), Err(answer_error(CALL, &format!("{topic}/{p}"), 5, None)))),
        }
    }
    let requests = by_leader.into_iter().map(|(leader, topics)| async move {
        let topics = topics
            .into_iter()
            .map(|(topic, ps)| {
                let partitions =
                    ps.into_iter().map(|p| ListOffsetsPartition::default().with_partition_index(p).with_timestamp(at));
                ListOffsetsTopic::default().with_name(topic_name(topic)).with_partitions(partitions.collect())
            })
            .collect();
        // A client's replica id is -1; another makes the broker answer as to a follower.
        let request = ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(topics);
        wire.call(Broker::At(leader), CALL, &request, LIST_OFFSETS).await
    });
    for response in try_join_all(requests).await? {
        for topic in response.topics {
            for p in topic.partitions {
                let what = format!("{}/{}", topic.name.as_str(), p.partition_index);
                let offset = check(CALL, &what, p.error_code, None).map(|()| p.offset);
                answers.insert((topic.name.to_string(), p.partition_index), offset);
            }
        }
    }
    Ok(answers)
}

/// Where `group`'s coordinator listens.
async fn coordinator(wire: &Wire, group: &str) -> Result<String, KafkaCallError> {
    const CALL: &str = "FindCoordinator";
    let request = FindCoordinatorRequest::default().with_key(text(group)).with_key_type(0);
    let found = wire.call(Broker::Any, CALL, &request, FIND_COORDINATOR).await?;
    check(CALL, &format!("consumer group {group}"), found.error_code, found.error_message)?;
    Ok(format!("{}:{}", found.host.as_str(), found.port))
}

/// The offsets `group` committed on partitions `0..partitions` of `topic` (absent: no
/// commit yet), by OffsetFetch at the group's coordinator.
pub async fn committed_offsets(
    wire: &Wire,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<i32, i64>, KafkaCallError> {
    let address = coordinator(wire, group).await?;
    let committed = offset_fetch(wire, &address, group, topic, (0..partitions).collect()).await?;
    Ok(committed.into_iter().map(|(p, c)| (p, c.offset)).collect())
}

/// A partition's committed offset and the metadata committed with it.
struct Committed {
    offset: i64,
    metadata: Option<String>,
}

/// What `group` committed on `partitions` of `topic` (absent: no commit yet), asked of its
/// coordinator at `address`.
async fn offset_fetch(
    wire: &Wire,
    address: &str,
    group: &str,
    topic: &str,
    partitions: Vec<i32>,
) -> Result<BTreeMap<i32, Committed>, KafkaCallError> {
    const CALL: &str = "OffsetFetch";
    let request = OffsetFetchRequest::default().with_group_id(text(group).into()).with_topics(Some(vec![
        OffsetFetchRequestTopic::default().with_name(topic_name(topic)).with_partition_indexes(partitions),
    ]));
    let response = wire.call(Broker::At(address), CALL, &request, OFFSET_FETCH).await?;
    if response.error_code != 0 {
        return Err(group_error(CALL, group, response.error_code));
    }
    let mut committed = BTreeMap::new();
    for partition in response.topics.into_iter().flat_map(|t| t.partitions) {
        match partition.error_code {
            // -1: nothing committed on this partition yet.
            0 if partition.committed_offset >= 0 => {
                let metadata = partition.metadata.map(|m| m.to_string());
                committed.insert(partition.partition_index, Committed { offset: partition.committed_offset, metadata });
            }
            // UNKNOWN_TOPIC_OR_PARTITION: nothing committed there either.
            0 | UNKNOWN_TOPIC => {}
            code => {
                let what = format!("group {group}, {topic} partition {}", partition.partition_index);
                return Err(answer_error(CALL, &what, code, None));
            }
        }
    }
    Ok(committed)
}

/// Commits `group`'s offsets on `topic` from outside the group. Kafka accepts such a commit
/// only while the group is empty; a group with members answers UNKNOWN_MEMBER_ID (or
/// ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS), which becomes a transient "in use" error, so
/// offsets never move under a running consumer.
///
/// Each partition's count (the sink's records written, which it commits with every offset:
/// [`count_metadata`]) is read first and committed with the new offset, so a replay neither
/// loses the count nor starts it over: the records read again are written, and counted, again.
pub async fn commit_offsets(
    wire: &Wire,
    group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<(), KafkaCallError> {
    use kafka_protocol::error::ResponseError::{IllegalGeneration, RebalanceInProgress, UnknownMemberId};
    const CALL: &str = "OffsetCommit";
    let address = coordinator(wire, group).await?;
    let counts = offset_fetch(wire, &address, group, topic, offsets.keys().copied().collect()).await?;
    let partitions = offsets.iter().map(|(p, o)| {
        let count = counts.get(p).and_then(|c| count_in_metadata(c.metadata.as_deref()?));
        OffsetCommitRequestPartition::default()
            .with_partition_index(*p)
            .with_committed_offset(*o)
            .with_committed_metadata(Some(text(&count.map(count_metadata).unwrap_or_default())))
    });
    let topic_entry =
        OffsetCommitRequestTopic::default().with_name(topic_name(topic)).with_partitions(partitions.collect());
    let request = OffsetCommitRequest::default().with_group_id(text(group).into()).with_topics(vec![topic_entry]);
    let response = wire.call(Broker::At(&address), CALL, &request, OFFSET_COMMIT).await?;
    for p in response.topics.into_iter().flat_map(|t| t.partitions) {
        match kafka_protocol::error::ResponseError::try_from_code(p.error_code) {
            None => {}
            Some(UnknownMemberId | IllegalGeneration | RebalanceInProgress) => {
                return Err(KafkaCallError {
                    call: CALL,
                    message: format!("consumer group {group} still has members; its offsets move once it is empty"),
                    transient: true,
                    answered: true,
                });
            }
            Some(_) => {
                return Err(answer_error(
                    CALL,
                    &format!("group {group}, {topic}/{}", p.partition_index),
                    p.error_code,
                    None,
                ));
            }
        }
    }
    Ok(())
}

/// Every consumer group of the cluster: ListGroups at every broker (each lists the groups it
/// coordinates).
pub async fn list_groups(wire: &Wire) -> Result<Vec<String>, KafkaCallError> {
    const CALL: &str = "ListGroups";
    let brokers = metadata(wire, Some(&[])).await?.brokers;
    let addresses: Vec<String> = brokers.iter().map(|b| format!("{}:{}", b.host.as_str(), b.port)).collect();
    let answers = try_join_all(addresses.iter().map(|address| async move {
        let response = wire.call(Broker::At(address), CALL, &ListGroupsRequest::default(), LIST_GROUPS).await?;
        check(CALL, &format!("broker {address}"), response.error_code, None)?;
        Ok::<_, KafkaCallError>(response.groups.into_iter().map(|g| g.group_id.to_string()))
    }))
    .await?;
    let groups: BTreeSet<String> = answers.into_iter().flatten().collect();
    Ok(groups.into_iter().collect())
}

/// Deletes the groups with their committed offsets, each at its coordinator; one that does
/// not exist is not an error.
pub async fn delete_groups(wire: &Wire, names: &[String]) -> Result<(), KafkaCallError> {
    use kafka_protocol::error::ResponseError::GroupIdNotFound;
    const CALL: &str = "DeleteGroups";
    let mut by_coordinator: BTreeMap<String, Vec<GroupId>> = BTreeMap::new();
    for name in names {
        by_coordinator.entry(coordinator(wire, name).await?).or_default().push(text(name).into());
    }
    for (address, groups) in by_coordinator {
        let request = DeleteGroupsRequest::default().with_groups_names(groups);
        let response = wire.call(Broker::At(&address), CALL, &request, DELETE_GROUPS).await?;
        for result in response.results {
            let code = result.error_code;
            if code != 0 && kafka_protocol::error::ResponseError::try_from_code(code) != Some(GroupIdNotFound) {
                return Err(group_error(CALL, result.group_id.as_str(), code));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::*;

    #[test]
    fn defaults_that_kafka_would_misread_are_overridden() {
        // kafka-protocol's defaults: an empty assignment list (Kafka: "0 assignments were
        // specified" for a partition increase) and topic auto-creation on Metadata.
        let topic = CreatePartitionsTopic::default().with_assignments(None);
        let request = CreatePartitionsRequest::default().with_topics(vec![topic]);
        let mut buf = BytesMut::new();
        request.encode(&mut buf, CREATE_PARTITIONS).unwrap();
        let decoded = CreatePartitionsRequest::decode(&mut buf.freeze(), CREATE_PARTITIONS).unwrap();
        assert_eq!(decoded.topics[0].assignments, None);
        assert!(CreatePartitionsTopic::default().assignments.is_some(), "the crate's default still needs the override");
        assert!(MetadataRequest::default().allow_auto_topic_creation, "the crate's default still needs the override");
    }
}
