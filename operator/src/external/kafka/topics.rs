//! What the controllers ask of Kafka, as two traits ([`KafkaAdmin`] for topics, offsets
//! and groups, [`KafkaSecurity`] for principals, credentials, ACLs and quotas), so reconcile
//! flows can be tested without brokers; [`KafkaClient`] is the real implementation, every
//! call on one [`Wire`] (the operator's one Kafka client).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::ClientSettings;
use super::access_calls;
use super::batch::Batcher;
use super::batched::{Watermarks, create_topics, describe_configs, describe_topics, list_watermarks};
use super::calls::{self, TopicShape};
use super::error::{KafkaCallError, shut_down};
use super::wire::Wire;
use crate::access::kafka::{
    AclBinding, AclBindingFilter, ConfigOp, DEFAULT_SCRAM_ITERATIONS, ScramChange, ScramMechanism,
};
use crate::access::quotas::Quotas;
use crate::api::Position;
use crate::metrics::Metrics;
use crate::topic::model::{DesiredTopic, LiveConfig, ObservedTopic, TopicProgress, TopicView};

pub trait KafkaAdmin: Send + Sync {
    /// The topic's partitions, replicas and config, and how many brokers are alive.
    fn describe_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<TopicView, KafkaCallError>>;
    /// How many brokers the cluster reports alive.
    fn live_brokers(&self) -> BoxFuture<'_, Result<i32, KafkaCallError>>;
    /// The live brokers, and the bytes each topic takes on their disks (every replica counted).
    fn log_dirs(&self) -> BoxFuture<'_, Result<super::log_dirs::LogDirs, KafkaCallError>>;
    fn create_topic<'a>(&'a self, topic: &'a DesiredTopic) -> BoxFuture<'a, Result<(), KafkaCallError>>;
    /// Raises the topic's partition count to `total`.
    fn create_partitions<'a>(&'a self, name: &'a str, total: i32) -> BoxFuture<'a, Result<(), KafkaCallError>>;
    /// Changes only the given config keys (IncrementalAlterConfigs).
    fn alter_topic_config<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<(String, ConfigOp)>,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>>;
    /// Deletes the topic and its records; a topic that does not exist is not an error.
    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), KafkaCallError>>;
    /// The names of every topic in the cluster that start with `prefix` (internal ones too).
    fn topics_with_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, KafkaCallError>>;
    /// The consumer groups the cluster knows whose id starts with `prefix`.
    fn groups_with_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, KafkaCallError>>;
    /// Deletes the consumer groups with their committed offsets; one that does not exist is
    /// not an error. Kafka deletes no group that has members: the call then fails (transient)
    /// naming the group.
    fn delete_groups<'a>(&'a self, names: &'a [String]) -> BoxFuture<'a, Result<(), KafkaCallError>>;
    /// Records in `topic` (sum over partitions of high − low watermark), and the records
    /// `group` has not committed yet (high watermark − committed offset; from the low
    /// watermark where it committed nothing).
    fn topic_progress<'a>(
        &'a self,
        topic: &'a str,
        group: Option<&'a str>,
    ) -> BoxFuture<'a, Result<TopicProgress, KafkaCallError>>;
    /// The topic's id: a deleted and re-created topic has a new one. `None`: no such topic.
    fn topic_id<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, KafkaCallError>>;
    /// The offsets `group` committed on `topic`, by partition (absent: none yet).
    fn committed_offsets<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<i32, i64>, KafkaCallError>>;
    /// Commits `group`'s offsets on every partition of `topic` at `to`, and returns them.
    /// Kafka takes such a commit only while the group has no members; otherwise the call
    /// fails (transient) saying that the group is in use.
    fn reset_offsets<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        to: Position,
    ) -> BoxFuture<'a, Result<BTreeMap<i32, i64>, KafkaCallError>>;
}

