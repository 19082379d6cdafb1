//! CassandraSink reconcile: resolve the tenant and the Topic, report status.

use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Resource;
use kube::api::{Patch, PatchParams};

use super::autoscale;
use super::build::{self, SinkLogin, TemplateStamp};
use super::replay;
use super::table::{add_column_cql, check_mapping, create_table_cql};
use crate::api::Reason;
use crate::api::conditions::{self, ConditionStatus, DesiredCondition, READY};
use crate::api::contract::SinkConfig;
use crate::api::{
    CassandraSink, CassandraSinkSpec, CassandraSinkStatus, ReplayPhase, ReplayStatus, Tenant, Topic, WriteTime,
};
use crate::controller::{
    APPLIED_KAFKA, Context, Error, FIELD_MANAGER, Result, apply_unless_current, credential_fingerprint, error_policy,
    finalized, hash_of, in_tenant_namespace, object_key, readiness_changes, record_applied, recorded,
};
use crate::external::cassandra::CassandraCallError;
use crate::external::kafka::quotas::quota_changes;
use crate::external::kafka::{KafkaCallError, ScramMechanism};
use crate::external::retries_within;
use crate::resync::Resyncs;
use crate::status::{self, refused_for_good};
use crate::tenancy::{Tenancy, resolve};
use crate::tenant::ValidatedTenant;
use crate::tenant::build::acl_changes;
use crate::tenant::rotation;
use crate::topic::build::config_changes;
use crate::topic::validate::{Refusal, beyond_limits};

const KIND: &str = "CassandraSink";
const RETRY: Duration = Duration::from_secs(15);
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
    let reported = controller.store();
    let resyncs = Resyncs::new(KIND, ctx.config.resync, ctx.config.concurrency, ctx.metrics.clone());
    let controller = controller
        .reconcile_on(resyncs.due(reported.clone()))
        .owns(Api::<Deployment>::all(client.clone()), watcher::Config::default().labels(build::SINK_LABEL))
        .watches_shared_stream(readiness_changes(&watches.topics, Topic::readiness), sinks_of_topic)
        .watches_shared_stream(rotations, sinks_of_tenant)
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
/// Bound on the cleanup of a deleted sink: a deletion never hangs on Kafka.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) async fn reconcile(sink: Arc<CassandraSink>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let namespace = sink.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let api: Api<CassandraSink> = Api::namespaced(ctx.client.clone(), &namespace);
    finalized(&api, FINALIZER, sink, |event| async {
        match event {
            FinalizerEvent::Apply(sink) => apply(sink, &ctx, &api, &namespace).await,
            FinalizerEvent::Cleanup(sink) => cleanup(sink, &ctx, &namespace).await,
        }
    })
    .await
}

/// A deleted sink: its Deployment, ConfigMap and Secret go with it (owner references); its
/// Kafka user and ACLs are removed here; its dead-letter topic stays (it holds the records
/// that could not be written) and the event says so.
async fn cleanup(sink: Arc<CassandraSink>, ctx: &Context, namespace: &str) -> Result<Action> {
    let Tenancy::Tenant(_, tenant) = resolve(&ctx.client, &ctx.tenancy, namespace).await? else {
        return Ok(Action::await_change());
    };
    let names = build::names(&sink.name_any(), &tenant);
    if tenant.external_user.is_some() {
        // It ran as the tenant's external principal: nothing of its own to delete.
        let note = format!("kept dead-letter topic {} (the sink ran as the tenant's user)", names.dead_letter_topic);
        ctx.event(sink.as_ref(), false, "CleanedUp", note).await;
        return Ok(Action::await_change());
    }
    let user = names.kafka_user.as_str();
    let delete = || async move {
        let current = ctx.kafka.describe_acls(&crate::external::kafka::user_principal(user)).await?;
        ctx.kafka.delete_acls(current).await?;
        // Its quotas too: nothing is left under its name for a new sink of that name to find.
        let quotas: Vec<String> = ctx.kafka.describe_user_quotas(user).await?.into_keys().collect();
        if !quotas.is_empty() {
            ctx.kafka.alter_user_quotas(user, &Default::default(), &quotas).await?;
        }
        ctx.kafka.delete_scram_user(user).await
    };
    // A broker restarting (or the breaker open after it) is waited out, within the bound.
    let delete = delete.retry(retries_within(CLEANUP_TIMEOUT)).when(KafkaCallError::is_transient);
    let left_behind =
        |why: String| (true, format!("left behind Kafka user {} with its ACLs ({why})", names.kafka_user));
    let (warning, note) = match tokio::time::timeout(CLEANUP_TIMEOUT, delete).await {
        Ok(Ok(())) => (
            false,
            format!(
                "deleted Kafka user {} and its ACLs; kept dead-letter topic {}",
                names.kafka_user, names.dead_letter_topic
            ),
        ),
        Ok(Err(e)) => left_behind(e.to_string()),
        Err(_) => left_behind("Kafka did not answer".into()),
    };
    ctx.event(sink.as_ref(), warning, "CleanedUp", note).await;
    Ok(Action::await_change())
}

