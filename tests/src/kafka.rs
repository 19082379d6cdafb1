//! Kafka helpers for tests: topics through the admin client, and produce/consume as a
//! given principal with real rdkafka clients.

use crate::{ClientConfigOf, CreateClient};
use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tributary::external::kafka::ClientSettings;

use crate::wait_until;

/// Creates a topic and waits until every partition has a leader and `rf` in-sync replicas.
pub async fn create_topic(admin: &AdminClient<DefaultClientContext>, name: &str, partitions: i32, rf: i32) {
    let results = admin
        .create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(rf))], &AdminOptions::new())
        .await
        .expect("CreateTopics request");
    for r in results {
        r.unwrap_or_else(|(t, code)| panic!("creating topic {t} failed: {code:?}"));
    }
    wait_until(
        &format!("topic {name} to have {partitions} partitions with {rf} in-sync replicas"),
        Duration::from_secs(30),
        || async {
            let layout = topic_layout(admin, name)?;
            let ready = layout.len() == partitions as usize
                && layout.iter().all(|p| p.leader >= 0 && p.isr.len() == rf as usize);
            if ready { Ok(()) } else { Err(format!("{layout:?}")) }
        },
    )
    .await;
}

pub async fn delete_topic(admin: &AdminClient<DefaultClientContext>, name: &str) {
    let results = admin.delete_topics(&[name], &AdminOptions::new()).await.expect("DeleteTopics request");
    for r in results {
        r.unwrap_or_else(|(t, code)| panic!("deleting topic {t} failed: {code:?}"));
    }
}

#[derive(Debug, Clone)]
pub struct PartitionLayout {
    pub id: i32,
    pub leader: i32,
    pub replicas: BTreeSet<i32>,
    pub isr: BTreeSet<i32>,
}

/// The live partition layout of a topic, from a metadata request.
pub fn topic_layout(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Result<Vec<PartitionLayout>, String> {
    let metadata = admin.inner().fetch_metadata(Some(topic), Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let t = metadata.topics().first().ok_or("no topic in metadata")?;
    if let Some(err) = t.error() {
        return Err(format!("{err:?}"));
    }
    Ok(t.partitions()
        .iter()
        .map(|p| PartitionLayout {
            id: p.id(),
            leader: p.leader(),
            replicas: p.replicas().iter().copied().collect(),
            isr: p.isr().iter().copied().collect(),
        })
        .collect())
}

/// A producer for `settings`' principal that waits for all in-sync replicas.
pub fn producer(settings: &ClientSettings) -> FutureProducer {
    settings
        .client_config()
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5")
        .create_client()
        .expect("create producer")
}

/// Sends one record and returns the broker's error code if it was refused.
pub async fn produce(producer: &FutureProducer, topic: &str, key: &str, value: &str) -> Result<(i32, i64), KafkaError> {
    producer
        .send(FutureRecord::to(topic).key(key).payload(value), Duration::from_secs(30))
        .await
        .map(|d| (d.partition, d.offset))
        .map_err(|(e, _)| e)
}

pub fn consumer(settings: &ClientSettings, group: &str) -> StreamConsumer {
    settings
        .client_config()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .create_client()
        .expect("create consumer")
}

/// Reads `count` records from `topic` (subscribing as `group`), or the first error.
pub async fn consume(
    consumer: &StreamConsumer,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<(String, String)>, KafkaError> {
    consumer.subscribe(&[topic])?;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < count {
        let message = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => return Err(KafkaError::MessageConsumption(RDKafkaErrorCode::OperationTimedOut)),
            // librdkafka reports a broker it cannot reach as an error event and keeps
            // going with the others; that is not a failure of the read.
            Ok(Err(e)) if is_transient(&e) => continue,
            Ok(result) => result?,
        };
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        let value = String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
        out.push((key, value));
    }
    Ok(out)
}

/// Connection-level errors librdkafka recovers from by itself.
pub fn is_transient(err: &KafkaError) -> bool {
    matches!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::Resolve)
    )
}

/// The broker error code inside a client error, if any.
pub fn error_code(err: &KafkaError) -> Option<RDKafkaErrorCode> {
    err.rdkafka_error_code()
}

/// A topic's config as Kafka reports it: key → (value, set on the topic itself).
pub async fn topic_config(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<std::collections::BTreeMap<String, (String, bool)>, String> {
    use rdkafka::admin::{ConfigSource, ResourceSpecifier};
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .map_err(|e| e.to_string())?;
    let resource = results.into_iter().next().ok_or("no result")?.map_err(|code| format!("{code:?}"))?;
    Ok(resource
        .entries
        .into_iter()
        .map(|e| (e.name, (e.value.unwrap_or_default(), e.source == ConfigSource::DynamicTopic)))
        .collect())
}

/// Waits (up to 60 s) until `key` is set on `topic` itself to `expected` (`None`: not set on
/// the topic, i.e. the broker default).
pub async fn wait_config(topic: &str, key: &str, expected: Option<&str>) {
    let admin = crate::kafka_admin();
    wait_until(&format!("{topic} {key} to be {expected:?} in Kafka"), Duration::from_secs(60), || async {
        let config = topic_config(&admin, topic).await?;
        let found = config.get(key).filter(|(_, dynamic)| *dynamic).map(|(v, _)| v.as_str());
        if found == expected { Ok(()) } else { Err(format!("{found:?}")) }
    })
    .await
}

/// Records of `group` not yet committed on `topic` (summed over partitions), and the
/// topic's total records (sum of high watermarks), read with the admin's credentials.
pub fn group_lag(topic: &str, group: &str) -> Result<(i64, i64), String> {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = crate::kafka_admin_settings()
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create_client()
        .map_err(|e| e.to_string())?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let partitions = metadata.topics().first().map(|t| t.partitions().len()).unwrap_or(0);
    let mut list = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        list.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let (mut lag, mut total) = (0, 0);
    for p in committed.elements() {
        let (low, high) =
            consumer.fetch_watermarks(topic, p.partition(), Duration::from_secs(10)).map_err(|e| e.to_string())?;
        let at = match p.offset() {
            Offset::Offset(o) => o,
            _ => low,
        };
        lag += (high - at).max(0);
        total += high;
    }
    Ok((lag, total))
}