/// [`KafkaAdmin`] and [`KafkaSecurity`] on one [`Wire`], shared by every reconcile.
pub struct KafkaClient {
    wire: Arc<Wire>,
    /// CreateTopics and DescribeConfigs of concurrent reconciles, one request to Kafka each.
    creates: Batcher<DesiredTopic, Result<(), KafkaCallError>>,
    describes: Batcher<String, Result<BTreeMap<String, LiveConfig>, KafkaCallError>>,
    /// Metadata of concurrent reconciles' topics, one request to Kafka each.
    shapes: Batcher<String, Result<Option<TopicShape>, KafkaCallError>>,
    /// Each partition's first offset and high watermark for a topic with that many
    /// partitions (ListOffsets), batched the same way.
    watermarks: Batcher<(String, i32), Watermarks>,
    /// Every topic's name, every consumer group's, every SCRAM user's: cluster-wide reads
    /// that concurrent reconciles share (new Tenants check their names against them).
    topic_names: Batcher<(), Result<Arc<Vec<String>>, KafkaCallError>>,
    group_names: Batcher<(), Result<Arc<Vec<String>>, KafkaCallError>>,
    scram_users: Batcher<(), Result<Arc<BTreeSet<String>>, KafkaCallError>>,
    metrics: Arc<Metrics>,
}

impl KafkaClient {
    /// Needs a tokio runtime (the call batchers run on it). `timeout` bounds each
    /// connection attempt and each answer.
    pub fn new(settings: &ClientSettings, timeout: Duration, metrics: Arc<Metrics>) -> Self {
        let wire = Arc::new(Wire::new(settings.clone(), timeout));
        let creates = {
            let (wire, metrics) = (wire.clone(), metrics.clone());
            Batcher::spawn(BATCH, move |topics| create_topics(wire.clone(), metrics.clone(), topics))
        };
        let describes = {
            let wire = wire.clone();
            Batcher::spawn(BATCH, move |names| describe_configs(wire.clone(), names))
        };
        let shapes = {
            let wire = wire.clone();
            Batcher::spawn(BATCH, move |names| describe_topics(wire.clone(), names))
        };
        let watermarks = {
            let wire = wire.clone();
            Batcher::spawn(BATCH, move |topics| list_watermarks(wire.clone(), topics))
        };
        let topic_names = shared(&wire, |wire| async move {
            let metadata = calls::metadata(&wire, None).await?;
            Ok(metadata.topics.iter().filter_map(|t| Some(t.name.as_ref()?.to_string())).collect())
        });
        let group_names = shared(&wire, |wire| async move { calls::list_groups(&wire).await });
        let scram_users =
            shared(
                &wire,
                |wire| async move { Ok(access_calls::describe_scram(&wire, None).await?.into_keys().collect()) },
            );
        KafkaClient { wire, creates, describes, shapes, watermarks, topic_names, group_names, scram_users, metrics }
    }

    /// One topic's partitions and id (Metadata, batched with concurrent reconciles').
    async fn shape(&self, name: &str) -> Result<Option<TopicShape>, KafkaCallError> {
        self.shapes.submit(name.to_string()).await.unwrap_or_else(|| Err(shut_down("Metadata")))
    }

    /// How many partitions the topic has (0 when Kafka does not know it).
    async fn partitions(&self, name: &str) -> Result<i32, KafkaCallError> {
        Ok(self.shape(name).await?.map_or(0, |shape| i32::try_from(shape.partitions.len()).unwrap_or(i32::MAX)))
    }

    /// Every config entry of one topic (DescribeConfigs, batched with concurrent reconciles').
    async fn describe_config(&self, name: &str) -> Result<BTreeMap<String, LiveConfig>, KafkaCallError> {
        self.describes.submit(name.to_string()).await.unwrap_or_else(|| Err(shut_down("DescribeConfigs")))
    }

    async fn watermarks(&self, topic: &str, partitions: i32) -> Watermarks {
        self.watermarks.submit((topic.to_string(), partitions)).await.unwrap_or_else(|| Err(shut_down("ListOffsets")))
    }

