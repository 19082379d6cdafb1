//! CassandraSink reconcile, as steps in the order they run: read the tenant and the Topic
//! (no writes) → check the spec (mapping, guardrails) → the table → the sink's login
//! ([`super::login`]: Secret, principal, Kafka user) → its dead-letter topic, progress and
//! offsets, ConfigMap and Deployment ([`super::workload`]) → the status, built and published
//! once. A step that cannot go on returns a [`Halt`]; [`Halt::settle`] turns it into the
//! Ready condition.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use k8s_openapi::api::apps::v1::Deployment;

use super::build::{self, RETRY, Source};
use super::cleanup::cleanup;
use super::table::{add_column_cql, check_mapping, create_table_cql};
use crate::access::kafka::ResourceType;
use crate::api::Reason;
use crate::api::conditions::{self, ConditionStatus, DesiredCondition, READY};
use crate::api::{CassandraSink, CassandraSinkStatus, Tenant, Topic};
use crate::controller::{
    Context, Error, Result, error_policy, finalized, hash_of, in_tenant_namespace, object_key, readiness_changes,
};
use crate::resync::Resyncs;
use crate::status::{self, refused_for_good};
use crate::step::{Halt, Settled, Step};
use crate::tenancy::{Tenancy, resolve};
use crate::tenant::ValidatedTenant;
use crate::topic::validate::{Refusal, beyond_limits};

pub(super) const KIND: &str = "CassandraSink";
const REPLAY_RETRY: Duration = Duration::from_secs(3);
/// Condition: the table exists and matches the sink's columns and keys.
pub const MAPPING_VALID: &str = "MappingValid";

pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let watches = &ctx.watches;
    let sinks = watches.sinks.watched.clone();
    let controller = Controller::for_shared_stream(watches.sinks.applied(), sinks.store.clone());
    // A sink is re-checked when its Topic changes (readiness, Kafka name).
    let of_topic = sinks.clone();
    let sinks_of_topic = move |topic: Arc<Topic>| {
        let name = topic.name_any();
        let ns = topic.metadata.namespace.clone().unwrap_or_default();
        of_topic
            .in_namespace(&ns)
            .into_iter()
            .filter(|s| s.spec.topic == name)
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect::<Vec<_>>()
    };
    // A rotation of the tenant's credentials rolls its sinks onto the new ones: the Tenant
    // publishes the rotation in its status once the new credentials are in its Secret.
    let sinks_of_tenant = in_tenant_namespace(sinks, ctx.tenancy.validations.clone());
    let rotations = watches
        .tenants
        .changes_of(|t: &Tenant| hash_of(t.status.as_ref().and_then(|s| s.credentials.as_ref()?.rotated_at.as_ref())));
    // A grant made, changed or revoked: the sinks that read another tenant's topic look again.
    let of_grants = watches.sinks.watched.clone();
    let sinks_sharing = move |_: crate::api::TopicGrant| {
        of_grants
            .store
            .state()
            .iter()
            .filter(|s| s.spec.topic_tenant.is_some())
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect::<Vec<_>>()
    };
    let reported = controller.store();
    let resyncs = Resyncs::new(KIND, ctx.config.resync, ctx.config.concurrency, ctx.metrics.clone());
    let controller = controller
        .reconcile_on(resyncs.due(reported.clone()))
        .owns(Api::<Deployment>::all(client.clone()), watcher::Config::default().labels(build::SINK_LABEL))
        .watches_shared_stream(readiness_changes(&watches.topics, Topic::readiness), sinks_of_topic)
        .watches_shared_stream(rotations, sinks_of_tenant)
        .watches(Api::<crate::api::TopicGrant>::all(client.clone()), watcher::Config::default(), sinks_sharing)
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(resyncs.around(reconcile), |obj, err, ctx| error_policy(KIND, obj.as_ref(), err, &ctx), ctx.clone())
        .for_each(|_| futures::future::ready(()));
    // The pods' reports are read beside the controller, and stop with it.
    tokio::select! {
        _ = controller => {}
        _ = super::report::run(ctx, reported) => {}
    }
}

/// Finalizer that removes the sink's Kafka user and ACLs when the sink is deleted.
pub const FINALIZER: &str = "tributary.dev/sink-cleanup";

pub(crate) async fn reconcile(sink: Arc<CassandraSink>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let namespace = sink.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let api: Api<CassandraSink> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = object_key(sink.as_ref());
    let result = finalized(&api, FINALIZER, sink, |event| async {
        match event {
            FinalizerEvent::Apply(sink) => apply(sink, &ctx, &api, &namespace).await,
            FinalizerEvent::Cleanup(sink) => {
                crate::status::forget(&ctx, sink.as_ref());
                cleanup(sink, &ctx, &namespace).await
            }
        }
    })
    .await;
    ctx.ended(&key, result)
}

