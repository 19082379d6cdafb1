//! Topic admin calls behind the [`KafkaAdmin`] trait, so reconcile flows can be tested
//! without brokers; [`RdKafkaAdmin`] is the real implementation on one shared admin client.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::ClientSettings;
use super::acl::{AclBinding, AclBindingFilter, ConfigOp, DEFAULT_SCRAM_ITERATIONS, ScramChange, ScramMechanism};
use super::admin_ext::{AdminExt, TopicShape};
use super::batch::Batcher;
use super::batched::{Watermarks, create_topics, describe_configs, describe_topics, list_watermarks};
use super::client::CreateClient;
use super::error::{
    KafkaCallError, call_error, code_error, ext_error, group_error, item_failure, partitions_error, quota_error,
};
use super::quotas::{QuotaClient, Quotas};
use crate::api::Position;
use crate::metrics::Metrics;
use crate::topic::model::{DesiredTopic, LiveConfig, ObservedTopic, TopicProgress, TopicView};

pub trait KafkaAdmin: Send + Sync {
    /// The topic's partitions, replicas and config, and how many brokers are alive.
    fn describe_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<TopicView, KafkaCallError>>;
    /// How many brokers the cluster reports alive.
    fn live_brokers(&self) -> BoxFuture<'_, Result<i32, KafkaCallError>>;
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

/// [`KafkaAdmin`] on one long-lived rdkafka admin client, shared by every reconcile.
pub struct RdKafkaAdmin {
    admin: Arc<AdminClient<DefaultClientContext>>,
    /// CreateTopics and DescribeConfigs of concurrent reconciles, one request to Kafka each.
    creates: Batcher<DesiredTopic, Result<(), KafkaCallError>>,
    describes: Batcher<String, Result<BTreeMap<String, LiveConfig>, KafkaCallError>>,
    /// DescribeTopics of concurrent reconciles, one request to Kafka each.
    shapes: Batcher<String, Result<Option<TopicShape>, KafkaCallError>>,
    /// Each partition's first offset and high watermark for a topic with that many
    /// partitions (ListOffsets), batched the same way.
    watermarks: Batcher<(String, i32), Watermarks>,
    /// Every topic's name, every consumer group's, every SCRAM user's: cluster-wide reads
    /// that concurrent reconciles share (new Tenants check their names against them).
    topic_names: Batcher<(), Result<Arc<Vec<String>>, KafkaCallError>>,
    group_names: Batcher<(), Result<Arc<Vec<String>>, KafkaCallError>>,
    scram_users: Batcher<(), Result<Arc<BTreeSet<String>>, KafkaCallError>>,
    settings: ClientSettings,
    ext: AdminExt,
    quotas: Arc<QuotaClient>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

/// How often the admin client asks which broker is controller. librdkafka sends admin requests
/// to the one last named and waits while it is down; holding no topic objects, the client
/// learns of another only from this refresh (default 5 min: topic_kafka_degraded timed out).
const METADATA_REFRESH: Duration = Duration::from_secs(10);

impl RdKafkaAdmin {
    /// Needs a tokio runtime (the call batchers run on it).
    pub fn new(settings: &ClientSettings, timeout: Duration, metrics: Arc<Metrics>) -> Result<Self, KafkaError> {
        let admin: AdminClient<DefaultClientContext> = settings
            .client_config()
            .set("client.id", "tributary-operator")
            .set("socket.timeout.ms", timeout.as_millis().to_string())
            .set("topic.metadata.refresh.interval.ms", METADATA_REFRESH.as_millis().to_string())
            .create_client()?;
        let admin = Arc::new(admin);
        let ext = AdminExt::new(admin.clone(), timeout);
        let quotas = Arc::new(QuotaClient::new(settings.clone(), timeout));
        let creates = {
            let (admin, metrics) = (admin.clone(), metrics.clone());
            Batcher::spawn(BATCH, move |topics| create_topics(admin.clone(), options(timeout), metrics.clone(), topics))
        };
        let describes = {
            let admin = admin.clone();
            Batcher::spawn(BATCH, move |names| describe_configs(admin.clone(), options(timeout), names))
        };
        let shapes = {
            let ext = ext.clone();
            Batcher::spawn(BATCH, move |names| describe_topics(ext.clone(), names))
        };
        let watermarks = {
            let ext = ext.clone();
            Batcher::spawn(BATCH, move |topics| list_watermarks(ext.clone(), topics))
        };
        // Both read on the blocking thread: the answers are librdkafka memory that may not
        // cross threads, so only the names leave it.
        let topic_names = shared_names(&admin, "Metadata", move |client| {
            let metadata = client.fetch_metadata(None, timeout)?;
            Ok(metadata.topics().iter().map(|t| t.name().to_string()).collect())
        });
        let group_names = shared_names(&admin, "ListGroups", move |client| {
            let list = client.fetch_group_list(None, timeout)?;
            Ok(list.groups().iter().map(|g| g.name().to_string()).collect())
        });
        let scram_users = {
            let quotas = quotas.clone();
            Batcher::shared(move || {
                let quotas = quotas.clone();
                async move {
                    let users =
                        quotas.scram_users().await.map_err(|e| quota_error("DescribeUserScramCredentials", e))?;
                    Ok(Arc::new(users))
                }
            })
        };
        Ok(RdKafkaAdmin {
            admin,
            creates,
            describes,
            shapes,
            watermarks,
            topic_names,
            group_names,
            scram_users,
            settings: settings.clone(),
            ext,
            quotas,
            timeout,
            metrics,
        })
    }