    /// Where a reset puts each partition of `topic`: its first offset, its high watermark,
    /// or the first offset at or after a time (the high watermark when there is none).
    async fn reset_targets(
        &self,
        topic: &str,
        partitions: i32,
        to: Position,
    ) -> Result<BTreeMap<i32, i64>, KafkaCallError> {
        let ends = self.watermarks(topic, partitions).await?;
        let ps: Vec<(String, i32)> = (0..partitions).map(|p| (topic.to_string(), p)).collect();
        let at_time = match to {
            Position::Time(ms) => {
                let leaders = calls::leaders(&calls::metadata(&self.wire, Some(&[topic.to_string()])).await?);
                Some(calls::list_offsets(&self.wire, &leaders, &ps, ms).await?)
            }
            Position::Earliest | Position::Latest => None,
        };
        let mut targets = BTreeMap::new();
        for (p, (low, high)) in (0..).zip(ends) {
            let target = match (&at_time, to) {
                (_, Position::Earliest) => low,
                (Some(found), _) => match found.get(&(topic.to_string(), p)).cloned() {
                    Some(Ok(offset)) if offset >= 0 => offset,
                    Some(Err(e)) => return Err(e),
                    _ => high,
                },
                _ => high,
            };
            targets.insert(p, target);
        }
        Ok(targets)
    }
}

/// A cluster-wide read shared by the requests waiting at once (see [`Batcher::shared`]).
fn shared<T, F, Fut>(wire: &Arc<Wire>, read: F) -> Batcher<(), Result<Arc<T>, KafkaCallError>>
where
    T: Send + Sync + 'static,
    F: Fn(Arc<Wire>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, KafkaCallError>> + Send + 'static,
{
    let wire = wire.clone();
    Batcher::shared(move || {
        let (wire, read) = (wire.clone(), read.clone());
        async move { read(wire).await.map(Arc::new) }
    })
}

/// Topics per batched CreateTopics / DescribeConfigs request.
const BATCH: usize = 100;

impl KafkaAdmin for KafkaClient {
    fn topics_with_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, KafkaCallError>> {
        Box::pin(async move {
            let names = self.topic_names.submit(()).await.unwrap_or_else(|| Err(shut_down("Metadata")))?;
            Ok(names.iter().filter(|n| n.starts_with(prefix)).cloned().collect())
        })
    }

    fn groups_with_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, KafkaCallError>> {
        Box::pin(async move {
            let names = self.group_names.submit(()).await.unwrap_or_else(|| Err(shut_down("ListGroups")))?;
            Ok(names.iter().filter(|n| n.starts_with(prefix)).cloned().collect())
        })
    }

    fn describe_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<TopicView, KafkaCallError>> {
        Box::pin(async move {
            let Some(shape) = self.shape(name).await? else {
                return Ok(TopicView { topic: None, brokers: Some(self.live_brokers().await?) });
            };
            let partitions = shape.partitions.len() as i32;
            let replication_factor = shape.partitions.iter().map(|(replicas, _)| *replicas as i32).max().unwrap_or(0);
            let under_replicated = shape.partitions.iter().filter(|(replicas, isr)| isr < replicas).count() as i32;
            let config = self.describe_config(name).await?;
            let brokers = if under_replicated > 0 { Some(self.live_brokers().await?) } else { None };
            let topic = ObservedTopic { partitions, replication_factor, under_replicated, config };
            Ok(TopicView { topic: Some(topic), brokers })
        })
    }

    fn live_brokers(&self) -> BoxFuture<'_, Result<i32, KafkaCallError>> {
        Box::pin(async move {
            let metadata = calls::metadata(&self.wire, Some(&[])).await?;
            Ok(i32::try_from(metadata.brokers.len()).unwrap_or(i32::MAX))
        })
    }

    fn log_dirs(&self) -> BoxFuture<'_, Result<super::log_dirs::LogDirs, KafkaCallError>> {
        Box::pin(super::log_dirs::log_dirs(&self.wire))
    }

    fn alter_topic_config<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<(String, ConfigOp)>,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            if changes.is_empty() {
                return Ok(());
            }
            self.metrics.external_write("kafka", "IncrementalAlterConfigs");
            calls::alter_topic_config(&self.wire, name, &changes).await
        })
    }

    fn topic_progress<'a>(
        &'a self,
        topic: &'a str,
        group: Option<&'a str>,
    ) -> BoxFuture<'a, Result<TopicProgress, KafkaCallError>> {
        Box::pin(async move {
            let partitions = self.partitions(topic).await?;
            let committed = match group {
                Some(group) => calls::committed_offsets(&self.wire, group, topic, partitions).await?,
                None => Default::default(),
            };
            let offsets = self.watermarks(topic, partitions).await?;
            let mut progress = TopicProgress::default();
            for (p, (low, high)) in (0..).zip(offsets) {
                progress.records += high - low;
                progress.end = progress.end.max(high);
                let at = committed.get(&p).copied().unwrap_or(low);
                progress.lag += (high - at).max(0);
            }
            Ok(progress)
        })
    }

    fn topic_id<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, KafkaCallError>> {
        Box::pin(async move { Ok(self.shape(name).await?.and_then(|shape| shape.id)) })
    }

    fn committed_offsets<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<i32, i64>, KafkaCallError>> {
        Box::pin(async move {
            let partitions = self.partitions(topic).await?;
            calls::committed_offsets(&self.wire, group, topic, partitions).await
        })
    }

    fn reset_offsets<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        to: Position,
    ) -> BoxFuture<'a, Result<BTreeMap<i32, i64>, KafkaCallError>> {
        Box::pin(async move {
            let partitions = self.partitions(topic).await?;
            if partitions == 0 {
                return Err(KafkaCallError {
                    call: "OffsetCommit",
                    message: format!("topic {topic} has no partitions in Kafka's metadata (yet)"),
                    transient: true,
                    answered: true,
                });
            }
            let targets = self.reset_targets(topic, partitions, to).await?;
            self.metrics.external_write("kafka", "OffsetCommit");
            calls::commit_offsets(&self.wire, group, topic, &targets).await?;
            Ok(targets)
        })
    }

    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            self.metrics.external_write("kafka", "DeleteTopics");
            calls::delete_topic(&self.wire, name).await
        })
    }

    fn delete_groups<'a>(&'a self, names: &'a [String]) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            if names.is_empty() {
                return Ok(());
            }
            self.metrics.external_write("kafka", "DeleteGroups");
            calls::delete_groups(&self.wire, names).await
        })
    }

    fn create_topic<'a>(&'a self, topic: &'a DesiredTopic) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(
            async move { self.creates.submit(topic.clone()).await.unwrap_or_else(|| Err(shut_down("CreateTopics"))) },
        )
    }

    fn create_partitions<'a>(&'a self, name: &'a str, total: i32) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            self.metrics.external_write("kafka", "CreatePartitions");
            calls::create_partitions(&self.wire, name, total).await
        })
    }
}

