//! Topic reconcile: resolve the tenant, validate, plan against Kafka, apply, status.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::build::{Plan, plan};
use super::validate::{Siblings, kafka_name, validate};
use crate::api::conditions::{self, ConditionStatus, DesiredCondition};
use crate::api::{Tenant, Topic, TopicStatus};
use crate::controller::{Context, Error, Result, error_policy, object_key, patch_status};
use crate::external::kafka::{KafkaCallError, ObservedTopic};
use crate::tenancy::{Tenancy, resolve};

const KIND: &str = "Topic";
/// A Topic waiting for its Tenant looks again this often (Tenants send no event to Topics).
const NO_TENANT_RETRY: Duration = Duration::from_secs(15);

/// The shared context plus the controller's own cache of every Topic, which the guardrails
/// count from instead of listing the namespace on each reconcile.
struct TopicContext {
    ctx: Arc<Context>,
    topics: Store<Topic>,
}

pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let controller = Controller::new(Api::<Topic>::all(ctx.client.clone()), watcher::Config::default());
    // A Tenant appearing or changing (prefix, limits) re-checks the Topics in its namespace.
    let topics = controller.store();
    let topic_ctx = Arc::new(TopicContext { ctx: ctx.clone(), topics: topics.clone() });
    let topics_of_tenant = move |tenant: Tenant| {
        let namespace = crate::tenant::validate(&tenant).map(|v| v.namespace).ok();
        topics
            .state()
            .into_iter()
            .filter(|t| namespace.is_some() && t.namespace() == namespace)
            .map(|t| ObjectRef::from_obj(t.as_ref()))
            .collect::<Vec<_>>()
    };
    controller
        .watches(Api::<Tenant>::all(ctx.client.clone()), watcher::Config::default(), topics_of_tenant)
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, |obj, err, tctx| error_policy(KIND, obj.as_ref(), err, &tctx.ctx), topic_ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

struct Outcome {
    ready: DesiredCondition,
    tenant: Option<String>,
    kafka_name: Option<String>,
    observed: Option<ObservedTopic>,
}

async fn reconcile(topic: Arc<Topic>, tctx: Arc<TopicContext>) -> Result<Action> {
    let ctx = &tctx.ctx;
    let _timer = ctx.metrics.reconcile(KIND);
    let namespace = topic.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let api: Api<Topic> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = object_key(topic.as_ref());

    let (outcome, action, failure) = match resolve(&ctx.client, &namespace).await? {
        Tenancy::None(message) => (
            Outcome {
                ready: DesiredCondition::not_ready("NoTenant", message),
                tenant: None,
                kafka_name: None,
                observed: None,
            },
            Action::requeue(NO_TENANT_RETRY),
            None,
        ),
        Tenancy::Tenant(_, tenant) => {
            let siblings = siblings(&tctx.topics, &topic);
            let name = kafka_name(&topic, &tenant);
            // status.kafkaName names the topic once the operator manages it (created or
            // adopted); until then a topic found in Kafka is someone else's.
            let managed = topic.status.as_ref().and_then(|s| s.kafka_name.clone());
            let with = |ready, observed, kafka_name| Outcome {
                ready,
                tenant: Some(tenant.name.clone()),
                kafka_name,
                observed,
            };
            match validate(&topic, &tenant, &siblings) {
                Err(refusal) => (
                    with(DesiredCondition::not_ready(refusal.reason, refusal.message), None, managed),
                    Action::await_change(),
                    None,
                ),
                Ok(desired) => match converge(ctx, &topic, &desired).await {
                    Ok((ready, observed)) => {
                        let kafka_name =
                            if ready.status == ConditionStatus::True { Some(name.clone()) } else { managed };
                        (with(ready, observed, kafka_name), ctx.resync(), None)
                    }
                    Err(e) => {
                        let observed = topic.status.as_ref().and_then(|s| {
                            Some(ObservedTopic { partitions: s.partitions?, replication_factor: s.replication_factor? })
                        });
                        let (ready, action, failure) = kafka_failure(&e);
                        (with(ready, observed, managed), action, failure)
                    }
                },
            }
        }
    };

    let old = topic.status.as_ref();
    let status = TopicStatus {
        observed_generation: topic.metadata.generation,
        conditions: conditions::merge(
            old.map(|s| s.conditions.as_slice()).unwrap_or_default(),
            std::slice::from_ref(&outcome.ready),
            topic.metadata.generation,
            Timestamp::now(),
        ),
        kafka_name: outcome.kafka_name,
        tenant: outcome.tenant,
        partitions: outcome.observed.as_ref().map(|o| o.partitions),
        replication_factor: outcome.observed.as_ref().map(|o| o.replication_factor),
    };
    ctx.report_ready_change(
        topic.as_ref(),
        old.map(|s| s.conditions.as_slice()).unwrap_or_default(),
        &status.conditions,
    )
    .await;
    patch_status(&api, &topic, old, &status).await?;
    match failure {
        Some(e) => Err(e),
        None => {
            ctx.succeeded(&key);
            Ok(action)
        }
    }
}