    pub fn client(&self) -> Arc<AdminClient<DefaultClientContext>> {
        self.admin.clone()
    }

    /// One SCRAM change; deleting a credential that does not exist counts as done.
    async fn alter_scram(&self, change: ScramChange) -> Result<(), KafkaCallError> {
        const CALL: &str = "AlterUserScramCredentials";
        self.metrics.external_write("kafka", CALL);
        let deleting = matches!(change, ScramChange::Delete { .. });
        let results = self.ext.alter_scram_credentials(vec![change]).await.map_err(|e| ext_error(CALL, e))?;
        for (name, result) in results {
            match result {
                Err(e) if !(deleting && e.code == RDKafkaErrorCode::ResourceNotFound) => {
                    return Err(item_failure(CALL, &name, e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The offsets `group` committed on `topic`'s `partitions`, on the protocol client's
    /// long-lived connections.
    async fn committed(&self, group: &str, topic: &str, partitions: i32) -> Result<BTreeMap<i32, i64>, KafkaCallError> {
        self.quotas.committed_offsets(group, topic, partitions).await.map_err(|e| quota_error("OffsetFetch", e))
    }

    /// One topic's partitions and id (DescribeTopics, batched with concurrent reconciles').
    async fn shape(&self, name: &str) -> Result<Option<TopicShape>, KafkaCallError> {
        self.shapes.submit(name.to_string()).await.unwrap_or_else(|| Err(shut_down("DescribeTopics")))
    }

    /// How many partitions the topic has (0 when Kafka does not know it).
    async fn partitions(&self, name: &str) -> Result<i32, KafkaCallError> {
        Ok(self.shape(name).await?.map_or(0, |shape| i32::try_from(shape.partitions.len()).unwrap_or(i32::MAX)))
    }

    /// Every config entry of one topic (DescribeConfigs, batched with concurrent reconciles').
    async fn describe_config(&self, name: &str) -> Result<BTreeMap<String, LiveConfig>, KafkaCallError> {
        self.describes.submit(name.to_string()).await.unwrap_or_else(|| Err(shut_down("DescribeConfigs")))
    }

    fn options(&self) -> AdminOptions {
        options(self.timeout)
    }
}

fn options(timeout: Duration) -> AdminOptions {
    AdminOptions::new().request_timeout(Some(timeout)).operation_timeout(Some(timeout))
}

/// A cluster-wide list of names from one of librdkafka's blocking calls, shared by the
/// requests waiting at once (see [`Batcher::shared`]).
fn shared_names(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    call: &'static str,
    read: impl Fn(&rdkafka::client::Client<DefaultClientContext>) -> Result<Vec<String>, KafkaError>
    + Clone
    + Send
    + Sync
    + 'static,
) -> Batcher<(), Result<Arc<Vec<String>>, KafkaCallError>> {
    let admin = admin.clone();
    Batcher::shared(move || {
        let (admin, read) = (admin.clone(), read.clone());
        blocking(call, move || read(admin.inner()).map(Arc::new).map_err(|e| call_error(call, &e)))
    })
}

/// Topics per batched CreateTopics / DescribeConfigs request.
const BATCH: usize = 100;

/// Runs librdkafka's blocking calls off the async threads.
async fn blocking<T: Send + 'static>(
    call: &'static str,
    f: impl FnOnce() -> Result<T, KafkaCallError> + Send + 'static,
) -> Result<T, KafkaCallError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| KafkaCallError {
        call,
        message: e.to_string(),
        transient: true,
        answered: false,
    })?
}

fn shut_down(call: &'static str) -> KafkaCallError {
    KafkaCallError { call, message: "the operator is shutting down".into(), transient: true, answered: false }
}

impl KafkaAdmin for RdKafkaAdmin {
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
            let brokers = self.ext.live_brokers().await.map_err(|e| ext_error("DescribeCluster", e))?;
            Ok(brokers as i32)
        })
    }