/// Principals, credentials and ACLs: the calls the tenant and sink users need.
pub trait KafkaSecurity: Send + Sync {
    /// Creates or updates `user`'s SCRAM-SHA-512 credential.
    fn upsert_scram_user<'a>(
        &'a self,
        user: &'a str,
        mechanism: ScramMechanism,
        password: &'a str,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>>;
    /// Removes `user`'s credential of `mechanism`; one that does not exist is not an error.
    fn delete_scram_credential<'a>(
        &'a self,
        user: &'a str,
        mechanism: ScramMechanism,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>>;
    /// Removes every SCRAM credential of `user`; a user that does not exist is not an error.
    fn delete_scram_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            for mechanism in self.scram_mechanisms(user).await? {
                self.delete_scram_credential(user, mechanism).await?;
            }
            Ok(())
        })
    }
    fn describe_acls<'a>(&'a self, principal: &'a str) -> BoxFuture<'a, Result<Vec<AclBinding>, KafkaCallError>>;
    fn create_acls(&self, acls: Vec<AclBinding>) -> BoxFuture<'_, Result<(), KafkaCallError>>;
    fn delete_acls(&self, acls: Vec<AclBinding>) -> BoxFuture<'_, Result<(), KafkaCallError>>;
    /// Every user with a SCRAM credential.
    fn scram_users(&self) -> BoxFuture<'_, Result<BTreeSet<String>, KafkaCallError>>;
    /// The mechanisms `user` has a SCRAM credential for (empty: no such user).
    fn scram_mechanisms<'a>(&'a self, user: &'a str)
    -> BoxFuture<'a, Result<BTreeSet<ScramMechanism>, KafkaCallError>>;
    /// The client quotas set on exactly this user.
    fn describe_user_quotas<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Quotas, KafkaCallError>>;
    /// Sets `set` and removes `remove` on the user's client quotas.
    fn alter_user_quotas<'a>(
        &'a self,
        user: &'a str,
        set: &'a Quotas,
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), KafkaCallError>>;
}

