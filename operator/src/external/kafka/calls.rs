//! Every request the operator sends Kafka, each on the [`Wire`]: built from the domain's
//! values, its answer turned back into them, every error code through [`answer_error`].
//!
//! Versions are ones that every Kafka since 3.0 accepts, Kafka 4 included (it dropped the
//! oldest versions of several calls, KIP-896).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::future::try_join_all;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterUserScramCredentialsRequest, BrokerId, CreateAclsRequest, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteAclsRequest, DeleteGroupsRequest, DeleteTopicsRequest, DescribeAclsRequest,
    DescribeClientQuotasRequest, DescribeConfigsRequest, DescribeUserScramCredentialsRequest, FindCoordinatorRequest,
    GroupId, IncrementalAlterConfigsRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetFetchRequest, TopicName, alter_client_quotas_request as alter_quotas,
    alter_user_scram_credentials_request as alter_scram,
    create_acls_request::AclCreation,
    create_partitions_request::CreatePartitionsTopic,
    create_topics_request::{CreatableTopic, CreatableTopicConfig},
    delete_acls_request::DeleteAclsFilter,
    describe_client_quotas_request as describe_quotas,
    describe_configs_request::DescribeConfigsResource,
    describe_user_scram_credentials_request::UserName,
    incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    metadata_request::MetadataRequestTopic,
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch_request::OffsetFetchRequestTopic,
};
use kafka_protocol::protocol::StrBytes;

use super::error::{KafkaCallError, answer_error, group_error, no_answer, partitions_error};
use super::wire::{Broker, Wire};
use crate::access::kafka::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, ConfigOp, PatternType, ResourceType, ScramChange,
    ScramMechanism,
};
use crate::access::quotas::Quotas;
use crate::topic::model::{DesiredTopic, LiveConfig};

const METADATA: i16 = 12;
const CREATE_TOPICS: i16 = 7;
const DELETE_TOPICS: i16 = 4;
const CREATE_PARTITIONS: i16 = 3;
const DESCRIBE_CONFIGS: i16 = 4;
const ALTER_CONFIGS: i16 = 1;
const ACLS: i16 = 3;
const SCRAM: i16 = 0;
const QUOTAS: i16 = 1;
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

