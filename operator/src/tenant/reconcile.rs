//! Tenant reconcile: dereference → validate → build → apply → status.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::build::{self, Passwords, Rollup};
use super::validate::{CREDENTIALS_SECRET, ValidatedTenant, validate};
use crate::api::conditions::DesiredCondition;
use crate::api::{CassandraSink, DeletionPolicy, Tenant, Topic};
use crate::controller::{
    Context, Error, FIELD_MANAGER, Result, TENANT_LABEL, error_policy, object_key, patch_status, readiness_changes,
};
use crate::external::cassandra::{CassandraCallError, grant_changes, replication_map};
use crate::external::kafka::KafkaCallError;
use crate::external::kafka::quotas::quota_changes;

const KIND: &str = "Tenant";

pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let owned = watcher::Config::default().labels(TENANT_LABEL);
    // A Topic or sink changing its readiness changes its tenant's roll-up.
    let tenant_of_topic = |t: Topic| t.status.and_then(|s| s.tenant).map(|n| ObjectRef::<Tenant>::new(&n));
    let tenant_of_sink = |s: CassandraSink| s.status.and_then(|s| s.tenant).map(|n| ObjectRef::<Tenant>::new(&n));
    Controller::new(Api::<Tenant>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Namespace>::all(client.clone()), owned.clone())
        .owns(Api::<Secret>::all(client.clone()), owned)
        .watches_stream(readiness_changes(client.clone(), Topic::readiness), tenant_of_topic)
        .watches_stream(readiness_changes(client.clone(), CassandraSink::readiness), tenant_of_sink)
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, |obj, err, ctx| error_policy(KIND, obj.as_ref(), err, &ctx), ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// Finalizer for what a Tenant creates outside Kubernetes (Kafka user and ACLs).
pub const FINALIZER: &str = "tributary.dev/tenant-cleanup";
/// Bound on the whole cleanup of a deleted Tenant: a deletion never hangs on Kafka.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(20);

async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    finalizer(&api, FINALIZER, tenant, |event| async {
        match event {
            FinalizerEvent::Apply(tenant) => apply(tenant, ctx.clone()).await,
            FinalizerEvent::Cleanup(tenant) => cleanup(tenant, ctx.clone()).await,
        }
    })
    .await
    .map_err(Error::from)
}