impl KafkaSecurity for KafkaClient {
    fn scram_users(&self) -> BoxFuture<'_, Result<BTreeSet<String>, KafkaCallError>> {
        Box::pin(async move {
            let users = self.scram_users.submit(()).await;
            users.unwrap_or_else(|| Err(shut_down("DescribeUserScramCredentials"))).map(Arc::unwrap_or_clone)
        })
    }

    fn scram_mechanisms<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<ScramMechanism>, KafkaCallError>> {
        Box::pin(async move {
            Ok(access_calls::describe_scram(&self.wire, Some(&[user])).await?.remove(user).unwrap_or_default())
        })
    }

    fn upsert_scram_user<'a>(
        &'a self,
        user: &'a str,
        mechanism: ScramMechanism,
        password: &'a str,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        let change = ScramChange::Upsert {
            user: user.to_string(),
            mechanism,
            iterations: DEFAULT_SCRAM_ITERATIONS,
            password: password.to_string(),
        };
        Box::pin(async move {
            self.metrics.external_write("kafka", "AlterUserScramCredentials");
            access_calls::alter_scram(&self.wire, &change).await
        })
    }

    fn delete_scram_credential<'a>(
        &'a self,
        user: &'a str,
        mechanism: ScramMechanism,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        let change = ScramChange::Delete { user: user.to_string(), mechanism };
        Box::pin(async move {
            self.metrics.external_write("kafka", "AlterUserScramCredentials");
            access_calls::alter_scram(&self.wire, &change).await
        })
    }

    fn describe_acls<'a>(&'a self, principal: &'a str) -> BoxFuture<'a, Result<Vec<AclBinding>, KafkaCallError>> {
        Box::pin(
            async move { access_calls::describe_acls(&self.wire, &AclBindingFilter::for_principal(principal)).await },
        )
    }

    fn create_acls(&self, acls: Vec<AclBinding>) -> BoxFuture<'_, Result<(), KafkaCallError>> {
        Box::pin(async move {
            if acls.is_empty() {
                return Ok(());
            }
            self.metrics.external_write("kafka", "CreateAcls");
            access_calls::create_acls(&self.wire, &acls).await
        })
    }

    fn delete_acls(&self, acls: Vec<AclBinding>) -> BoxFuture<'_, Result<(), KafkaCallError>> {
        Box::pin(async move {
            if acls.is_empty() {
                return Ok(());
            }
            self.metrics.external_write("kafka", "DeleteAcls");
            access_calls::delete_acls(&self.wire, &acls).await
        })
    }

    fn describe_user_quotas<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Quotas, KafkaCallError>> {
        Box::pin(async move { access_calls::describe_user_quotas(&self.wire, user).await })
    }

    fn alter_user_quotas<'a>(
        &'a self,
        user: &'a str,
        set: &'a Quotas,
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            if set.is_empty() && remove.is_empty() {
                return Ok(());
            }
            self.metrics.external_write("kafka", "AlterClientQuotas");
            access_calls::alter_user_quotas(&self.wire, user, set, remove).await
        })
    }
}

/// Everything the controllers ask of Kafka.
pub trait KafkaPlatform: KafkaAdmin + KafkaSecurity {}
impl<T: KafkaAdmin + KafkaSecurity> KafkaPlatform for T {}