fn text(s: &str) -> StrBytes {
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

fn check(call: &'static str, what: &str, code: i16, message: Option<StrBytes>) -> Result<(), KafkaCallError> {
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
    const CALL: &str = "OffsetFetch";
    let address = coordinator(wire, group).await?;
    let request = OffsetFetchRequest::default().with_group_id(text(group).into()).with_topics(Some(vec![
        OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes((0..partitions).collect()),
    ]));
    let response = wire.call(Broker::At(&address), CALL, &request, OFFSET_FETCH).await?;
    if response.error_code != 0 {
        return Err(group_error(CALL, group, response.error_code));
    }
    let mut committed = BTreeMap::new();
    for partition in response.topics.into_iter().flat_map(|t| t.partitions) {
        match partition.error_code {
            // -1: nothing committed on this partition yet.
            0 if partition.committed_offset >= 0 => {
                committed.insert(partition.partition_index, partition.committed_offset);
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
pub async fn commit_offsets(
    wire: &Wire,
    group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<(), KafkaCallError> {
    use kafka_protocol::error::ResponseError::{IllegalGeneration, RebalanceInProgress, UnknownMemberId};
    const CALL: &str = "OffsetCommit";
    let address = coordinator(wire, group).await?;
    let partitions = offsets
        .iter()
        .map(|(p, o)| OffsetCommitRequestPartition::default().with_partition_index(*p).with_committed_offset(*o));
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

// ---- ACLs ------------------------------------------------------------------------------

// Kafka's wire codes (org.apache.kafka.common.acl / resource).
fn resource_code(r: ResourceType) -> i8 {
    match r {
        ResourceType::Topic => 2,
        ResourceType::Group => 3,
        ResourceType::Cluster => 4,
        ResourceType::TransactionalId => 5,
    }
}

fn pattern_code(p: PatternType) -> i8 {
    match p {
        PatternType::Literal => 3,
        PatternType::Prefixed => 4,
    }
}

const OPERATIONS: [(AclOperation, i8); 11] = [
    (AclOperation::All, 2),
    (AclOperation::Read, 3),
    (AclOperation::Write, 4),
    (AclOperation::Create, 5),
    (AclOperation::Delete, 6),
    (AclOperation::Alter, 7),
    (AclOperation::Describe, 8),
    (AclOperation::ClusterAction, 9),
    (AclOperation::DescribeConfigs, 10),
    (AclOperation::AlterConfigs, 11),
    (AclOperation::IdempotentWrite, 12),
];

fn operation_code(o: AclOperation) -> i8 {
    OPERATIONS.iter().find(|(op, _)| *op == o).map_or(0, |(_, code)| *code)
}

fn permission_code(p: AclPermission) -> i8 {
    match p {
        AclPermission::Deny => 2,
        AclPermission::Allow => 3,
    }
}

/// An ACL entry Kafka described, or `None` for kinds the operator does not model (it never
/// writes them, so it never needs to remove them).
fn binding(resource: (i8, &str, i8), principal: &str, host: &str, operation: i8, permission: i8) -> Option<AclBinding> {
    let (resource_type, resource_name, pattern_type) = resource;
    let resource_type =
        [ResourceType::Topic, ResourceType::Group, ResourceType::Cluster, ResourceType::TransactionalId]
            .into_iter()
            .find(|r| resource_code(*r) == resource_type)?;
    let pattern_type =
        [PatternType::Literal, PatternType::Prefixed].into_iter().find(|p| pattern_code(*p) == pattern_type)?;
    let operation = OPERATIONS.iter().find(|(_, code)| *code == operation)?.0;
    let permission =
        [AclPermission::Allow, AclPermission::Deny].into_iter().find(|p| permission_code(*p) == permission)?;
    Some(AclBinding {
        resource_type,
        resource_name: resource_name.to_string(),
        pattern_type,
        principal: principal.to_string(),
        host: host.to_string(),
        operation,
        permission,
    })
}

/// A filter's codes: `None` is ANY (1), a name or principal `None` matches any.
struct FilterCodes {
    resource_type: i8,
    resource_name: Option<StrBytes>,
    pattern_type: i8,
    principal: Option<StrBytes>,
    host: Option<StrBytes>,
    operation: i8,
    permission: i8,
}

fn filter_codes(f: &AclBindingFilter) -> FilterCodes {
    const ANY: i8 = 1;
    FilterCodes {
        resource_type: f.resource_type.map_or(ANY, resource_code),
        resource_name: f.resource_name.as_deref().map(text),
        pattern_type: f.pattern_type.map_or(ANY, pattern_code),
        principal: f.principal.as_deref().map(text),
        host: f.host.as_deref().map(text),
        operation: f.operation.map_or(ANY, operation_code),
        permission: f.permission.map_or(ANY, permission_code),
    }
}

/// Creates ACL entries in one request (creating an existing entry is a no-op in Kafka).
pub async fn create_acls(wire: &Wire, acls: &[AclBinding]) -> Result<(), KafkaCallError> {
    const CALL: &str = "CreateAcls";
    let creations = acls
        .iter()
        .map(|a| {
            AclCreation::default()
                .with_resource_type(resource_code(a.resource_type))
                .with_resource_name(text(&a.resource_name))
                .with_resource_pattern_type(pattern_code(a.pattern_type))
                .with_principal(text(&a.principal))
                .with_host(text(&a.host))
                .with_operation(operation_code(a.operation))
                .with_permission_type(permission_code(a.permission))
        })
        .collect();
    let response = wire.call(Broker::Any, CALL, &CreateAclsRequest::default().with_creations(creations), ACLS).await?;
    for (acl, result) in acls.iter().zip(response.results) {
        check(CALL, &format!("{acl:?}"), result.error_code, result.error_message)?;
    }
    Ok(())
}

/// The ACL entries that match `filter`.
pub async fn describe_acls(wire: &Wire, filter: &AclBindingFilter) -> Result<Vec<AclBinding>, KafkaCallError> {
    const CALL: &str = "DescribeAcls";
    let f = filter_codes(filter);
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(f.resource_type)
        .with_resource_name_filter(f.resource_name)
        .with_pattern_type_filter(f.pattern_type)
        .with_principal_filter(f.principal)
        .with_host_filter(f.host)
        .with_operation(f.operation)
        .with_permission_type(f.permission);
    let response = wire.call(Broker::Any, CALL, &request, ACLS).await?;
    check(CALL, "the filter", response.error_code, response.error_message)?;
    Ok(response
        .resources
        .iter()
        .flat_map(|r| {
            let resource = (r.resource_type, r.resource_name.as_str(), r.pattern_type);
            r.acls.iter().filter_map(move |a| {
                binding(resource, a.principal.as_str(), a.host.as_str(), a.operation, a.permission_type)
            })
        })
        .collect())
}

/// Deletes exactly these ACL entries; one that does not exist is not an error.
pub async fn delete_acls(wire: &Wire, acls: &[AclBinding]) -> Result<(), KafkaCallError> {
    const CALL: &str = "DeleteAcls";
    let filters = acls
        .iter()
        .map(|a| {
            let f = filter_codes(&AclBindingFilter::exact(a));
            DeleteAclsFilter::default()
                .with_resource_type_filter(f.resource_type)
                .with_resource_name_filter(f.resource_name)
                .with_pattern_type_filter(f.pattern_type)
                .with_principal_filter(f.principal)
                .with_host_filter(f.host)
                .with_operation(f.operation)
                .with_permission_type(f.permission)
        })
        .collect();
    let response = wire.call(Broker::Any, CALL, &DeleteAclsRequest::default().with_filters(filters), ACLS).await?;
    for (acl, result) in acls.iter().zip(response.filter_results) {
        check(CALL, &format!("{acl:?}"), result.error_code, result.error_message)?;
    }
    Ok(())
}

// ---- SCRAM credentials -----------------------------------------------------------------

/// The SCRAM credentials of `users` (`None`: every user's), as user → mechanism codes;
/// users without any are left out.
pub async fn describe_scram(
    wire: &Wire,
    users: Option<&[&str]>,
) -> Result<BTreeMap<String, BTreeSet<ScramMechanism>>, KafkaCallError> {
    const CALL: &str = "DescribeUserScramCredentials";
    let users = users.map(|names| names.iter().map(|n| UserName::default().with_name(text(n))).collect());
    let request = DescribeUserScramCredentialsRequest::default().with_users(users);
    let response = wire.call(Broker::Any, CALL, &request, SCRAM).await?;
    check(CALL, "the users", response.error_code, response.error_message)?;
    let all = [ScramMechanism::Sha256, ScramMechanism::Sha512];
    Ok(response
        .results
        .into_iter()
        // RESOURCE_NOT_FOUND (91) for a user without credentials.
        .filter(|r| r.error_code == 0)
        .map(|r| {
            let codes: Vec<i8> = r.credential_infos.iter().map(|c| c.mechanism).collect();
            (r.user.to_string(), all.into_iter().filter(|m| codes.contains(&m.code())).collect())
        })
        .collect())
}

/// The salted password Kafka stores for a SCRAM credential (RFC 5802 `Hi`: PBKDF2 with the
/// mechanism's HMAC), with a new random salt. Kafka's own tools compute it the same way,
/// client side: the password never travels.
fn salted(password: &str, mechanism: ScramMechanism, iterations: i32) -> Result<(Bytes, Bytes), String> {
    let (digest, length) = match mechanism {
        ScramMechanism::Sha256 => (openssl::hash::MessageDigest::sha256(), 32),
        ScramMechanism::Sha512 => (openssl::hash::MessageDigest::sha512(), 64),
    };
    let mut salt = [0u8; 32];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| e.to_string())?;
    let mut key = vec![0u8; length];
    let rounds = usize::try_from(iterations).map_err(|e| e.to_string())?;
    openssl::pkcs5::pbkdf2_hmac(password.as_bytes(), &salt, rounds, digest, &mut key).map_err(|e| e.to_string())?;
    Ok((Bytes::copy_from_slice(&salt), Bytes::from(key)))
}

/// Applies one SCRAM credential change; deleting a credential that does not exist counts
/// as done.
pub async fn alter_scram(wire: &Wire, change: &ScramChange) -> Result<(), KafkaCallError> {
    const CALL: &str = "AlterUserScramCredentials";
    let mut request = AlterUserScramCredentialsRequest::default();
    match change {
        ScramChange::Upsert { user, mechanism, iterations, password } => {
            let (salt, salted_password) =
                salted(password, *mechanism, *iterations).map_err(|message| KafkaCallError {
                    call: CALL,
                    message: format!("salting {user}'s password: {message}"),
                    transient: true,
                    answered: false,
                })?;
            request.upsertions.push(
                alter_scram::ScramCredentialUpsertion::default()
                    .with_name(text(user))
                    .with_mechanism(mechanism.code())
                    .with_iterations(*iterations)
                    .with_salt(salt)
                    .with_salted_password(salted_password),
            );
        }
        ScramChange::Delete { user, mechanism } => request.deletions.push(
            alter_scram::ScramCredentialDeletion::default().with_name(text(user)).with_mechanism(mechanism.code()),
        ),
    }
    let deleting = matches!(change, ScramChange::Delete { .. });
    let response = wire.call(Broker::Any, CALL, &request, SCRAM).await?;
    for result in response.results {
        // RESOURCE_NOT_FOUND (91): no such credential.
        if !(deleting && result.error_code == 91) {
            check(CALL, &format!("user {}", result.user.as_str()), result.error_code, result.error_message)?;
        }
    }
    Ok(())
}

// ---- Client quotas ---------------------------------------------------------------------

/// The quotas set on exactly this user (not defaults).
pub async fn describe_user_quotas(wire: &Wire, user: &str) -> Result<Quotas, KafkaCallError> {
    const CALL: &str = "DescribeClientQuotas";
    let request = DescribeClientQuotasRequest::default().with_strict(true).with_components(vec![
        describe_quotas::ComponentData::default()
            .with_entity_type(StrBytes::from_static_str("user"))
            .with_match_type(0) // exact name
            .with_match(Some(text(user))),
    ]);
    let response = wire.call(Broker::Any, CALL, &request, QUOTAS).await?;
    check(CALL, &format!("user {user}"), response.error_code, response.error_message)?;
    Ok(response
        .entries
        .unwrap_or_default()
        .into_iter()
        .flat_map(|entry| entry.values)
        .map(|v| (v.key.to_string(), v.value))
        .collect())
}

/// Sets `set` and removes `remove` on the user's quotas, in one request.
pub async fn alter_user_quotas(wire: &Wire, user: &str, set: &Quotas, remove: &[String]) -> Result<(), KafkaCallError> {
    const CALL: &str = "AlterClientQuotas";
    let mut ops: Vec<alter_quotas::OpData> =
        set.iter().map(|(k, v)| alter_quotas::OpData::default().with_key(text(k)).with_value(*v)).collect();
    ops.extend(remove.iter().map(|k| alter_quotas::OpData::default().with_key(text(k)).with_remove(true)));
    let entity = alter_quotas::EntityData::default()
        .with_entity_type(StrBytes::from_static_str("user"))
        .with_entity_name(Some(text(user)));
    let request = AlterClientQuotasRequest::default()
        .with_entries(vec![alter_quotas::EntryData::default().with_entity(vec![entity]).with_ops(ops)]);
    let response = wire.call(Broker::Any, CALL, &request, QUOTAS).await?;
    for entry in response.entries {
        check(CALL, &format!("user {user}"), entry.error_code, entry.error_message)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::*;

    #[test]
    fn requests_encode_in_the_versions_the_client_sends() {
        let request = DescribeClientQuotasRequest::default().with_strict(true);
        let mut buf = BytesMut::new();
        request.encode(&mut buf, QUOTAS).expect("DescribeClientQuotas v1 encodes");
        let decoded = DescribeClientQuotasRequest::decode(&mut buf.freeze(), QUOTAS).unwrap();
        assert_eq!(decoded, request);
    }

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

    #[test]
    fn acl_entries_round_trip_through_kafkas_codes() {
        let acl =
            AclBinding::allow("User:water", ResourceType::Topic, PatternType::Prefixed, "water.", AclOperation::Write);
        let f = filter_codes(&AclBindingFilter::exact(&acl));
        let back = binding((f.resource_type, "water.", f.pattern_type), "User:water", "*", f.operation, f.permission);
        assert_eq!(back, Some(acl));
        for (op, code) in OPERATIONS {
            assert_eq!(operation_code(op), code);
        }
        // Kafka's codes (AclOperation.java): READ 3, WRITE 4, IDEMPOTENT_WRITE 12.
        assert_eq!((operation_code(AclOperation::Read), operation_code(AclOperation::IdempotentWrite)), (3, 12));
        let any = filter_codes(&AclBindingFilter::for_principal("User:water"));
        assert_eq!((any.resource_type, any.pattern_type, any.operation, any.permission), (1, 1, 1, 1));
        // A kind the operator never writes (DELEGATION_TOKEN, 6) is left out, not mistaken.
        assert_eq!(binding((6, "t", 3), "User:x", "*", 3, 3), None);
    }

    #[test]
    fn a_salted_password_is_rfc_5802_hi_with_a_fresh_salt() {
        let (salt, key) = salted("pencil", ScramMechanism::Sha256, 4096).unwrap();
        let mut expected = [0u8; 32];
        openssl::pkcs5::pbkdf2_hmac(b"pencil", &salt, 4096, openssl::hash::MessageDigest::sha256(), &mut expected)
            .unwrap();
        assert_eq!(&key[..], &expected[..]);
        let (other_salt, other_key) = salted("pencil", ScramMechanism::Sha256, 4096).unwrap();
        assert_ne!((salt, key), (other_salt, other_key), "each credential gets its own salt");
        assert_eq!(salted("x", ScramMechanism::Sha512, 4096).unwrap().1.len(), 64);
    }
}