/// Counts the tenant's other Topics and their partitions (from the controller's cache), for
/// the guardrails.
fn siblings(topics: &Store<Topic>, topic: &Topic) -> Siblings {
    let (mut count, mut partitions) = (0, 0);
    for t in topics.state() {
        let same_namespace = t.meta().namespace == topic.meta().namespace;
        if same_namespace && t.meta().uid != topic.meta().uid && t.meta().deletion_timestamp.is_none() {
            count += 1;
            partitions += t.spec.partitions;
        }
    }
    Siblings { topics: count, partitions }
}

/// A failed Kafka call: a transient one is reported and retried with backoff; one Kafka
/// refuses for good (an invalid config value, a policy) waits for a spec change instead of
/// being retried in a loop.
fn kafka_failure(e: &KafkaCallError) -> (DesiredCondition, Action, Option<Error>) {
    if e.transient {
        let message = format!("{e}; retrying. Check the brokers (make stack-status) and the operator's Kafka settings");
        (
            DesiredCondition::not_ready("KafkaUnavailable", message),
            Action::await_change(),
            Some(Error::Kafka(e.to_string())),
        )
    } else {
        let message = format!("{e}; change the Topic's spec");
        (DesiredCondition::not_ready("KafkaRejected", message), Action::await_change(), None)
    }
}

/// Brings Kafka to the desired topic, or explains why it will not.
async fn converge(
    ctx: &Context,
    topic: &Topic,
    desired: &crate::external::kafka::DesiredTopic,
) -> std::result::Result<(DesiredCondition, Option<ObservedTopic>), KafkaCallError> {
    let observed = ctx.kafka.describe_topic(&desired.name).await?;
    let adopting = topic.status.as_ref().and_then(|s| s.kafka_name.as_ref()).is_none();
    match plan(desired, observed.as_ref(), adopting) {
        Plan::Create if !adopting => {
            // The operator had this topic and it is gone: someone deleted it in Kafka.
            ctx.kafka.create_topic(desired).await?;
            let note = format!(
                "Kafka topic {} was deleted outside Kubernetes; recreated it empty (its records are gone)",
                desired.name
            );
            ctx.event(topic, true, "Recreated", note).await;
        }
        Plan::Create => {
            ctx.kafka.create_topic(desired).await?;
            ctx.event(topic, false, "Created", format!("created Kafka topic {}", desired.name)).await;
        }
        Plan::AddPartitions { from, to } => {
            ctx.kafka.create_partitions(&desired.name, to).await?;
            ctx.event(topic, false, "PartitionsIncreased", format!("{}: partitions {from} → {to}", desired.name)).await;
        }
        Plan::Nothing => {}
        Plan::Refuse { reason, message } => return Ok((DesiredCondition::not_ready(reason, message), observed)),
    }
    let now = ObservedTopic { partitions: desired.partitions, replication_factor: desired.replication_factor };
    let ready = DesiredCondition::ready(
        "Provisioned",
        format!("{}: {} partitions, replication factor {}", desired.name, now.partitions, now.replication_factor),
    );
    Ok((ready, Some(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_kafka_failures_back_off_and_permanent_ones_wait_for_a_change() {
        let down = KafkaCallError { call: "Metadata", message: "all brokers down".into(), transient: true };
        let (ready, _, failure) = kafka_failure(&down);
        assert_eq!(ready.reason, "KafkaUnavailable");
        assert!(matches!(failure, Some(Error::Kafka(_))), "a transient failure goes to the backoff policy");

        let refused = KafkaCallError { call: "CreateTopics", message: "InvalidConfig".into(), transient: false };
        let (ready, _, failure) = kafka_failure(&refused);
        assert_eq!(ready.reason, "KafkaRejected");
        assert!(ready.message.contains("change the Topic's spec"), "{}", ready.message);
        assert!(failure.is_none(), "a permanent failure is not retried");
    }
}
