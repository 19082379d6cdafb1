//! Topic reconcile: resolve the tenant, validate, plan against Kafka, apply, status.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::{Resource, ResourceExt};

use super::build::{self, Outcome, Plan, config_changes, plan};
use super::model::{DesiredTopic, ObservedTopic};
use super::validate::{Siblings, age, kafka_name, usage_before, validate};
use crate::api::Reason;
use crate::api::conditions::{ConditionStatus, DesiredCondition, READY, status_of};
use crate::api::{CassandraSink, DeletionPolicy, Topic};
use crate::controller::{Context, Error, Result, error_policy, finalized, object_key, spec_changes, tenant_changes};
use crate::external::kafka::KafkaCallError;
use crate::resync::Resyncs;
use crate::status::{self, refused_for_good};
use crate::tenancy::{Tenancy, resolve, resolve_for_cleanup};
use crate::tenant::ValidatedTenant;

const KIND: &str = "Topic";
/// A Topic waiting for its Tenant looks again this often (Tenants send no event to Topics).
const NO_TENANT_RETRY: Duration = Duration::from_secs(15);

pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let topics = ctx.watches.topics.watched.clone();
    let controller = Controller::for_shared_stream(spec_changes(&ctx.watches.topics), topics.store.clone());
    // A Tenant appearing, changing (prefix, limits) or provisioned re-checks the Topics in
    // its namespace.
    let topics_of_tenant = crate::controller::in_tenant_namespace(topics.clone(), ctx.tenancy.validations.clone());
    // A grant made, changed or deleted re-checks the Topics of its namespace (`sharedWith`).
    let of_grant = topics.clone();
    let topics_of_grant = move |grant: Arc<crate::api::TopicGrant>| {
        let namespace = grant.namespace().unwrap_or_default();
        let topics = of_grant.in_namespace(&namespace);
        topics.iter().map(|t| kube::runtime::reflector::ObjectRef::from_obj(t.as_ref())).collect::<Vec<_>>()
    };
    let grant_print = |g: &crate::api::TopicGrant| {
        let s = &g.spec;
        crate::controller::hash_of(&(&s.tenant, &s.topic, format!("{:?}{:?}", s.pattern_type, s.access)))
    };
    let resyncs = Resyncs::new(KIND, ctx.config.resync, ctx.config.concurrency, ctx.metrics.clone());
    controller
        .reconcile_on(resyncs.due(topics.store))
        .watches_shared_stream(tenant_changes(&ctx.watches.tenants), topics_of_tenant)
        .watches_shared_stream(ctx.watches.grants.changes_of(grant_print), topics_of_grant)
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(resyncs.around(reconcile), |obj, err, ctx| error_policy(KIND, obj.as_ref(), err, &ctx), ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// The tenants a TopicGrant of the Topic's namespace shares it with (from the watched copy).
fn shared_with(ctx: &Context, topic: &Topic, kafka_name: Option<&str>) -> Vec<String> {
    use crate::api::access::AclPatternType;
    let Some(name) = kafka_name else { return Vec::new() };
    let namespace = topic.namespace().unwrap_or_default();
    let mut shared: Vec<String> = ctx
        .watches
        .grants
        .watched
        .in_namespace(&namespace)
        .iter()
        .filter(|g| match g.spec.pattern_type {
            AclPatternType::Literal => g.spec.topic == name,
            AclPatternType::Prefixed => name.starts_with(&g.spec.topic),
        })
        .map(|g| format!("{} ({:?})", g.spec.tenant, g.spec.access))
        .collect();
    shared.sort();
    shared.dedup();
    shared
}

/// Finalizer that applies the Topic's `deletionPolicy` to its Kafka topic.
pub const FINALIZER: &str = "tributary.dev/topic-cleanup";

pub(crate) async fn reconcile(topic: Arc<Topic>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let namespace = topic.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let api: Api<Topic> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = object_key(topic.as_ref());
    let result = finalized(&api, FINALIZER, topic, |event| async {
        match event {
            FinalizerEvent::Apply(topic) => apply(topic, &ctx, &api).await,
            FinalizerEvent::Cleanup(topic) => {
                crate::status::forget(&ctx, topic.as_ref());
                cleanup(topic, &ctx, &namespace).await
            }
        }
    })
    .await;
    ctx.ended(&key, result)
}

async fn apply(topic: Arc<Topic>, ctx: &Context, api: &Api<Topic>) -> Result<Action> {
    let namespace = topic.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    // status.kafkaName names the topic once the operator manages it (created or adopted);
    // until then a topic found in Kafka is someone else's.
    let managed = topic.status.as_ref().and_then(|s| s.kafka_name.clone());
    if refused_for_good(topic.as_ref()) {
        return Ok(Action::await_change());
    }

    let (outcome, action, failure) = match resolve(&ctx.client, &ctx.tenancy, &namespace).await? {
        Tenancy::None(message) => (
            Outcome::new(DesiredCondition::not_ready(Reason::NoTenant, message)),
            Action::requeue(NO_TENANT_RETRY),
            None,
        ),
        Tenancy::Tenant(_, tenant) => {
            let name = kafka_name(&topic, &tenant);
            let base = Outcome {
                tenant: Some(tenant.name.clone()),
                kafka_name: managed.clone(),
                deletion_policy: Some(topic.spec.deletion_policy.unwrap_or(tenant.deletion_policy)),
                ..Outcome::new(DesiredCondition::not_ready(Reason::Pending, String::new()))
            };
            // The Topics of this namespace, from one scan of the cache's index.
            let neighbours = ctx.watches.topics.watched.in_namespace(&namespace);
            if let Some(holder) = holder_of(&neighbours, &topic, &name, &tenant) {
                let message = format!(
                    "Topic {}/{} already maps to Kafka topic {name}; this newer Topic changes nothing. Set spec.topicName to another name, or delete this Topic",
                    holder.namespace().unwrap_or_default(),
                    holder.name_any()
                );
                // The holder going away sends no event here: look again on the resync.
                (Outcome { ready: DesiredCondition::not_ready(Reason::Conflict, message), ..base }, ctx.resync(), None)
            } else {
                match validate(&topic, &tenant, &usage_in_namespace(ctx, &neighbours, topic.meta())) {
                    Err(refusal) => (
                        Outcome { ready: DesiredCondition::not_ready(refusal.reason, refusal.message), ..base },
                        Action::await_change(),
                        None,
                    ),
                    Ok(desired) => match converge(ctx, &topic, &desired).await {
                        Ok(done) => {
                            let ready_now = done.ready.status == ConditionStatus::True;
                            let outcome = Outcome {
                                kafka_name: if ready_now { Some(name.clone()) } else { managed },
                                ready: done.ready,
                                observed: done.observed,
                                reverted: done.reverted,
                                ..base
                            };
                            let failure = done.retry.then(|| Error::Kafka(outcome.ready.message.clone()));
                            (outcome, ctx.resync(), failure)
                        }
                        Err(e) => {
                            let observed = topic.status.as_ref().and_then(|s| {
                                Some(ObservedTopic {
                                    partitions: s.partitions?,
                                    replication_factor: s.replication_factor?,
                                    ..Default::default()
                                })
                            });
                            let (ready, action, failure) = kafka_failure(&e);
                            (Outcome { ready, observed, ..base }, action, failure)
                        }
                    },
                }
            }
        }
    };

    let mut status = build::status(topic.status.as_ref(), topic.metadata.generation, &outcome);
    status.shared_with = shared_with(ctx, &topic, status.kafka_name.as_deref());
    status::publish(ctx, api, topic.as_ref(), status, std::slice::from_ref(&outcome.ready)).await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(action),
    }
}