    fn alter_topic_config<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<(String, ConfigOp)>,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            const CALL: &str = "IncrementalAlterConfigs";
            if changes.is_empty() {
                return Ok(());
            }
            self.metrics.external_write("kafka", CALL);
            self.ext
                .incremental_alter_topic_config(name, changes)
                .await
                .map_err(|e| ext_error(CALL, e))?
                .map_err(|e| item_failure(CALL, &format!("topic {name}"), e))
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
                Some(group) => self.committed(group, topic, partitions).await?,
                None => Default::default(),
            };
            let offsets = self
                .watermarks
                .submit((topic.to_string(), partitions))
                .await
                .unwrap_or_else(|| Err(shut_down("ListOffsets")))?;
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
            self.committed(group, topic, partitions).await
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
            let (settings, timeout) = (self.settings.clone(), self.timeout);
            let (group, topic) = (group.to_string(), topic.to_string());
            self.metrics.external_write("kafka", "OffsetCommit");
            blocking("OffsetCommit", move || {
                super::client::commit_offsets(&settings, &group, &topic, partitions, to, timeout)
            })
            .await
        })
    }

    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            self.metrics.external_write("kafka", "DeleteTopics");
            let results =
                self.admin.delete_topics(&[name], &self.options()).await.map_err(|e| call_error("DeleteTopics", &e))?;
            for result in results {
                match result {
                    Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                    Err((name, code)) => return Err(code_error("DeleteTopics", &name, code)),
                }
            }
            Ok(())
        })
    }

    fn delete_groups<'a>(&'a self, names: &'a [String]) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(async move {
            const CALL: &str = "DeleteGroups";
            if names.is_empty() {
                return Ok(());
            }
            self.metrics.external_write("kafka", CALL);
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let results = self.admin.delete_groups(&names, &self.options()).await.map_err(|e| call_error(CALL, &e))?;
            for result in results {
                match result {
                    Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
                    Err((group, code)) => return Err(group_error(CALL, &group, code)),
                }
            }
            Ok(())
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
            let partitions = NewPartitions::new(name, total as usize);
            let results = self
                .admin
                .create_partitions([&partitions], &self.options())
                .await
                .map_err(|e| call_error("CreatePartitions", &e))?;
            for result in results {
                result.map_err(|(name, code)| partitions_error(&name, code))?;
            }
            Ok(())
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

impl KafkaSecurity for RdKafkaAdmin {
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
            self.quotas.scram_mechanisms(user).await.map_err(|e| quota_error("DescribeUserScramCredentials", e))
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
        Box::pin(self.alter_scram(change))
    }

    fn delete_scram_credential<'a>(
        &'a self,
        user: &'a str,
        mechanism: ScramMechanism,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        Box::pin(self.alter_scram(ScramChange::Delete { user: user.to_string(), mechanism }))
    }

    fn describe_acls<'a>(&'a self, principal: &'a str) -> BoxFuture<'a, Result<Vec<AclBinding>, KafkaCallError>> {
        Box::pin(async move {
            self.ext
                .describe_acls(AclBindingFilter::for_principal(principal))
                .await
                .map_err(|e| ext_error("DescribeAcls", e))
        })
    }

    fn create_acls(&self, acls: Vec<AclBinding>) -> BoxFuture<'_, Result<(), KafkaCallError>> {
        Box::pin(async move {
            if acls.is_empty() {
                return Ok(());
            }
            self.metrics.external_write("kafka", "CreateAcls");
            let results = self.ext.create_acls(acls.clone()).await.map_err(|e| ext_error("CreateAcls", e))?;
            for (acl, result) in acls.iter().zip(results) {
                result.map_err(|e| item_failure("CreateAcls", &format!("{acl:?}"), e))?;
            }
            Ok(())
        })
    }

    fn describe_user_quotas<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Quotas, KafkaCallError>> {
        Box::pin(
            async move { self.quotas.describe_user(user).await.map_err(|e| quota_error("DescribeClientQuotas", e)) },
        )
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
            self.quotas.alter_user(user, set, remove).await.map_err(|e| quota_error("AlterClientQuotas", e))
        })
    }

    fn delete_acls(&self, acls: Vec<AclBinding>) -> BoxFuture<'_, Result<(), KafkaCallError>> {
        Box::pin(async move {
            if acls.is_empty() {
                return Ok(());
            }
            self.metrics.external_write("kafka", "DeleteAcls");
            let filters = acls.iter().map(AclBindingFilter::exact).collect();
            let results = self.ext.delete_acls(filters).await.map_err(|e| ext_error("DeleteAcls", e))?;
            for (acl, result) in acls.iter().zip(results) {
                result.map_err(|e| item_failure("DeleteAcls", &format!("{acl:?}"), e))?;
            }
            Ok(())
        })
    }
}

/// Everything the controllers ask of Kafka.
pub trait KafkaPlatform: KafkaAdmin + KafkaSecurity {}
impl<T: KafkaAdmin + KafkaSecurity> KafkaPlatform for T {}