async fn apply(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action> {
    let key = object_key(tenant.as_ref());
    let none = Rollup::default();
    let v = match validate(&tenant) {
        Ok(v) => v,
        Err(message) => {
            publish_status(&ctx, &tenant, None, &none, DesiredCondition::not_ready("InvalidSpec", message)).await?;
            ctx.succeeded(&key);
            return Ok(Action::await_change());
        }
    };

    if let Some(message) = reserved_name(&ctx, &v) {
        publish_status(&ctx, &tenant, Some(&v), &none, DesiredCondition::not_ready("InvalidSpec", message)).await?;
        ctx.succeeded(&key);
        return Ok(Action::await_change());
    }
    if let Some(conflict) = ensure_namespace(&ctx, &tenant, &v).await? {
        publish_status(&ctx, &tenant, Some(&v), &none, DesiredCondition::not_ready("NamespaceTaken", conflict)).await?;
        ctx.succeeded(&key);
        return Ok(ctx.resync());
    }
    let passwords = ensure_credentials(&ctx, &tenant, &v).await?;
    let provisioned = match ensure_kafka_user(&ctx, &v, &passwords).await {
        Err(e) => Err(("Kafka", e.to_string(), e.transient)),
        Ok(()) => ensure_cassandra(&ctx, &v, &passwords).await.map_err(|e| ("Cassandra", e.to_string(), e.transient)),
    };
    if let Err((system, error, transient)) = provisioned {
        if !transient {
            // Refused for good: wait for a spec change instead of retrying in a loop.
            let message = format!("{error}; change the Tenant's spec");
            let reason = if system == "Kafka" { "KafkaRejected" } else { "CassandraRejected" };
            let ready = DesiredCondition::not_ready(reason, message);
            publish_status(&ctx, &tenant, Some(&v), &none, ready).await?;
            return Ok(Action::await_change());
        }
        let message = format!("{error}; retrying. Check that {system} is up and the operator's {system} settings");
        let reason = if system == "Kafka" { "KafkaUnavailable" } else { "CassandraUnavailable" };
        let ready = DesiredCondition::not_ready(reason, message);
        publish_status(&ctx, &tenant, Some(&v), &none, ready).await?;
        return Err(if system == "Kafka" { Error::Kafka(error) } else { Error::Cassandra(error) });
    }

    let topics_api = Api::<Topic>::namespaced(ctx.client.clone(), &v.namespace);
    let sinks_api = Api::<CassandraSink>::namespaced(ctx.client.clone(), &v.namespace);
    let list = ListParams::default();
    let (topics, sinks) = futures::try_join!(topics_api.list(&list), sinks_api.list(&list))?;
    let rollup = build::rollup(&topics.items, &sinks.items);
    publish_status(&ctx, &tenant, Some(&v), &rollup, build::ready_condition(&rollup)).await?;
    ctx.succeeded(&key);
    Ok(ctx.resync())
}

/// Computes the status from what this reconcile found, tells a Ready change in an event,
/// and writes the status if it changed.
async fn publish_status(
    ctx: &Context,
    tenant: &Tenant,
    v: Option<&ValidatedTenant>,
    rollup: &Rollup,
    ready: DesiredCondition,
) -> Result<()> {
    let old = tenant.status.as_ref();
    let status = build::status(old, v, rollup, ready, tenant.metadata.generation, Timestamp::now());
    ctx.report_ready_change(tenant, old.map(|s| s.conditions.as_slice()).unwrap_or_default(), &status.conditions).await;
    patch_status(&Api::<Tenant>::all(ctx.client.clone()), tenant, old, &status).await
}

/// The tenant's SCRAM credential (written only when this process has not applied this
/// password yet), its ACL set and its client quotas, converged: missing entries added,
/// stray ones removed, nothing written when Kafka already matches.
async fn ensure_kafka_user(ctx: &Context, v: &ValidatedTenant, passwords: &Passwords) -> Result<(), KafkaCallError> {
    let (applied, record) = ctx.applied_before(format!("kafka:{}", v.kafka_user), &passwords.kafka);
    if !applied {
        ctx.kafka.upsert_scram_user(&v.kafka_user, &passwords.kafka).await?;
        record();
    }
    let current = ctx.kafka.describe_acls(&build::principal(v)).await?;
    let (add, remove) = build::acl_changes(&build::desired_acls(v), &current);
    ctx.kafka.create_acls(add).await?;
    ctx.kafka.delete_acls(remove).await?;
    let live = ctx.kafka.describe_user_quotas(&v.kafka_user).await?;
    let (set, remove) = quota_changes(&v.quotas, &live);
    ctx.kafka.alter_user_quotas(&v.kafka_user, &set, &remove).await
}

/// Names a tenant may not take: the operator's own admin principals (a tenant must never
/// receive their credentials) and Cassandra's system keyspaces.
fn reserved_name(ctx: &Context, v: &ValidatedTenant) -> Option<String> {
    if v.kafka_user == ctx.config.kafka.username {
        return Some(format!("Kafka user {} is the operator's admin principal: rename the Tenant", v.kafka_user));
    }
    if v.cassandra_role == ctx.config.cassandra.username || v.keyspace.starts_with("system") {
        return Some(format!(
            "keyspace/role {} is reserved for Cassandra or the operator: set spec.cassandra.keyspace to another name",
            v.keyspace
        ));
    }
    None
}

/// The tenant's keyspace (replication converged), its login role (password set when this
/// process has not applied it yet) and exactly the tenant grants on the keyspace.
async fn ensure_cassandra(ctx: &Context, v: &ValidatedTenant, passwords: &Passwords) -> Result<(), CassandraCallError> {
    let cassandra = &ctx.cassandra;
    match cassandra.keyspace_replication(&v.keyspace).await? {
        None => cassandra.put_keyspace(&v.keyspace, &v.replication, false).await?,
        Some(live) if live != replication_map(&v.replication) => {
            cassandra.put_keyspace(&v.keyspace, &v.replication, true).await?
        }
        Some(_) => {}
    }
    let role = cassandra.role(&v.cassandra_role).await?;
    if role.as_ref().is_some_and(|r| r.superuser) {
        return Err(CassandraCallError {
            call: "CREATE ROLE",
            message: format!(
                "role {} already exists as a superuser; the operator never hands one out: set spec.cassandra.keyspace to another name",
                v.cassandra_role
            ),
            transient: false,
        });
    }
    let (applied, record) = ctx.applied_before(format!("cassandra:{}", v.cassandra_role), &passwords.cassandra);
    if role.is_none() || !applied || role.as_ref().is_some_and(|r| !r.login) {
        cassandra.put_role(&v.cassandra_role, &passwords.cassandra, role.is_some()).await?;
        record();
    }
    let (add, remove) = grant_changes(&v.keyspace, &cassandra.permissions(&v.cassandra_role).await?);
    for permission in add {
        cassandra.grant(&v.cassandra_role, permission, &v.keyspace).await?;
    }
    for (resource, permission) in remove {
        cassandra.revoke(&v.cassandra_role, &permission, &resource).await?;
    }
    Ok(())
}

/// A deleted Tenant: `Retain` keeps everything outside Kubernetes; `Delete` removes the
/// Kafka user, its ACLs and its quotas. Bounded in time; what stays behind is told in an event, and the
/// finalizer is released either way so the deletion never hangs.
async fn cleanup(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action> {
    let Ok(v) = validate(&tenant) else {
        // An invalid Tenant never provisioned anything.
        return Ok(Action::await_change());
    };
    if reserved_name(&ctx, &v).is_some() {
        // Never provisioned either, and its names are the operator's own: touch nothing.
        return Ok(Action::await_change());
    }
    let mut left_behind = Vec::new();
    match v.deletion_policy {
        DeletionPolicy::Retain => left_behind = build::retained(&v),
        DeletionPolicy::Delete => {
            let principal = build::principal(&v);
            let delete = async {
                let current = ctx.kafka.describe_acls(&principal).await?;
                ctx.kafka.delete_acls(current).await?;
                let quotas: Vec<String> = ctx.kafka.describe_user_quotas(&v.kafka_user).await?.into_keys().collect();
                ctx.kafka.alter_user_quotas(&v.kafka_user, &Default::default(), &quotas).await?;
                ctx.kafka.delete_scram_user(&v.kafka_user).await
            };
            let drop_cassandra = async {
                ctx.cassandra.drop_keyspace(&v.keyspace).await?;
                ctx.cassandra.drop_role(&v.cassandra_role).await
            };
            // Both systems at once, each bounded: one being down does not delay the other.
            let (kafka, cassandra) = tokio::join!(
                tokio::time::timeout(CLEANUP_TIMEOUT, delete),
                tokio::time::timeout(CLEANUP_TIMEOUT, drop_cassandra)
            );
            match kafka {
                Ok(Ok(())) => {
                    ctx.applied_credentials
                        .lock()
                        .expect("credentials lock")
                        .remove(&format!("kafka:{}", v.kafka_user));
                }
                Ok(Err(e)) => left_behind.push(format!("Kafka user {} with its ACLs ({e})", v.kafka_user)),
                Err(_) => left_behind.push(format!(
                    "Kafka user {} with its ACLs (Kafka did not answer within {CLEANUP_TIMEOUT:?})",
                    v.kafka_user
                )),
            }
            let what = format!("Cassandra keyspace {} and role {}", v.keyspace, v.cassandra_role);
            match cassandra {
                Ok(Ok(())) => {
                    let key = format!("cassandra:{}", v.cassandra_role);
                    ctx.applied_credentials.lock().expect("credentials lock").remove(&key);
                }
                Ok(Err(e)) => left_behind.push(format!("{what} ({e})")),
                Err(_) => left_behind.push(format!("{what} (Cassandra did not answer within {CLEANUP_TIMEOUT:?})")),
            }
            left_behind.push(format!(
                "Kafka topics with prefix {} (each Topic follows its own deletionPolicy)",
                v.topic_prefix
            ));
        }
    }
    if left_behind.is_empty() {
        ctx.event(tenant.as_ref(), false, "CleanedUp", format!("deleted Kafka user {} and its ACLs", v.kafka_user))
            .await;
    } else {
        let note = format!("left behind: {}", left_behind.join("; "));
        tracing::info!(tenant = %v.name, %note, "tenant deleted");
        ctx.event(tenant.as_ref(), v.deletion_policy == DeletionPolicy::Delete, "LeftBehind", note).await;
    }
    Ok(Action::await_change())
}

/// Creates (and owns) the namespace, or labels one that already exists. Returns a message
/// when the namespace belongs to another tenant.
async fn ensure_namespace(ctx: &Context, tenant: &Tenant, v: &ValidatedTenant) -> Result<Option<String>> {
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let owner = tenant.controller_owner_ref(&()).ok_or(Error::Missing("metadata.uid"))?;
    let existing = namespaces.get_opt(&v.namespace).await?;
    let own_it = match &existing {
        None => true,
        Some(ns) => {
            if let Some(other) = ns.labels().get(TENANT_LABEL).filter(|t| **t != v.name) {
                return Ok(Some(format!(
                    "namespace {} belongs to Tenant {other}: set spec.namespace to a namespace of its own",
                    v.namespace
                )));
            }
            ns.owner_references().iter().any(|o| o.uid == owner.uid)
        }
    };
    let desired = build::namespace(v, own_it.then_some(owner));
    namespaces.patch(&v.namespace, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired)).await?;
    if existing.is_none() {
        ctx.event(tenant, false, "NamespaceCreated", format!("created namespace {}", v.namespace)).await;
    }
    Ok(None)
}

async fn ensure_credentials(ctx: &Context, tenant: &Tenant, v: &ValidatedTenant) -> Result<Passwords> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &v.namespace);
    let existing = secrets.get_opt(CREDENTIALS_SECRET).await?;
    let passwords = Passwords::from_secret_or_new(existing.as_ref());
    let owner = tenant.controller_owner_ref(&()).ok_or(Error::Missing("metadata.uid"))?;
    let desired = build::credentials_secret(
        v,
        owner,
        &ctx.config.kafka_client_bootstrap,
        &ctx.config.cassandra.contact_points,
        &passwords,
    );
    if existing.as_ref().map(|s| (&s.data, &s.metadata.labels)) != Some((&desired.data, &desired.metadata.labels)) {
        secrets.patch(CREDENTIALS_SECRET, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired)).await?;
    }
    Ok(passwords)
}