/// A deleted Topic: with `Delete` the Kafka topic and its records go; with `Retain` (the
/// default) they stay and only the object goes. A topic the operator never managed (a
/// conflict, a refusal) is never touched. The name comes from the spec and the tenant's
/// prefix, never from the status (whoever may write status could name another's topic).
/// How long a deleted Topic's cleanup retries a Kafka that does not answer.
pub const CLEANUP_BOUND: Duration = Duration::from_secs(120);

/// Whether the object has been being deleted for longer than [`CLEANUP_BOUND`].
fn past_cleanup_bound(topic: &Topic) -> bool {
    let Some(since) = topic.metadata.deletion_timestamp.as_ref() else { return false };
    let elapsed = k8s_openapi::jiff::Timestamp::now().duration_since(since.0);
    elapsed.as_secs() >= CLEANUP_BOUND.as_secs() as i64
}

async fn cleanup(topic: Arc<Topic>, ctx: &Context, namespace: &str) -> Result<Action> {
    if topic.status.as_ref().and_then(|s| s.kafka_name.as_ref()).is_none() {
        return Ok(Action::await_change());
    }
    let Tenancy::Tenant(_, tenant) = resolve_for_cleanup(&ctx.client, &ctx.tenancy, namespace).await? else {
        let note = "its Tenant is gone, so the Kafka topic is left to the Tenant's deletionPolicy".to_string();
        ctx.event(topic.as_ref(), false, "Retained", note).await;
        return Ok(Action::await_change());
    };
    let name = kafka_name(&topic, &tenant);
    let tenant_policy = Some(tenant.deletion_policy);
    match topic.spec.deletion_policy.or(tenant_policy).unwrap_or_default() {
        DeletionPolicy::Retain => {
            let note = format!("kept Kafka topic {name} and its records (deletionPolicy Retain)");
            ctx.event(topic.as_ref(), false, "Retained", note).await;
        }
        DeletionPolicy::Delete => match ctx.kafka.delete_topic(&name).await {
            Ok(()) => {
                let note = format!("deleted Kafka topic {name} and its records (deletionPolicy Delete)");
                ctx.event(topic.as_ref(), false, "Deleted", note).await;
            }
            // Brokers unreachable: keep the finalizer and retry, so the topic is not orphaned,
            // within a bound: past it the deletion goes on (a namespace deletion never wedges)
            // and the event says what was left behind.
            Err(e) if e.transient && !past_cleanup_bound(topic.as_ref()) => {
                return Err(Error::Kafka(format!("{e}; will retry deleting {name}")));
            }
            Err(e) if e.transient => {
                let note = format!(
                    "gave up deleting Kafka topic {name} after {} s ({e}); it is left for the platform admin",
                    CLEANUP_BOUND.as_secs()
                );
                ctx.event(topic.as_ref(), true, "LeftBehind", note).await;
            }
            Err(e) => {
                let note = format!("could not delete Kafka topic {name} ({e}); it is left for the platform admin");
                ctx.event(topic.as_ref(), true, "LeftBehind", note).await;
            }
        },
    }
    Ok(Action::await_change())
}

