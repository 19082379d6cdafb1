//! Topic admin calls behind the [`KafkaAdmin`] trait, so reconcile flows can be tested
//! without brokers; [`RdKafkaAdmin`] is the real implementation on one shared admin client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::ClientSettings;
use crate::metrics::Metrics;

/// A topic as the operator wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub config: BTreeMap<String, String>,
}

/// A topic as Kafka has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTopic {
    pub partitions: i32,
    pub replication_factor: i32,
}

/// A failed Kafka call. `transient` errors (timeouts, brokers down) are retried with backoff.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Kafka {call} failed: {message}")]
pub struct KafkaCallError {
    pub call: &'static str,
    pub message: String,
    pub transient: bool,
}

pub trait KafkaAdmin: Send + Sync {
    /// `None` when the topic does not exist.
    fn describe_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ObservedTopic>, KafkaCallError>>;
    fn create_topic<'a>(&'a self, topic: &'a DesiredTopic) -> BoxFuture<'a, Result<(), KafkaCallError>>;
    /// Raises the topic's partition count to `total`.
    fn create_partitions<'a>(&'a self, name: &'a str, total: i32) -> BoxFuture<'a, Result<(), KafkaCallError>>;
}

/// [`KafkaAdmin`] on one long-lived rdkafka admin client, shared by every reconcile.
pub struct RdKafkaAdmin {
    admin: Arc<AdminClient<DefaultClientContext>>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl RdKafkaAdmin {
    pub fn new(settings: &ClientSettings, timeout: Duration, metrics: Arc<Metrics>) -> Result<Self, KafkaError> {
        let admin = settings
            .client_config()
            .set("client.id", "tributary-operator")
            .set("socket.timeout.ms", timeout.as_millis().to_string())
            .create()?;
        Ok(RdKafkaAdmin { admin: Arc::new(admin), timeout, metrics })
    }

    pub fn client(&self) -> Arc<AdminClient<DefaultClientContext>> {
        self.admin.clone()
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new().request_timeout(Some(self.timeout)).operation_timeout(Some(self.timeout))
    }
}

fn call_error(call: &'static str, err: &KafkaError) -> KafkaCallError {
    let transient = match err.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::NotController
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotEnoughReplicas
            | RDKafkaErrorCode::Resolve,
        ) => true,
        Some(_) => false,
        None => true,
    };
    KafkaCallError { call, message: err.to_string(), transient }
}

fn code_error(call: &'static str, topic: &str, code: RDKafkaErrorCode) -> KafkaCallError {
    let transient = matches!(
        code,
        RDKafkaErrorCode::RequestTimedOut | RDKafkaErrorCode::NotController | RDKafkaErrorCode::OperationTimedOut
    );
    KafkaCallError { call, message: format!("topic {topic}: {code}"), transient }
}

impl KafkaAdmin for RdKafkaAdmin {
    fn describe_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ObservedTopic>, KafkaCallError>> {
        Box::pin(async move {
            let admin = self.admin.clone();
            let topic = name.to_string();
            let timeout = self.timeout;
            // fetch_metadata blocks the calling thread.
            let metadata = tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(Some(&topic), timeout))
                .await
                .map_err(|e| KafkaCallError { call: "Metadata", message: e.to_string(), transient: true })?
                .map_err(|e| call_error("Metadata", &e))?;
            let Some(t) = metadata.topics().iter().find(|t| t.name() == name) else { return Ok(None) };
            match t.error() {
                None => {}
                Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => return Ok(None),
                Some(e) => return Err(code_error("Metadata", name, RDKafkaErrorCode::from(e))),
            }
            let replication_factor = t.partitions().iter().map(|p| p.replicas().len() as i32).max().unwrap_or(0);
            Ok(Some(ObservedTopic { partitions: t.partitions().len() as i32, replication_factor }))
        })
    }

    fn create_topic<'a>(&'a self, topic: &'a DesiredTopic) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            let mut new =
                NewTopic::new(&topic.name, topic.partitions, TopicReplication::Fixed(topic.replication_factor));
            for (key, value) in &topic.config {
                new = new.set(key, value);
            }
            self.metrics.external_write("kafka", "CreateTopics");
            let results =
                self.admin.create_topics([&new], &self.options()).await.map_err(|e| call_error("CreateTopics", &e))?;
            for result in results {
                match result {
                    Ok(_) => {}
                    // Another reconcile (or replica) created it first: the outcome we wanted.
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => return Err(code_error("CreateTopics", &name, code)),
                }
            }
            Ok(())
        })
    }

    fn create_partitions<'a>(&'a self, name: &'a str, total: i32) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            self.metrics.external_write("kafka", "CreatePartitions");
            let partitions = NewPartitions::new(name, total as usize);
            let results = self
                .admin
                .create_partitions([&partitions], &self.options())
                .await
                .map_err(|e| call_error("CreatePartitions", &e))?;
            for result in results {
                result.map_err(|(name, code)| code_error("CreatePartitions", &name, code))?;
            }
            Ok(())
        })
    }
}