/// One pass over a live sink: the steps, then the status published once.
async fn apply(sink: Arc<CassandraSink>, ctx: &Context, api: &Api<CassandraSink>, namespace: &str) -> Result<Action> {
    if refused_for_good(sink.as_ref()) {
        return Ok(Action::await_change());
    }
    let old = sink.status.clone().unwrap_or_default();
    let mut status = CassandraSinkStatus { observed_generation: sink.metadata.generation, ..old };
    let mut mapping: Option<DesiredCondition> = None;
    let settled = match converge(ctx, &sink, namespace, &mut status, &mut mapping).await {
        Ok((ready, action)) => Settled { ready, action, retry: None },
        Err(halt) => halt.settle(KIND)?,
    };
    // The fields read from the pods have their own writer (`report`); publish leaves them out.
    let observed: Vec<DesiredCondition> = [Some(settled.ready), mapping].into_iter().flatten().collect();
    status::publish(ctx, api, sink.as_ref(), status, &observed).await?;
    if let Some(e) = settled.retry {
        return Err(e);
    }
    Ok(settled.action)
}

/// The steps in order; each fills in the part of the status it learned.
async fn converge(
    ctx: &Context,
    sink: &CassandraSink,
    namespace: &str,
    status: &mut CassandraSinkStatus,
    mapping: &mut Option<DesiredCondition>,
) -> Step<(DesiredCondition, Action)> {
    status.tenant = None;
    let tenant = provisioned_tenant(ctx, namespace, status).await?;
    let table = format!("{}.{}", tenant.keyspace, sink.spec.table);
    status.table = Some(table.clone());
    status.consumer_group = Some(build::names(&sink.name_any(), &tenant).group);
    let source = match &sink.spec.topic_tenant {
        Some(owner) if owner != &tenant.name => shared_source(ctx, sink, &tenant, owner, status).await?,
        _ => {
            let topic = ready_topic(ctx, sink, namespace)?;
            let kafka_topic = crate::topic::validate::kafka_name(&topic, &tenant);
            Source { kafka_topic, partitions: topic.spec.partitions, replication_factor: topic.spec.replication_factor }
        }
    };
    if let Err(problem) = crate::api::columns::plan(&sink.spec) {
        // What the sink pod would refuse to run is told here, before any table or pod.
        *mapping = Some(DesiredCondition::new(MAPPING_VALID, ConditionStatus::False, Reason::InvalidSpec, &problem));
        let message = format!("{problem}. No sink pod starts until the mapping is valid");
        return Err(Halt::Wait(DesiredCondition::not_ready(Reason::InvalidSpec, message), Action::await_change()));
    }
    if let Err(message) = super::workload::schema_registry_url(&sink.spec, ctx.config.schema_registry_url.as_deref()) {
        return Err(Halt::Wait(DesiredCondition::not_ready(Reason::InvalidSpec, message), Action::await_change()));
    }
    known_datacenter(ctx, sink).await?;
    if let Some(refusal) = dead_letter_guardrail(ctx, sink, &tenant, source.partitions).await? {
        return Err(Halt::Wait(DesiredCondition::not_ready(refusal.reason, refusal.message), ctx.resync()));
    }
    if let Some(mismatch) = ensure_table(ctx, sink, &tenant.keyspace).await? {
        *mapping =
            Some(DesiredCondition::new(MAPPING_VALID, ConditionStatus::False, Reason::ColumnMismatch, &mismatch));
        let message = format!("{mismatch}. No sink pod starts until the mapping matches the table");
        // The table can be altered outside Kubernetes: look again on resync.
        return Err(Halt::Wait(DesiredCondition::not_ready(Reason::MappingInvalid, message), ctx.resync()));
    }
    let matches = format!("table {table} has the sink's columns and keys");
    *mapping = Some(DesiredCondition::new(MAPPING_VALID, ConditionStatus::True, Reason::TableMatches, matches));
    let ready = super::workload::deploy(ctx, sink, &tenant, &source, status).await?;
    let action = match ready.reason {
        // A replay waiting for its group to empty looks again soon.
        Reason::Replaying => Action::requeue(REPLAY_RETRY),
        // An autoscaled sink looks at its lag as often as at its pods.
        _ if sink.spec.autoscale.is_some() => Action::requeue(ctx.config.sink_report),
        _ => ctx.resync(),
    };
    Ok((ready, action))
}

