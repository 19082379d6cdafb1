//! The batched Kafka calls behind the client's [`super::batch::Batcher`]s: one request for
//! the topics that concurrent reconciles ask about at once, each topic's answer handed back
//! to its own caller.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::calls::{self, TopicShape};
use super::error::{KafkaCallError, no_answer};
use super::wire::Wire;
use crate::metrics::Metrics;
use crate::topic::model::{DesiredTopic, LiveConfig};

/// Each partition's first offset and high watermark, in partition order.
pub(super) type Watermarks = Result<Vec<(i64, i64)>, KafkaCallError>;

/// Each caller's answer from the answers by name; a failed request fails every caller.
fn hand_back<T: Clone>(
    call: &'static str,
    names: impl Iterator<Item = String>,
    answers: Result<BTreeMap<String, Result<T, KafkaCallError>>, KafkaCallError>,
) -> Vec<Result<T, KafkaCallError>> {
    match answers {
        Err(e) => names.map(|_| Err(e.clone())).collect(),
        Ok(answers) => names
            .map(|name| answers.get(&name).cloned().unwrap_or_else(|| Err(no_answer(call, &format!("topic {name}")))))
            .collect(),
    }
}

/// One CreateTopics request for a batch of topics; each topic gets its own outcome. A topic
/// that already exists (another reconcile or replica created it first) counts as created.
pub(super) async fn create_topics(
    wire: Arc<Wire>,
    metrics: Arc<Metrics>,
    topics: Vec<DesiredTopic>,
) -> Vec<Result<(), KafkaCallError>> {
    // One entry per name: a request naming a topic twice is refused as a whole.
    let mut unique: Vec<&DesiredTopic> = Vec::new();
    for t in &topics {
        if !unique.iter().any(|u| u.name == t.name) {
            unique.push(t);
        }
    }
    metrics.external_write("kafka", "CreateTopics");
    let answers = calls::create_topics(&wire, &unique).await;
    hand_back("CreateTopics", topics.iter().map(|t| t.name.clone()), answers)
}

/// One Metadata request for a batch of topics, each name asked once.
pub(super) async fn describe_topics(
    wire: Arc<Wire>,
    names: Vec<String>,
) -> Vec<Result<Option<TopicShape>, KafkaCallError>> {
    let unique: Vec<String> = names.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    let answers = calls::metadata(&wire, Some(&unique)).await.map(|metadata| calls::shapes(&metadata));
    hand_back("Metadata", names.into_iter(), answers)
}

/// One DescribeConfigs request for a batch of topics: every config entry of each. Each name
/// is asked once (a request naming a topic twice is answered twice: seen when a Topic and a
/// sink checking its dead-letter topic ask at once).
pub(super) async fn describe_configs(
    wire: Arc<Wire>,
    names: Vec<String>,
) -> Vec<Result<BTreeMap<String, LiveConfig>, KafkaCallError>> {
    let unique: Vec<&str> = names.iter().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect();
    let answers = calls::describe_configs(&wire, &unique).await;
    hand_back("DescribeConfigs", names.into_iter(), answers)
}

/// First offsets and high watermarks of every partition of a batch of topics: one Metadata
/// request for their leaders, then ListOffsets at each leader for both ends at once. A topic
/// named by two requests of the batch is asked once, for the larger partition count.
pub(super) async fn list_watermarks(wire: Arc<Wire>, topics: Vec<(String, i32)>) -> Vec<Watermarks> {
    const CALL: &str = "ListOffsets";
    let mut unique: BTreeMap<String, i32> = BTreeMap::new();
    for (name, partitions) in &topics {
        let most = unique.entry(name.clone()).or_default();
        *most = (*most).max(*partitions);
    }
    let partitions: Vec<(String, i32)> =
        unique.iter().flat_map(|(name, count)| (0..*count).map(|p| (name.clone(), p))).collect();
    let ends = async {
        if partitions.is_empty() {
            return Ok((BTreeMap::new(), BTreeMap::new()));
        }
        let names: Vec<String> = unique.keys().cloned().collect();
        let leaders = calls::leaders(&calls::metadata(&wire, Some(&names)).await?);
        tokio::try_join!(
            calls::list_offsets(&wire, &leaders, &partitions, EARLIEST),
            calls::list_offsets(&wire, &leaders, &partitions, LATEST)
        )
    };
    let (first, high) = match ends.await {
        Ok(ends) => ends,
        Err(e) => return topics.iter().map(|_| Err(e.clone())).collect(),
    };
    let offset = |answers: &BTreeMap<(String, i32), Result<i64, KafkaCallError>>, name: &str, p: i32| {
        answers.get(&(name.to_string(), p)).cloned().unwrap_or_else(|| Err(no_answer(CALL, &format!("{name}/{p}"))))
    };
    topics
        .iter()
        .map(|(name, count)| (0..*count).map(|p| Ok((offset(&first, name, p)?, offset(&high, name, p)?))).collect())
        .collect()
}

/// ListOffsets' timestamps for a partition's first offset and its high watermark.
pub(super) const EARLIEST: i64 = -2;
pub(super) const LATEST: i64 = -1;
