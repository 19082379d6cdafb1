//! Tenant reconcile: dereference → validate → build → apply → status.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::build::{self, Passwords, Rollup};
use super::validate::{CREDENTIALS_SECRET, ValidatedTenant, validate};
use crate::api::conditions::{self, DesiredCondition, READY};
use crate::api::{CassandraSink, Tenant, Topic};
use crate::controller::{Context, Error, FIELD_MANAGER, Result, TENANT_LABEL, error_policy, object_key, patch_status};

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
        .watches(Api::<Topic>::all(client.clone()), watcher::Config::default(), tenant_of_topic)
        .watches(Api::<CassandraSink>::all(client.clone()), watcher::Config::default(), tenant_of_sink)
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, |obj, err, ctx| error_policy(KIND, obj.as_ref(), err, &ctx), ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    let old_status = tenant.status.as_ref();
    let generation = tenant.metadata.generation;
    let key = object_key(tenant.as_ref());

    let v = match validate(&tenant) {
        Ok(v) => v,
        Err(message) => {
            let ready = DesiredCondition::not_ready("InvalidSpec", message);
            let status = build::status(old_status, None, &Rollup::default(), ready, generation, Timestamp::now());
            report_ready_change(&ctx, &tenant, &status).await;
            patch_status(&api, &tenant, old_status, &status).await?;
            ctx.succeeded(&key);
            return Ok(Action::await_change());
        }
    };

    if let Some(conflict) = ensure_namespace(&ctx, &tenant, &v).await? {
        let ready = DesiredCondition::not_ready("NamespaceTaken", conflict);
        let status = build::status(old_status, Some(&v), &Rollup::default(), ready, generation, Timestamp::now());
        report_ready_change(&ctx, &tenant, &status).await;
        patch_status(&api, &tenant, old_status, &status).await?;
        ctx.succeeded(&key);
        return Ok(ctx.resync());
    }
    ensure_credentials(&ctx, &tenant, &v).await?;

    let topics_api = Api::<Topic>::namespaced(ctx.client.clone(), &v.namespace);
    let sinks_api = Api::<CassandraSink>::namespaced(ctx.client.clone(), &v.namespace);
    let list = ListParams::default();
    let (topics, sinks) = futures::try_join!(topics_api.list(&list), sinks_api.list(&list))?;
    let rollup = build::rollup(&topics.items, &sinks.items);
    let status =
        build::status(old_status, Some(&v), &rollup, build::ready_condition(&rollup), generation, Timestamp::now());
    report_ready_change(&ctx, &tenant, &status).await;
    patch_status(&api, &tenant, old_status, &status).await?;
    ctx.succeeded(&key);
    Ok(ctx.resync())
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

async fn ensure_credentials(ctx: &Context, tenant: &Tenant, v: &ValidatedTenant) -> Result<()> {
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
    Ok(())
}

/// An event when Ready flips, so `kubectl describe tenant` tells the story.
async fn report_ready_change(ctx: &Context, tenant: &Tenant, new: &crate::api::TenantStatus) {
    let before = tenant.status.as_ref().and_then(|s| conditions::status_of(&s.conditions, READY).map(str::to_string));
    let Some(now) = new.conditions.iter().find(|c| c.type_ == READY) else { return };
    if before.as_deref() != Some(now.status.as_str()) {
        ctx.event(tenant, now.status != "True", &now.reason, now.message.clone()).await;
    }
}