async fn apply(sink: Arc<CassandraSink>, ctx: &Context, api: &Api<CassandraSink>, namespace: &str) -> Result<Action> {
    let namespace = namespace.to_string();
    let old = sink.status.as_ref();
    if refused_for_good(sink.as_ref()) {
        ctx.succeeded(&object_key(sink.as_ref()));
        return Ok(Action::await_change());
    }
    let mut status =
        CassandraSinkStatus { observed_generation: sink.metadata.generation, ..old.cloned().unwrap_or_default() };

    let mut mapping: Option<DesiredCondition> = None;
    let mut failure = None;
    let (ready, action) = match resolve(&ctx.client, &ctx.tenancy, &namespace).await? {
        Tenancy::None(message) => {
            status.tenant = None;
            (DesiredCondition::not_ready(Reason::NoTenant, message), Action::requeue(RETRY))
        }
        Tenancy::Tenant(tenant_object, _) if !tenant_object.provisioned() => {
            status.tenant = Some(tenant_object.name_any());
            let message =
                format!("Tenant {} is not provisioned yet (its keyspace may not exist)", tenant_object.name_any());
            (DesiredCondition::not_ready(Reason::TenantNotReady, message), Action::requeue(RETRY))
        }
        Tenancy::Tenant(_, tenant) => {
            let table = format!("{}.{}", tenant.keyspace, sink.spec.table);
            status.tenant = Some(tenant.name.clone());
            status.table = Some(table.clone());
            status.consumer_group = Some(build::names(&sink.name_any(), &tenant).group);
            // From the watched copy: a change of the Topic's readiness triggers this reconcile
            // after the copy took it in.
            let topic = ctx.watches.topics.watched.store.get(&ObjectRef::new(&sink.spec.topic).within(&namespace));
            // What the sink pod would refuse to run is told here, before any table or pod.
            let unwritable = crate::api::columns::plan(&sink.spec).err();
            let mut guardrail = match &topic {
                Some(t) => dead_letter_guardrail(ctx, &sink, &tenant, t).await?,
                None => None,
            };
            match topic {
                None => (
                    DesiredCondition::not_ready(
                        Reason::TopicNotFound,
                        format!(
                            "Topic {} does not exist in namespace {namespace}: create it or fix spec.topic",
                            sink.spec.topic
                        ),
                    ),
                    Action::requeue(RETRY),
                ),
                Some(t)
                    if t.status.as_ref().and_then(|s| conditions::status_of(&s.conditions, READY)) != Some("True") =>
                {
                    (
                        DesiredCondition::not_ready(
                            Reason::TopicNotReady,
                            format!("Topic {} is not ready yet", sink.spec.topic),
                        ),
                        Action::requeue(RETRY),
                    )
                }
                Some(_) if unwritable.is_some() => {
                    let problem = unwritable.expect("checked by the guard");
                    mapping = Some(DesiredCondition::new(
                        MAPPING_VALID,
                        ConditionStatus::False,
                        Reason::InvalidSpec,
                        problem.clone(),
                    ));
                    let message = format!("{problem}. No sink pod starts until the mapping is valid");
                    (DesiredCondition::not_ready(Reason::InvalidSpec, message), Action::await_change())
                }
                Some(_) if guardrail.is_some() => {
                    let refusal = guardrail.take().expect("checked by the guard");
                    (DesiredCondition::not_ready(refusal.reason, refusal.message), ctx.resync())
                }
                Some(topic) => match ensure_table(ctx, &sink, &tenant.keyspace).await {
                    Ok(Ok(())) => {
                        mapping = Some(DesiredCondition::new(
                            MAPPING_VALID,
                            ConditionStatus::True,
                            Reason::TableMatches,
                            format!("table {table} has the sink's columns and keys"),
                        ));
                        match deploy(ctx, &sink, &tenant, &topic, &mut status).await? {
                            // A replay waiting for its group to empty looks again soon.
                            Ok(ready) if ready.reason == Reason::Replaying => (ready, Action::requeue(REPLAY_RETRY)),
                            // A Secret or principal in the way may be a deleted sink's, which
                            // the garbage collector is about to remove: look again soon.
                            Ok(ready) if ready.reason == Reason::OwnershipConflict => (ready, Action::requeue(RETRY)),
                            // An autoscaled sink looks at its lag as often as at its pods.
                            Ok(ready) if sink.spec.autoscale.is_some() => {
                                (ready, Action::requeue(ctx.config.sink_report))
                            }
                            Ok(ready) => (ready, ctx.resync()),
                            Err(e) if e.transient => {
                                failure = Some(Error::Kafka(e.to_string()));
                                let message = format!("{e}; retrying. Check the brokers");
                                (DesiredCondition::not_ready(Reason::KafkaUnavailable, message), Action::await_change())
                            }
                            Err(e) => {
                                let message = format!("{e}; change the CassandraSink's spec");
                                (DesiredCondition::not_ready(Reason::KafkaRejected, message), Action::await_change())
                            }
                        }
                    }
                    Ok(Err(mismatch)) => {
                        mapping = Some(DesiredCondition::new(
                            MAPPING_VALID,
                            ConditionStatus::False,
                            Reason::ColumnMismatch,
                            mismatch.clone(),
                        ));
                        let message = format!("{mismatch}. No sink pod starts until the mapping matches the table");
                        // The table can be altered outside Kubernetes: look again on resync.
                        (DesiredCondition::not_ready(Reason::MappingInvalid, message), ctx.resync())
                    }
                    Err(e) if e.transient => {
                        failure = Some(Error::Cassandra(e.to_string()));
                        let message = format!("{e}; retrying. Check that Cassandra is up");
                        (DesiredCondition::not_ready(Reason::CassandraUnavailable, message), Action::await_change())
                    }
                    Err(e) => {
                        let message = format!("{e}; change the CassandraSink's spec");
                        (DesiredCondition::not_ready(Reason::CassandraRejected, message), Action::await_change())
                    }
                },
            }
        }
    };
    // The fields read from the pods have their own writer (`report`); publish leaves them out.
    let observed: Vec<DesiredCondition> = [Some(ready), mapping].into_iter().flatten().collect();
    status::publish(ctx, api, sink.as_ref(), status, &observed).await?;
    if let Some(e) = failure {
        return Err(e);
    }
    ctx.succeeded(&object_key(sink.as_ref()));
    Ok(action)
}