/// The other Topic that holds `name` in Kafka, if any: one that manages it already, or,
/// while neither manages it, the older one. The other Topic (the newer) touches nothing.
/// Only Topics of the same namespace can map to `name` (Tenants' prefixes never overlap),
/// and only through their spec: a status naming `name` elsewhere proves nothing.
fn holder_of(neighbours: &[Arc<Topic>], topic: &Topic, name: &str, tenant: &ValidatedTenant) -> Option<Arc<Topic>> {
    let manages = |t: &Topic| t.status.as_ref().and_then(|s| s.kafka_name.as_deref()) == Some(name);
    if manages(topic) {
        return None;
    }
    let age = |t: &Topic| (t.meta().creation_timestamp.clone().map(|c| c.0), t.namespace(), t.name_any());
    neighbours
        .iter()
        .filter(|t| t.meta().uid != topic.meta().uid && t.metadata.namespace == topic.metadata.namespace)
        .filter(|t| kafka_name(t, tenant) == name && (manages(t) || age(t) < age(topic)))
        .min_by_key(|t| age(t))
        .cloned()
}

/// What the objects older than `me` in its namespace use (its Topics, `topics`, and the
/// CassandraSinks, whose dead-letter topics count too, from the watched copy), for the
/// topic and dead-letter guardrails.
pub(crate) fn usage_in_namespace(ctx: &Context, topics: &[Arc<Topic>], me: &ObjectMeta) -> Siblings {
    let sinks = ctx.watches.sinks.watched.in_namespace(me.namespace.as_deref().unwrap_or_default());
    let topics: Vec<&Topic> = topics.iter().map(|t| t.as_ref()).collect();
    let sinks: Vec<&CassandraSink> = sinks.iter().map(|s| s.as_ref()).collect();
    usage_before(&age(me), &topics, &sinks)
}

/// A failed Kafka call, through the one mapping of failures to conditions
/// ([`crate::external::ExternalFailure::outcome`]): a transient one is reported and retried
/// with backoff; one Kafka refuses for good (an invalid config value, a policy) waits for a
/// spec change instead of being retried in a loop.
fn kafka_failure(e: &KafkaCallError) -> (DesiredCondition, Action, Option<Error>) {
    let (ready, retry) = crate::external::ExternalFailure::from(e.clone()).outcome(KIND);
    (ready, Action::await_change(), retry)
}

/// What one convergence did.
struct Converged {
    ready: DesiredCondition,
    observed: Option<ObservedTopic>,
    /// Drift set back (`None` when there was none).
    reverted: Option<Vec<String>>,
    /// Kafka cannot do it right now (too few brokers): report and retry with backoff.
    retry: bool,
}

