//! The batched Kafka calls behind the admin client's [`super::batch::Batcher`]s:
//! one request for the topics that concurrent reconciles ask about at once, each topic's
//! answer handed back to its own caller.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::acl::ItemError;
use super::admin_ext::{AdminExt, OffsetAt, TopicShape};
use super::error::{KafkaCallError, call_error, code_error, ext_error, item_failure};
use crate::metrics::Metrics;
use crate::topic::model::{DesiredTopic, LiveConfig};

/// Each partition's first offset and high watermark, in partition order.
pub(super) type Watermarks = Result<Vec<(i64, i64)>, KafkaCallError>;

pub(super) fn no_answer(call: &'static str, topic: &str) -> KafkaCallError {
    KafkaCallError { call, message: format!("no answer for topic {topic}"), transient: true, answered: true }
}

/// One CreateTopics request for a batch of topics; each topic gets its own outcome. A topic
/// that already exists (another reconcile or replica created it first) counts as created.
pub(super) async fn create_topics(
    admin: Arc<AdminClient<DefaultClientContext>>,
    options: AdminOptions,
    metrics: Arc<Metrics>,
    topics: Vec<DesiredTopic>,
) -> Vec<Result<(), KafkaCallError>> {
    const CALL: &str = "CreateTopics";
    // One entry per name: a request naming a topic twice is refused as a whole.
    let mut unique: Vec<&DesiredTopic> = Vec::new();
    for t in &topics {
        if !unique.iter().any(|u| u.name == t.name) {
            unique.push(t);
        }
    }
    let new: Vec<NewTopic> = unique
        .iter()
        .map(|t| {
            let mut new = NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(t.replication_factor));
            for (key, value) in &t.config {
                new = new.set(key, value);
            }
            new
        })
        .collect();
    metrics.external_write("kafka", CALL);
    let outcomes: BTreeMap<String, Result<(), KafkaCallError>> = match admin.create_topics(&new, &options).await {
        Err(e) => return topics.iter().map(|_| Err(call_error(CALL, &e))).collect(),
        Ok(results) => results
            .into_iter()
            .map(|r| match r {
                Ok(name) | Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => (name, Ok(())),
                Err((name, code)) => {
                    let error = code_error(CALL, &name, code);
                    (name, Err(error))
                }
            })
            .collect(),
    };
    topics.iter().map(|t| outcomes.get(&t.name).cloned().unwrap_or_else(|| Err(no_answer(CALL, &t.name)))).collect()
}

/// One DescribeTopics request for a batch of topics, each name asked once.
pub(super) async fn describe_topics(
    ext: AdminExt,
    names: Vec<String>,
) -> Vec<Result<Option<TopicShape>, KafkaCallError>> {
    const CALL: &str = "DescribeTopics";
    let unique: Vec<String> = names.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    let answers: BTreeMap<String, Result<Option<TopicShape>, KafkaCallError>> = match ext.describe_topics(unique).await
    {
        Err(e) => {
            let error = ext_error(CALL, e);
            return names.iter().map(|_| Err(error.clone())).collect();
        }
        Ok(results) => results
            .into_iter()
            .map(|(name, shape)| {
                let shape = shape.map_err(|e| item_failure(CALL, &format!("topic {name}"), e));
                (name, shape)
            })
            .collect(),
    };
    names.iter().map(|name| answers.get(name).cloned().unwrap_or_else(|| Err(no_answer(CALL, name)))).collect()
}

/// First offsets and high watermarks of every partition of a batch of topics: two ListOffsets
/// calls (librdkafka refuses a partition named twice in one), asked at once. A topic named by
/// two requests of the batch is asked once, for the larger partition count.
pub(super) async fn list_watermarks(ext: AdminExt, topics: Vec<(String, i32)>) -> Vec<Watermarks> {
    const CALL: &str = "ListOffsets";
    let mut unique: BTreeMap<&str, i32> = BTreeMap::new();
    for (name, partitions) in &topics {
        let most = unique.entry(name.as_str()).or_default();
        *most = (*most).max(*partitions);
    }
    let partitions: Vec<(String, i32)> =
        unique.iter().flat_map(|(name, count)| (0..*count).map(|p| (name.to_string(), p))).collect();
    let (first, high) = if partitions.is_empty() {
        (Ok(Vec::new()), Ok(Vec::new()))
    } else {
        tokio::join!(
            ext.list_offsets(partitions.clone(), OffsetAt::Earliest),
            ext.list_offsets(partitions, OffsetAt::Latest)
        )
    };
    let (first, high): (BTreeMap<_, _>, BTreeMap<_, _>) = match (first, high) {
        (Ok(first), Ok(high)) => (first.into_iter().collect(), high.into_iter().collect()),
        (Err(e), _) | (_, Err(e)) => {
            let error = ext_error(CALL, e);
            return topics.iter().map(|_| Err(error.clone())).collect();
        }
    };
    let offset = |answers: &BTreeMap<(String, i32), Result<i64, ItemError>>, name: &str, p: i32| match answers
        .get(&(name.to_string(), p))
    {
        None => Err(no_answer(CALL, name)),
        Some(Err(e)) => Err(item_failure(CALL, &format!("topic {name} partition {p}"), e.clone())),
        Some(Ok(offset)) => Ok(*offset),
    };
    topics
        .iter()
        .map(|(name, count)| (0..*count).map(|p| Ok((offset(&first, name, p)?, offset(&high, name, p)?))).collect())
        .collect()
}

/// One DescribeConfigs request for a batch of topics: every config entry of each. Each name
/// is asked once: when two reconciles ask for the same topic in one batch (a Topic and a
/// sink checking its dead-letter topic), a request naming it twice gets it answered twice,
/// and librdkafka then fails the whole request ("returned ConfigResource ... multiple
/// times", BadMessage), every other topic of the batch with it.
pub(super) async fn describe_configs(
    admin: Arc<AdminClient<DefaultClientContext>>,
    options: AdminOptions,
    names: Vec<String>,
) -> Vec<Result<BTreeMap<String, LiveConfig>, KafkaCallError>> {
    const CALL: &str = "DescribeConfigs";
    let unique: Vec<&str> = names.iter().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect();
    let resources: Vec<ResourceSpecifier> = unique.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
    let results = match admin.describe_configs(&resources, &options).await {
        Err(e) => return names.iter().map(|_| Err(call_error(CALL, &e))).collect(),
        Ok(results) => results,
    };
    let answers: BTreeMap<&str, Result<BTreeMap<String, LiveConfig>, KafkaCallError>> = unique
        .into_iter()
        .zip(results)
        .map(|(name, result)| {
            let config = result.map_err(|code| code_error(CALL, name, code)).map(|resource| {
                let entries = resource.entries.into_iter();
                entries
                    .map(|e| (e.name, LiveConfig { value: e.value, dynamic: e.source == ConfigSource::DynamicTopic }))
                    .collect()
            });
            (name, config)
        })
        .collect();
    names.iter().map(|name| answers.get(name.as_str()).cloned().unwrap_or_else(|| Err(no_answer(CALL, name)))).collect()
}