/// The sink's Secret if the operator wrote it: it holds the login whose fingerprint the sink's
/// status records. A sink reconciled before the status recorded it (an older operator) trusts
/// a Secret it controls that records the same login as applied. Otherwise, a Secret the
/// operator recorded a login for but which holds another (changed by hand) is not read
/// (`Ok(None)`: a new login is made and written over it), and one it never recorded a login
/// for is someone else's: `Err` names who wrote it.
fn own_secret(
    sink: &CassandraSink,
    user: &str,
    existing: Option<Secret>,
    recorded_login: Option<&str>,
) -> std::result::Result<Option<Secret>, String> {
    let Some(secret) = existing else { return Ok(None) };
    let password = secret
        .data
        .as_ref()
        .and_then(|d| d.get(build::KAFKA_PASSWORD_KEY))
        .and_then(|p| String::from_utf8(p.0.clone()).ok())
        .unwrap_or_default();
    let held = credential_fingerprint(user, &password);
    let legacy = || {
        let reconciled = sink.status.as_ref().is_some_and(|s| s.observed_generation.is_some());
        let controlled = secret.owner_references().iter().any(|o| Some(&o.uid) == sink.metadata.uid.as_ref());
        reconciled && controlled && recorded(Some(&secret), APPLIED_KAFKA, &held)
    };
    match recorded_login {
        Some(login) if login == held => Ok(Some(secret)),
        Some(_) => Ok(None),
        None if legacy() => Ok(Some(secret)),
        None => {
            let writers: Vec<&str> =
                secret.managed_fields().iter().filter_map(|m| m.manager.as_deref()).collect::<Vec<_>>();
            let created = secret.creation_timestamp().map(|t| t.0.to_string()).unwrap_or_default();
            Err(format!("created {created} by {}", if writers.is_empty() { "?".into() } else { writers.join(", ") }))
        }
    }
}