/// Brings Kafka to the desired topic, or explains why it will not.
async fn converge(ctx: &Context, topic: &Topic, desired: &DesiredTopic) -> Result<Converged, KafkaCallError> {
    let view = ctx.kafka.describe_topic(&desired.name).await?;
    let observed = view.topic;
    let adopting = topic.status.as_ref().and_then(|s| s.kafka_name.as_ref()).is_none();
    let step = plan(desired, observed.as_ref(), adopting);
    let under_replicated = observed.as_ref().map_or(0, |o| o.under_replicated);
    // The live brokers matter only to a create, a partition increase, or a degraded topic.
    let brokers = match view.brokers {
        Some(brokers) => brokers,
        None if matches!(step, Plan::Create | Plan::AddPartitions { .. }) || under_replicated > 0 => {
            ctx.kafka.live_brokers().await?
        }
        None => desired.replication_factor,
    };
    if matches!(step, Plan::Create | Plan::AddPartitions { .. }) && brokers < desired.replication_factor {
        let message = format!(
            "Kafka is degraded: {} broker(s) alive, replication factor {} needs {}; {} waits for the brokers to come back (make stack-status)",
            brokers, desired.replication_factor, desired.replication_factor, desired.name
        );
        let ready = DesiredCondition::not_ready(Reason::KafkaDegraded, message);
        return Ok(Converged { ready, observed, reverted: None, retry: true });
    }
    let mut reverted = None;
    match step {
        Plan::Create if !adopting => {
            // The operator had this topic and it is gone: someone deleted it in Kafka.
            ctx.kafka.create_topic(desired).await?;
            let note = format!(
                "Kafka topic {} was deleted outside Kubernetes; recreated it empty (its records are gone)",
                desired.name
            );
            ctx.event(topic, true, "Recreated", note).await;
        }
        // No event of its own: the Ready change this creation makes tells it (one event per
        // new Topic, not two: with a thousand Topics applied at once, events were two of the
        // operator's four writes per Topic).
        Plan::Create => ctx.kafka.create_topic(desired).await?,
        Plan::AddPartitions { .. } | Plan::Nothing => {
            if let Plan::AddPartitions { from, to } = step {
                ctx.kafka.create_partitions(&desired.name, to).await?;
                let note = format!("{}: partitions {from} → {to}", desired.name);
                ctx.event(topic, false, "PartitionsIncreased", note).await;
            }
            let live = observed.as_ref().map(|o| o.config.clone()).unwrap_or_default();
            let changes = config_changes(desired, &live);
            if !changes.is_empty() {
                let described: Vec<String> = changes.iter().map(|c| c.description.clone()).collect();
                ctx.kafka
                    .alter_topic_config(&desired.name, changes.into_iter().map(|c| (c.key, c.op)).collect())
                    .await?;
                if spec_unchanged_since_ready(topic) {
                    // Kafka was right before and nobody changed the spec: someone changed
                    // Kafka by hand.
                    let note = format!("{}: set back config changed in Kafka: {}", desired.name, described.join(", "));
                    ctx.event(topic, true, "DriftReverted", note).await;
                    reverted = Some(described);
                } else {
                    let note = format!("{}: config {}", desired.name, described.join(", "));
                    ctx.event(topic, false, "ConfigUpdated", note).await;
                }
            }
        }
        Plan::Refuse { reason, message } => {
            let ready = DesiredCondition::not_ready(reason, message);
            return Ok(Converged { ready, observed, reverted, retry: false });
        }
    }
    let now = ObservedTopic {
        partitions: desired.partitions,
        replication_factor: desired.replication_factor,
        ..Default::default()
    };
    let mut message =
        format!("{}: {} partitions, replication factor {}", desired.name, now.partitions, now.replication_factor);
    if under_replicated > 0 {
        message.push_str(&format!(
            "; Kafka is degraded: {under_replicated} partition(s) under-replicated ({brokers} broker(s) alive)"
        ));
    }
    let ready = DesiredCondition::ready(Reason::Provisioned, message);
    Ok(Converged { ready, observed: Some(now), reverted, retry: false })
}

/// The spec has not changed since the topic was last found Ready: a difference in Kafka now
/// was made in Kafka.
fn spec_unchanged_since_ready(topic: &Topic) -> bool {
    topic.status.as_ref().is_some_and(|s| {
        s.observed_generation == topic.metadata.generation && status_of(&s.conditions, READY) == Some("True")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_kafka_failures_back_off_and_permanent_ones_wait_for_a_change() {
        let down =
            KafkaCallError { call: "Metadata", message: "all brokers down".into(), transient: true, answered: false };
        let (ready, _, failure) = kafka_failure(&down);
        assert_eq!(ready.reason, Reason::KafkaUnavailable);
        assert!(matches!(failure, Some(Error::Kafka(_))), "a transient failure goes to the backoff policy");

        let refused =
            KafkaCallError { call: "CreateTopics", message: "InvalidConfig".into(), transient: false, answered: false };
        let (ready, _, failure) = kafka_failure(&refused);
        assert_eq!(ready.reason, Reason::KafkaRejected);
        assert!(ready.message.contains("change the Topic's spec"), "{}", ready.message);
        assert!(failure.is_none(), "a permanent failure is not retried");
    }
}