/// The sink's tenant, once it is provisioned (its keyspace exists).
async fn provisioned_tenant(
    ctx: &Context,
    namespace: &str,
    status: &mut CassandraSinkStatus,
) -> Step<Arc<ValidatedTenant>> {
    match resolve(&ctx.client, &ctx.tenancy, namespace).await? {
        Tenancy::None(message) => {
            Err(Halt::Wait(DesiredCondition::not_ready(Reason::NoTenant, message), Action::requeue(RETRY)))
        }
        Tenancy::Tenant(tenant_object, _) if !tenant_object.provisioned() => {
            status.tenant = Some(tenant_object.name_any());
            let message =
                format!("Tenant {} is not provisioned yet (its keyspace may not exist)", tenant_object.name_any());
            Err(Halt::Wait(DesiredCondition::not_ready(Reason::TenantNotReady, message), Action::requeue(RETRY)))
        }
        Tenancy::Tenant(_, tenant) => {
            status.tenant = Some(tenant.name.clone());
            Ok(tenant)
        }
    }
}

/// Another tenant's topic, once that tenant shares it with this one (a TopicGrant) and it is
/// in Kafka; `NotGranted` until then, looked at again at once when a grant changes.
async fn shared_source(
    ctx: &Context,
    sink: &CassandraSink,
    tenant: &ValidatedTenant,
    owner: &str,
    status: &mut CassandraSinkStatus,
) -> Step<Source> {
    let asked = crate::user::validate::SharedTopic {
        tenant: owner.to_string(),
        name: sink.spec.topic.clone(),
        pattern: crate::api::access::AclPatternType::Literal,
        operations: vec![crate::api::access::UserOperation::Read],
    };
    if let Err(why) = crate::user::grant::granted(ctx, &tenant.name, &asked).await? {
        revoked(ctx, sink, tenant, status).await?;
        let message = format!(
            "topic {} of tenant {owner} is not shared with tenant {}: {why}. The sink runs no pod and its user \
             has no right on the topic until it is; its offsets are kept, so it resumes where it stopped",
            sink.spec.topic, tenant.name
        );
        return Err(Halt::Wait(DesiredCondition::not_ready(Reason::NotGranted, message), Action::requeue(RETRY)));
    }
    let Some(live) = ctx.kafka.describe_topic(&sink.spec.topic).await?.topic else {
        let message = format!("topic {} of tenant {owner} is not in Kafka", sink.spec.topic);
        return Err(Halt::Wait(DesiredCondition::not_ready(Reason::TopicNotFound, message), Action::requeue(RETRY)));
    };
    Ok(Source {
        kafka_topic: sink.spec.topic.clone(),
        partitions: live.partitions,
        replication_factor: live.replication_factor,
    })
}

/// A shared topic no longer granted: the sink user's rights on it go at once, and the sink's
/// Deployment (if any) is scaled to zero, so no pod keeps failing on refused reads. Its
/// consumer group and offsets stay: a new grant resumes the sink where it stopped (the next
/// apply sets the replicas again).
async fn revoked(
    ctx: &Context,
    sink: &CassandraSink,
    tenant: &ValidatedTenant,
    status: &mut CassandraSinkStatus,
) -> Step<()> {
    let names = build::names(&sink.name_any(), tenant);
    let principal = crate::access::kafka::user_principal(&names.kafka_user);
    let on_topic: Vec<_> = ctx
        .kafka
        .describe_acls(&principal)
        .await?
        .into_iter()
        .filter(|acl| acl.resource_type == ResourceType::Topic && acl.resource_name == sink.spec.topic)
        .collect();
    if !on_topic.is_empty() {
        ctx.kafka.delete_acls(on_topic).await?;
        let note =
            format!("removed {}'s rights on topic {}: it is no longer shared", names.kafka_user, sink.spec.topic);
        ctx.event(sink, false, "AccessRevoked", note).await;
    }
    let namespace = sink.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let running = deployments.get_opt(&names.object).await?.and_then(|d| d.spec?.replicas).unwrap_or(0);
    if running > 0 {
        // Its own field manager: the next apply (a new grant) sees another writer and sets
        // the replicas again.
        let params = PatchParams { field_manager: Some(REVOKED_MANAGER.into()), ..Default::default() };
        deployments.patch(&names.object, &params, &Patch::Merge(json!({"spec": {"replicas": 0}}))).await?;
        ctx.event(sink, false, "ScaledToZero", "the shared topic is no longer granted: no pod runs".into()).await;
    }
    status.ready_replicas = Some(0);
    status.replicas = Some("0/0".into());
    Ok(())
}

/// The field manager of the scale-down of a revoked sink.
const REVOKED_MANAGER: &str = "tributary-revoked";

