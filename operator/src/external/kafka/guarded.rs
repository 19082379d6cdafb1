//! [`Guarded`]: any [`KafkaPlatform`] behind the circuit breaker, so that while Kafka is
//! unreachable a reconcile fails at once instead of waiting out every call's timeout.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;

use super::error::KafkaCallError;
use super::topics::{KafkaAdmin, KafkaSecurity};
use crate::access::kafka::{AclBinding, ConfigOp, ScramMechanism};
use crate::access::quotas::Quotas;
use crate::api::Position;
use crate::external::Breaker;
use crate::topic::model::{DesiredTopic, TopicProgress, TopicView};

/// Any [`KafkaPlatform`] behind a [`Breaker`]: while Kafka is unreachable, calls fail at
/// once with the last error instead of each waiting out its timeout.
pub struct Guarded<K> {
    inner: K,
    breaker: Breaker,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl<K: Sync> Guarded<K> {
    pub fn new(inner: K, breaker: Breaker, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        Guarded { inner, breaker, metrics }
    }

    fn guard<'a, T: Send + 'a>(
        &'a self,
        call: &'static str,
        call_future: BoxFuture<'a, Result<T, KafkaCallError>>,
    ) -> BoxFuture<'a, Result<T, KafkaCallError>> {
        Box::pin(async move {
            let admission = match self.breaker.admit() {
                Ok(admission) => admission,
                Err(last) => {
                    let message = format!("Kafka is unreachable (last error: {last})");
                    return Err(KafkaCallError { call, message, transient: true, answered: false });
                }
            };
            let started = std::time::Instant::now();
            let result = call_future.await;
            self.metrics.external_call("kafka", call, started.elapsed().as_secs_f64());
            admission.record(match &result {
                Err(e) if e.transient && !e.answered => Some(e.to_string()),
                _ => None,
            });
            result
        })
    }
}

impl<K: KafkaAdmin + Sync> KafkaAdmin for Guarded<K> {
    fn topics_with_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, KafkaCallError>> {
        self.guard("Metadata", self.inner.topics_with_prefix(prefix))
    }
    fn groups_with_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, KafkaCallError>> {
        self.guard("ListGroups", self.inner.groups_with_prefix(prefix))
    }
    fn delete_groups<'a>(&'a self, names: &'a [String]) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.guard("DeleteGroups", self.inner.delete_groups(names))
    }
    fn describe_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<TopicView, KafkaCallError>> {
        self.guard("DescribeTopics", self.inner.describe_topic(name))
    }
    fn live_brokers(&self) -> BoxFuture<'_, Result<i32, KafkaCallError>> {
        self.guard("DescribeCluster", self.inner.live_brokers())
    }
    fn log_dirs(&self) -> BoxFuture<'_, Result<super::log_dirs::LogDirs, KafkaCallError>> {
        self.guard("DescribeLogDirs", self.inner.log_dirs())
    }
    fn create_topic<'a>(&'a self, topic: &'a DesiredTopic) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.guard("CreateTopics", self.inner.create_topic(topic))
    }
    fn create_partitions<'a>(&'a self, name: &'a str, total: i32) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.guard("CreatePartitions", self.inner.create_partitions(name, total))
    }
    fn alter_topic_config<'a>(
        &'a self,
        name: &'a str,
        changes: Vec<(String, ConfigOp)>,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.guard("IncrementalAlterConfigs", self.inner.alter_topic_config(name, changes))
    }
    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.guard("DeleteTopics", self.inner.delete_topic(name))
    }
    fn topic_progress<'a>(
        &'a self,
        topic: &'a str,
        group: Option<&'a str>,
    ) -> BoxFuture<'a, Result<TopicProgress, KafkaCallError>> {
        self.guard("ListOffsets", self.inner.topic_progress(topic, group))
    }
    fn topic_id<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, KafkaCallError>> {
        self.guard("DescribeTopics", self.inner.topic_id(name))
    }
    fn committed_offsets<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<i32, i64>, KafkaCallError>> {
        self.guard("OffsetFetch", self.inner.committed_offsets(group, topic))
    }
    fn reset_offsets<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        to: Position,
    ) -> BoxFuture<'a, Result<BTreeMap<i32, i64>, KafkaCallError>> {
        self.guard("OffsetCommit", self.inner.reset_offsets(group, topic, to))
    }
}

impl<K: KafkaSecurity + Sync> KafkaSecurity for Guarded<K> {
    fn scram_users(&self) -> BoxFuture<'_, Result<BTreeSet<String>, KafkaCallError>> {
        self.guard("DescribeUserScramCredentials", self.inner.scram_users())
    }
    fn scram_mechanisms<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<ScramMechanism>, KafkaCallError>> {
        self.guard("DescribeUserScramCredentials", self.inner.scram_mechanisms(user))
    }
    fn upsert_scram_user<'a>(
        &'a self,
        user: &'a str,
        mechanism: ScramMechanism,
        password: &'a str,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.guard("AlterUserScramCredentials", self.inner.upsert_scram_user(user, mechanism, password))
    }
    fn delete_scram_credential<'a>(
        &'a self,
        user: &'a str,
        mechanism: ScramMechanism,
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.guard("AlterUserScramCredentials", self.inner.delete_scram_credential(user, mechanism))
    }
    fn describe_acls<'a>(&'a self, principal: &'a str) -> BoxFuture<'a, Result<Vec<AclBinding>, KafkaCallError>> {
        self.guard("DescribeAcls", self.inner.describe_acls(principal))
    }
    fn create_acls(&self, acls: Vec<AclBinding>) -> BoxFuture<'_, Result<(), KafkaCallError>> {
        self.guard("CreateAcls", self.inner.create_acls(acls))
    }
    fn delete_acls(&self, acls: Vec<AclBinding>) -> BoxFuture<'_, Result<(), KafkaCallError>> {
        self.guard("DeleteAcls", self.inner.delete_acls(acls))
    }
    fn describe_user_quotas<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Quotas, KafkaCallError>> {
        self.guard("DescribeClientQuotas", self.inner.describe_user_quotas(user))
    }
    fn alter_user_quotas<'a>(
        &'a self,
        user: &'a str,
        set: &'a Quotas,
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), KafkaCallError>> {
        self.guard("AlterClientQuotas", self.inner.alter_user_quotas(user, set, remove))
    }
}