/// What Kafka holds under `user`'s name already (a SCRAM credential, ACLs, quotas), in words.
async fn principal_held(ctx: &Context, user: &str, scram: bool) -> std::result::Result<Option<String>, KafkaCallError> {
    let principal = crate::external::kafka::user_principal(user);
    let (acls, quotas) = futures::try_join!(ctx.kafka.describe_acls(&principal), ctx.kafka.describe_user_quotas(user))?;
    let held: Vec<String> = [
        scram.then(|| "a SCRAM credential".to_string()),
        (!acls.is_empty()).then(|| format!("{} ACLs", acls.len())),
        (!quotas.is_empty()).then(|| "client quotas".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok((!held.is_empty()).then(|| held.join(" and ")))
}

/// The sink's dead-letter topic counts against its tenant's topic and partition limits,
/// after every Topic and sink older than the sink (so a Ready one is never refused later).
async fn dead_letter_guardrail(
    ctx: &Context,
    sink: &CassandraSink,
    tenant: &ValidatedTenant,
    topic: &Topic,
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
    Ok(beyond_limits(tenant, &used, topic.spec.partitions, "the sink's dead-letter topic"))
}

/// Everything the sink runs as: its Kafka user (password kept in its Secret) with exactly
/// its ACLs, its dead-letter topic, the rendered config and the Deployment. Returns the
/// Ready condition from the Deployment's replicas, or the Kafka call that failed.
async fn deploy(
    ctx: &Context,
    sink: &CassandraSink,
    tenant: &ValidatedTenant,
    topic: &Topic,
    status: &mut CassandraSinkStatus,
) -> Result<Result<DesiredCondition, KafkaCallError>> {
    let namespace = sink.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let owner = sink.controller_owner_ref(&()).ok_or(Error::Missing("metadata.uid"))?;
    let names = build::names(&sink.name_any(), tenant);
    if topic.status.as_ref().and_then(|s| s.kafka_name.as_ref()).is_none() {
        let message = format!("Topic {} is not ready yet", topic.name_any());
        return Ok(Ok(DesiredCondition::not_ready(Reason::TopicNotReady, message)));
    }
    // The ACL target and the dead-letter topic's shape come from the Topic's spec and the
    // tenant, never from a status field (whoever may write status could point them elsewhere).
    let kafka_topic = crate::topic::validate::kafka_name(topic, tenant);
    let (partitions, rf) = (topic.spec.partitions, topic.spec.replication_factor);

    // Credentials: generated once, kept in the sink's Secret, new ones (in the other SCRAM
    // slot) when the tenant's were rotated after them; with an external principal, the
    // tenant's login as its Secret holds it.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = secrets.get_opt(&names.object).await?;
    let secret_text = |secret: Option<&Secret>, key: &str| {
        secret.and_then(|s| String::from_utf8(s.data.as_ref()?.get(key)?.0.clone()).ok()).filter(|p| !p.is_empty())
    };
    let rotated_at = |secret: Option<&Secret>| secret.and_then(rotation::stamp);
    // Only the Secret the operator wrote for this sink is read back (see `own_secret`); one
    // it did not write is never adopted, and nothing is written over it.
    let recorded_login = sink.status.as_ref().and_then(|s| s.kafka_credential.clone());
    let existing = match own_secret(sink, &names.kafka_user, existing, recorded_login.as_deref()) {
        Ok(own) => own,
        Err(holder) => {
            let message = format!(
                "Secret {namespace}/{} exists and was not written by the operator for this sink ({holder}): nothing \
                 was written. Delete that Secret, or rename the CassandraSink",
                names.object
            );
            return Ok(Ok(DesiredCondition::not_ready(Reason::OwnershipConflict, message)));
        }
    };
    // The tenant's Secret: its Cassandra login (and an external Kafka login) for the pods.
    let tenant_secret = secrets.get_opt(crate::tenant::validate::CREDENTIALS_SECRET).await?;
    let tenant_rotated_at = rotated_at(tenant_secret.as_ref());
    let external = tenant.external_user.is_some();
    let mut slot = secret_text(existing.as_ref(), build::KAFKA_MECHANISM_KEY)
        .and_then(|m| ScramMechanism::from_name(&m))
        .unwrap_or(ScramMechanism::Sha512);
    // The SCRAM credentials the sink's user holds (an external principal has none of ours).
    let held = match external {
        true => Default::default(),
        false => match ctx.kafka.scram_mechanisms(&names.kafka_user).await {
            Ok(held) => held,
            Err(e) => return Ok(Err(e)),
        },
    };
    let login = if external {
        match secret_text(tenant_secret.as_ref(), build::KAFKA_PASSWORD_KEY) {
            Some(password) => {
                SinkLogin { password, mechanism: tenant.kafka_mechanism.as_str().into(), rotated_at: tenant_rotated_at }
            }
            None => {
                let message = format!("Tenant {}'s Secret has no Kafka password yet", tenant.name);
                return Ok(Ok(DesiredCondition::not_ready(Reason::TenantNotReady, message)));
            }
        }
    } else {
        let own = rotated_at(existing.as_ref());
        match secret_text(existing.as_ref(), build::KAFKA_PASSWORD_KEY) {
            // Never while the previous rotation's slot still exists (its pods may use it).
            Some(_)
                if rotation::older(own.as_deref(), tenant_rotated_at.as_deref()) && !held.contains(&slot.other()) =>
            {
                slot = slot.other();
                let note = format!(
                    "new {} credential for Kafka user {} (the tenant's credentials were rotated); the previous one \
                     goes once every pod runs with the new one",
                    slot.as_str(),
                    names.kafka_user
                );
                ctx.event(sink, false, "CredentialsRotated", note).await;
                let password = crate::tenant::build::generate_password();
                SinkLogin { password, mechanism: slot.as_str().into(), rotated_at: tenant_rotated_at }
            }
            Some(password) => {
                SinkLogin { password, mechanism: slot.as_str().into(), rotated_at: own.or(tenant_rotated_at) }
            }
            None => SinkLogin {
                password: crate::tenant::build::generate_password(),
                mechanism: slot.as_str().into(),
                rotated_at: tenant_rotated_at,
            },
        }
    };
    let password = &login.password;
    // A new sink's user is a new principal: a credential, ACL or quota already held under its
    // name is someone else's (a PLAIN user of the brokers, a leftover), never taken over.
    if recorded_login.is_none() && existing.is_none() && !external {
        match principal_held(ctx, &names.kafka_user, !held.is_empty()).await {
            Ok(None) => {}
            Ok(Some(what)) => {
                let message = format!(
                    "Kafka principal User:{} exists with {what}, not created for this sink: nothing was written. \
                     Rename the CassandraSink, or remove that principal",
                    names.kafka_user
                );
                return Ok(Ok(DesiredCondition::not_ready(Reason::OwnershipConflict, message)));
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    // The credential is written once (see APPLIED_KAFKA): its fingerprint recorded in the
    // sink's status first (what makes the Secret the operator's), then to Kafka, so the pods
    // that read it from the Secret (a container restarted at any moment) can log in with it;
    // then to the Secret, with its fingerprint.
    let fingerprint = credential_fingerprint(&names.kafka_user, password);
    if recorded_login.as_deref() != Some(fingerprint.as_str()) {
        let patch = serde_json::json!({"status": {"kafkaCredential": fingerprint}});
        let api: Api<CassandraSink> = Api::namespaced(ctx.client.clone(), &namespace);
        api.patch_status(&sink.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    status.kafka_credential = Some(fingerprint.clone());
    let applied = recorded(existing.as_ref(), APPLIED_KAFKA, &fingerprint);
    let kafka = async {
        // An external principal has the tenant's ACLs and quotas already (its reconcile's).
        let write = !external && (!applied || !held.contains(&slot));
        if write {
            ctx.kafka.upsert_scram_user(&names.kafka_user, slot, password).await?;
        }
        if !external {
            let current = ctx.kafka.describe_acls(&crate::external::kafka::user_principal(&names.kafka_user)).await?;
            let (add, remove) = acl_changes(&build::desired_acls(&names, &kafka_topic), &current);
            ctx.kafka.create_acls(add).await?;
            ctx.kafka.delete_acls(remove).await?;
            // Each sink user carries its share of the tenant's quotas (see `QuotaSplit`).
            let live = ctx.kafka.describe_user_quotas(&names.kafka_user).await?;
            let (set, unset) = quota_changes(&tenant.quota_split(&ctx.config.default_quotas).each_sink, &live);
            ctx.kafka.alter_user_quotas(&names.kafka_user, &set, &unset).await?;
        }
        // The dead-letter topic takes any record the source topic takes.
        let source = ctx.kafka.describe_topic(&kafka_topic).await?.topic;
        let source_max =
            source.as_ref().and_then(|t| t.config.get(build::MAX_MESSAGE_BYTES)?.value.as_deref()?.parse().ok());
        let dlq = build::dead_letter_topic(&names, &sink.spec, partitions, rf, source_max);
        match ctx.kafka.describe_topic(&names.dead_letter_topic).await?.topic {
            None => {
                ctx.kafka.create_topic(&dlq).await?;
                ctx.event(sink, false, "DeadLetterTopicCreated", format!("created Kafka topic {}", dlq.name)).await;
            }
            Some(live) => {
                let changes = config_changes(&dlq, &live.config);
                if !changes.is_empty() {
                    let described = changes.iter().map(|c| c.description.as_str()).collect::<Vec<_>>().join(", ");
                    ctx.kafka
                        .alter_topic_config(&dlq.name, changes.into_iter().map(|c| (c.key, c.op)).collect())
                        .await?;
                    let note = format!("dead-letter topic {}: {described}", dlq.name);
                    ctx.event(sink, false, "DeadLetterTopicChanged", note).await;
                }
            }
        }
        Ok::<_, KafkaCallError>((write, held.into_iter().find(|m| *m != slot)))
    };
    let (wrote, previous_slot) = match kafka.await {
        Err(e) => return Ok(Err(e)),
        Ok(done) => done,
    };
    let secret = build::credentials_secret(&names, sink, &tenant.name, &owner, &login);
    if existing.as_ref().map(|s| (&s.data, rotation::stamp(s))) != Some((&secret.data, login.rotated_at.clone())) {
        secrets.patch(&names.object, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&secret)).await?;
    }
    if wrote {
        record_applied(&secrets, &names.object, APPLIED_KAFKA, &fingerprint).await?;
    }

    // Lag from the group's committed offsets, the dead-letter count, and where the topic
    // ends and which incarnation of it this is (for the write timestamps), read from Kafka.
    let (source, dead, topic_id) = match futures::try_join!(
        ctx.kafka.topic_progress(&kafka_topic, Some(&names.group)),
        ctx.kafka.topic_progress(&names.dead_letter_topic, None),
        ctx.kafka.topic_id(&kafka_topic),
    ) {
        Ok(found) => found,
        Err(e) => return Ok(Err(e)),
    };
    let Some(topic_id) = topic_id else {
        let message = format!("topic {kafka_topic} is not in Kafka (yet)");
        return Ok(Err(KafkaCallError { call: "DescribeTopics", message, transient: true, answered: false }));
    };
    status.lag = Some(source.lag);
    status.dead_letter_count = Some(dead.records);
    // The base the pods run with comes first: the ConfigMap keeps it even where an older
    // CRD (Helm does not upgrade CRDs) prunes `status.writeTime`.
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let live_config = config_maps.get_opt(&names.object).await?;
    let running = live_config.as_ref().and_then(build::parse_config);
    let previous = running.and_then(|c| c.write_time).or(status.write_time.clone());
    let write_time = WriteTime::choose(previous.as_ref(), &topic_id, Timestamp::now().as_microsecond(), source.end);
    status.write_time = Some(write_time.clone());

    // A replay, or where a new sink starts: the group's offsets move while it is empty.
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let live = deployments.get_opt(&names.object).await?;
    // The last replay as the Deployment (read fresh) records it: the sink object may come
    // from a watch cache that has not seen the status written by the previous reconcile.
    if let Some(recorded) = live.as_ref().and_then(replay::recorded) {
        status.replay = Some(recorded);
    }
    let stopping = match move_offsets(ctx, sink, live.as_ref(), &names, &kafka_topic, status).await? {
        Ok(stopping) => stopping,
        Err(Moved::Refused(e)) => return Ok(Err(e)),
        Err(Moved::Invalid(problem)) => return Ok(Ok(DesiredCondition::not_ready(Reason::InvalidSpec, problem))),
    };
    // Never more consumers than partitions: the extra ones would sit idle.
    let min = sink.spec.replicas.min(partitions);
    let replicas = match (&stopping, &sink.spec.autoscale) {
        (Some(_), _) => 0,
        (None, Some(auto)) => {
            // The replicas running now come from the Deployment itself, not a cached status.
            let running = live.as_ref().map(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1));
            let last = status.autoscale.as_ref();
            let decision = autoscale::decide(auto, min, partitions, source.lag, last, running, Timestamp::now());
            if let Some((reason, note)) = decision.event {
                ctx.event(sink, false, reason, note).await;
            }
            status.autoscale = Some(decision.status);
            decision.replicas
        }
        (None, None) => {
            status.autoscale = None;
            min
        }
    };

    let config = SinkConfig {
        sink: format!("{namespace}/{}", sink.name_any()),
        topic: kafka_topic,
        group: names.group.clone(),
        dead_letter_topic: names.dead_letter_topic.clone(),
        bootstrap_servers: ctx.config.kafka_client_bootstrap.clone(),
        security_protocol: ctx.config.kafka.security_protocol.clone(),
        sasl_mechanism: login.mechanism.clone(),
        // CAs are public: they travel in the ConfigMap, and a new CA rolls the pods.
        kafka_ca_pem: ctx.config.kafka.ca_pem.clone(),
        contact_points: ctx.config.cassandra.contact_points.clone(),
        cassandra_ca_pem: ctx.config.cassandra.ca_pem.clone(),
        keyspace: tenant.keyspace.clone(),
        // Where to start, replays and scaling are the operator's business: they roll no pod.
        spec: CassandraSinkSpec { start_from: None, replay: None, autoscale: None, ..sink.spec.clone() },
        max_in_flight: 256,
        commit_interval_ms: 1000,
        write_time: Some(write_time),
    };
    let (yaml, hash) = build::render_config(&config);
    let config_map = build::config_map(&names, sink, &tenant.name, &owner, &yaml);
    apply_unless_current(&config_maps, &names.object, live_config, config_map).await?;
    // The tenant's Cassandra login, which the pods read from the tenant's Secret.
    let tenant_text = |key| secret_text(tenant_secret.as_ref(), key).unwrap_or_default();
    let cassandra_user = tenant_text(build::CASSANDRA_USERNAME_KEY);
    let cassandra_password = tenant_text(build::CASSANDRA_PASSWORD_KEY);
    let credentials = [password, &login.mechanism, &cassandra_user, &cassandra_password].map(|c| c.as_bytes());
    let stamp = TemplateStamp {
        restart_hash: build::restart_hash(&hash, &credentials),
        cassandra_login: credential_fingerprint(&cassandra_user, &cassandra_password),
    };
    let image = &ctx.config.sink_image;
    let mut deployment = build::deployment(&names, sink, &tenant.name, &owner, image, replicas, &stamp);
    if let Some(done) = &status.replay {
        replay::record(&mut deployment, done);
    }
    let live = apply_unless_current(&deployments, &names.object, live, deployment).await?;
    // The previous Kafka credential of a rotation goes once no pod can still use it.
    if let Some(mechanism) = previous_slot.filter(|_| build::rolled_out(&live, build::CONFIG_HASH, &stamp.restart_hash))
    {
        if let Err(e) = ctx.kafka.delete_scram_credential(&names.kafka_user, mechanism).await {
            return Ok(Err(e));
        }
        let note = format!("removed the previous {} credential of Kafka user {}", mechanism.as_str(), names.kafka_user);
        ctx.event(sink, false, "PreviousCredentialsRemoved", note).await;
    }
    if let Some(why) = stopping {
        status.replicas = Some("0/0".into());
        return Ok(Ok(DesiredCondition::not_ready(Reason::Replaying, why)));
    }

    let ready = live.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
    status.ready_replicas = Some(ready);
    status.replicas = Some(format!("{ready}/{replicas}"));
    status.consumer_group = Some(names.group.clone());
    // Running once the fewest replicas the spec asks for are ready (autoscaling adds more).
    Ok(Ok(if ready >= min {
        let message =
            format!("{ready}/{replicas} sink replicas ready, writing to {}.{}", config.keyspace, sink.spec.table);
        DesiredCondition::ready(Reason::Running, message)
    } else {
        let capped = if replicas < sink.spec.replicas {
            format!(" (capped from {} at the topic's {partitions} partitions)", sink.spec.replicas)
        } else {
            String::new()
        };
        let message = format!(
            "{ready}/{replicas} sink replicas ready{capped}; see kubectl get pods -l {}={}",
            build::SINK_LABEL,
            sink.name_any()
        );
        DesiredCondition::not_ready(Reason::ReplicasNotReady, message)
    }))
}

/// Why offsets could not move: Kafka refused or failed, or the spec's position is invalid.
enum Moved {
    Refused(KafkaCallError),
    Invalid(String),
}

/// Carries out [`replay::step`]: `Ok(Some(why))` while the pods must stay stopped (a replay
/// waiting for its group to empty), `Ok(None)` when they may run. Records the replay in
/// `status.replay` and tells a move in an event.
async fn move_offsets(
    ctx: &Context,
    sink: &CassandraSink,
    live: Option<&Deployment>,
    names: &build::SinkNames,
    kafka_topic: &str,
    status: &mut CassandraSinkStatus,
) -> Result<std::result::Result<Option<String>, Moved>> {
    let pods = live.and_then(|d| d.status.as_ref()?.replicas).unwrap_or(0);
    let step = match replay::step(&sink.spec, status.replay.as_ref(), live.is_some(), pods) {
        Ok(step) => step,
        Err(problem) => return Ok(Err(Moved::Invalid(problem))),
    };
    let (id, from, to, unless_committed) = match step {
        replay::Step::Run => return Ok(Ok(None)),
        replay::Step::Stop(stopping) => {
            let why = format!(
                "replay {}: stopping the sink's {pods} pod(s) before consumer group {} moves to {}",
                stopping.id, names.group, stopping.from
            );
            status.replay = Some(stopping);
            return Ok(Ok(Some(why)));
        }
        replay::Step::Move { id, from, to, unless_committed } => (id, from, to, unless_committed),
    };
    let group = names.group.as_str();
    let record = |offsets: String| ReplayStatus {
        id: id.clone(),
        from: from.clone(),
        phase: ReplayPhase::Done,
        offsets: Some(offsets),
        time: Some(Timestamp::now().to_string()),
    };
    if unless_committed {
        match ctx.kafka.committed_offsets(group, kafka_topic).await {
            Err(e) => return Ok(Err(Moved::Refused(e))),
            Ok(committed) if !committed.is_empty() => {
                // A sink re-created under an old name: its group goes on where it was.
                status.replay = Some(record(format!("kept: {}", replay::describe(&committed))));
                return Ok(Ok(None));
            }
            Ok(_) => {}
        }
    }
    match ctx.kafka.reset_offsets(group, kafka_topic, to).await {
        Ok(offsets) => {
            let moved = replay::describe(&offsets);
            let note = format!("consumer group {group} set to {from} ({moved}) for {id}");
            ctx.event(sink, false, "OffsetsMoved", note).await;
            status.replay = Some(record(moved));
            Ok(Ok(None))
        }
        // The group still has a member (a pod draining): wait with the pods stopped.
        Err(e) if e.transient && e.answered && id != replay::START => {
            status.replay =
                Some(ReplayStatus { phase: ReplayPhase::Stopping, offsets: None, time: None, ..record(String::new()) });
            Ok(Ok(Some(format!("replay {id}: {e}"))))
        }
        Err(e) => Ok(Err(Moved::Refused(e))),
    }
}

/// Creates the sink's table when it is absent; otherwise checks it against the spec.
/// `Ok(Err(message))`: the table exists and differs (the message names the column).
async fn ensure_table(
    ctx: &Context,
    sink: &CassandraSink,
    keyspace: &str,
) -> Result<Result<(), String>, CassandraCallError> {
    let live = ctx.cassandra.table_columns(keyspace, &sink.spec.table).await?;
    if live.is_empty() {
        ctx.cassandra.create_table(create_table_cql(keyspace, &sink.spec)).await?;
        let note = format!("created table {keyspace}.{}", sink.spec.table);
        ctx.event(sink, false, "TableCreated", note).await;
        return Ok(Ok(()));
    }
    let missing = match check_mapping(&sink.spec, &live) {
        Ok(missing) => missing,
        Err(mismatch) => return Ok(Err(mismatch)),
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
    Ok(Ok(()))
}