/// The sink's Topic, once it is Ready, from the watched copy: a change of the Topic's
/// readiness triggers this reconcile after the copy took it in.
fn ready_topic(ctx: &Context, sink: &CassandraSink, namespace: &str) -> Step<Arc<Topic>> {
    let wait = |reason, message| Halt::Wait(DesiredCondition::not_ready(reason, message), Action::requeue(RETRY));
    let Some(topic) = ctx.watches.topics.watched.store.get(&ObjectRef::new(&sink.spec.topic).within(namespace)) else {
        let message =
            format!("Topic {} does not exist in namespace {namespace}: create it or fix spec.topic", sink.spec.topic);
        return Err(wait(Reason::TopicNotFound, message));
    };
    let ready = topic.status.as_ref().and_then(|s| conditions::status_of(&s.conditions, READY)) == Some("True");
    if !ready || topic.status.as_ref().and_then(|s| s.kafka_name.as_ref()).is_none() {
        return Err(wait(Reason::TopicNotReady, format!("Topic {} is not ready yet", sink.spec.topic)));
    }
    Ok(topic)
}

/// The datacenter the sink is to write to is one of the cluster's: a name Cassandra does not
/// know would leave the sink's pods with no node to write to.
async fn known_datacenter(ctx: &Context, sink: &CassandraSink) -> Step<()> {
    let Some(dc) = super::workload::local_datacenter(ctx, sink) else { return Ok(()) };
    let known = ctx.cassandra.datacenters().await?;
    if known.contains(&dc) {
        return Ok(());
    }
    let known = known.into_iter().collect::<Vec<_>>().join(", ");
    let (reason, message, next) = match &sink.spec.local_datacenter {
        Some(_) => (
            Reason::InvalidSpec,
            format!(
                "spec.localDatacenter {dc:?} is not a datacenter of the Cassandra cluster ({known}): name one of those"
            ),
            Action::await_change(),
        ),
        None => (
            Reason::CassandraRejected,
            format!(
                "the operator's TRIBUTARY_CASSANDRA_LOCAL_DC (chart value cassandra.localDatacenter) {dc:?} is not a \
                 datacenter of the Cassandra cluster ({known}): fix the setting, or name one in spec.localDatacenter"
            ),
            ctx.resync(),
        ),
    };
    Err(Halt::Wait(DesiredCondition::not_ready(reason, message), next))
}

/// The sink's dead-letter topic counts against its tenant's topic and partition limits,
/// after every Topic and sink older than the sink (so a Ready one is never refused later).
async fn dead_letter_guardrail(
    ctx: &Context,
    sink: &CassandraSink,
    tenant: &ValidatedTenant,
    partitions: i32,
) -> Result<Option<Refusal>> {
    if let Some(refusal) = build::dead_letter_retention_beyond(tenant, &sink.spec) {
        return Ok(Some(refusal));
    }
    if tenant.limits.max_topics.is_none() && tenant.limits.max_partitions.is_none() {
        return Ok(None);
    }
    let namespace = sink.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let topics = ctx.watches.topics.watched.in_namespace(&namespace);
    let used = crate::topic::reconcile::usage_in_namespace(ctx, &topics, sink.meta());
    Ok(beyond_limits(tenant, &used, partitions, "the sink's dead-letter topic"))
}

/// Creates the sink's table when it is absent; otherwise checks it against the spec and
/// adds the spec's new columns. `Some(message)`: the table exists and differs in a way no
/// addition mends (the message names the column).
async fn ensure_table(ctx: &Context, sink: &CassandraSink, keyspace: &str) -> Step<Option<String>> {
    let live = ctx.cassandra.table_columns(keyspace, &sink.spec.table).await?;
    if live.is_empty() {
        ctx.cassandra.create_table(create_table_cql(keyspace, &sink.spec)).await?;
        let note = format!("created table {keyspace}.{}", sink.spec.table);
        ctx.event(sink, false, "TableCreated", note).await;
        return Ok(None);
    }
    let missing = match check_mapping(&sink.spec, &live) {
        Ok(missing) => missing,
        Err(mismatch) => return Ok(Some(mismatch)),
    };
    // Additive evolution: the spec's new columns are added; the pods then roll onto the new
    // config (its hash is on the pod template) and fill them.
    for column in &missing {
        ctx.cassandra.alter_table(add_column_cql(keyspace, &sink.spec.table, column)).await?;
    }
    if !missing.is_empty() {
        let added = missing.iter().map(|c| format!("{} {}", c.name, c.cql_type)).collect::<Vec<_>>().join(", ");
        ctx.event(sink, false, "ColumnsAdded", format!("added to {keyspace}.{}: {added}", sink.spec.table)).await;
    }
    Ok(None)
}
