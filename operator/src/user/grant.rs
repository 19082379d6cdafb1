//! TopicGrant reconcile: a grant is in effect while it names a topic its tenant owns and both
//! Tenants are Ready; its status says so and lists who reads through it (the receiving
//! tenant's KafkaUsers that name a topic it covers). The ACLs themselves are the receiver's
//! (its KafkaUser reconcile writes and removes them), so a grant deleted or changed takes
//! access away at the receiver's next reconcile, which the change itself triggers.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::watcher;

use super::validate::{SharedTopic, grant_is_valid, grants};
use crate::api::access::{KafkaUser, TopicGrant, TopicGrantStatus};
use crate::api::conditions::DesiredCondition;
use crate::api::{CassandraSink, Reason};
use crate::controller::{Context, Error, Result, error_policy, object_key};
use crate::status;
use crate::step::{Halt, Settled, Step};
use crate::tenancy::{Tenancy, provisioned_tenant, resolve};

const KIND: &str = "TopicGrant";
const RETRY: Duration = Duration::from_secs(15);

pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let grants: Api<TopicGrant> = Api::all(ctx.client.clone());
    Controller::new(grants, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, |obj, err, ctx| error_policy(KIND, obj.as_ref(), err, &ctx), ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
}

pub(crate) async fn reconcile(grant: Arc<TopicGrant>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let namespace = grant.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let api: Api<TopicGrant> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = object_key(grant.as_ref());
    let mut status = TopicGrantStatus { observed_generation: grant.metadata.generation, ..Default::default() };
    let settled = match converge(&ctx, &grant, &namespace, &mut status).await {
        Ok(ready) => Settled { ready, action: ctx.resync(), retry: None },
        Err(halt) => halt.settle(KIND)?,
    };
    let published = status::publish(&ctx, &api, grant.as_ref(), status, &[settled.ready]).await;
    let result = published.and_then(|()| settled.retry.map_or(Ok(settled.action), Err));
    ctx.ended(&key, result)
}

async fn converge(
    ctx: &Context,
    grant: &TopicGrant,
    namespace: &str,
    status: &mut TopicGrantStatus,
) -> Step<DesiredCondition> {
    let wait =
        |reason, message: String| Halt::Wait(DesiredCondition::not_ready(reason, message), Action::requeue(RETRY));
    let (_, owner) = tenant_of(ctx, namespace).await?;
    grant_is_valid(grant, &owner).map_err(|message| {
        Halt::Wait(DesiredCondition::not_ready(Reason::InvalidSpec, message), Action::await_change())
    })?;
    let receiver = &grant.spec.tenant;
    let Some((_, receiving)) = provisioned_tenant(&ctx.client, &ctx.tenancy, receiver).await? else {
        return Err(wait(
            Reason::TenantNotReady,
            format!("Tenant {receiver} does not exist or is not Ready: nothing is shared until it is"),
        ));
    };
    // Who reads through it: the receiver's KafkaUsers that name a topic this grant covers.
    let users =
        Api::<KafkaUser>::namespaced(ctx.client.clone(), &receiving.namespace).list(&ListParams::default()).await?;
    let readers: Vec<String> = users
        .items
        .iter()
        .filter(|u| {
            u.spec.acls.iter().any(|a| {
                let asked = SharedTopic {
                    tenant: owner.name.clone(),
                    name: a.resource.name.clone(),
                    pattern: a.resource.pattern_type,
                    operations: a.operations.clone(),
                };
                a.resource.tenant.as_deref() == Some(owner.name.as_str())
                    && grants(grant, &owner, receiver, &asked).is_ok()
            })
        })
        .map(|u| format!("KafkaUser {}/{}", receiving.namespace, u.name_any()))
        .collect();
    // And the receiver's sinks that stream a topic it covers, with their lag.
    let sinks =
        Api::<CassandraSink>::namespaced(ctx.client.clone(), &receiving.namespace).list(&ListParams::default()).await?;
    let mut readers = readers;
    for sink in sinks.items.iter().filter(|s| s.spec.topic_tenant.as_deref() == Some(owner.name.as_str())) {
        let asked = SharedTopic {
            tenant: owner.name.clone(),
            name: sink.spec.topic.clone(),
            pattern: crate::api::access::AclPatternType::Literal,
            operations: vec![crate::api::access::UserOperation::Read],
        };
        if grants(grant, &owner, receiver, &asked).is_ok() {
            let lag = sink.status.as_ref().and_then(|s| s.lag).map_or_else(|| "unknown".into(), |l| l.to_string());
            readers.push(format!("CassandraSink {}/{} (lag {lag})", receiving.namespace, sink.name_any()));
        }
    }
    status.reader_count = Some(i32::try_from(readers.len()).unwrap_or(i32::MAX));
    status.readers = readers;
    let message = format!(
        "{} ({:?}) shared with tenant {receiver} ({:?})",
        grant.spec.topic, grant.spec.pattern_type, grant.spec.access
    );
    Ok(DesiredCondition::ready(Reason::Provisioned, message))
}

/// The provisioned tenant of `namespace`; `NoTenant` or `TenantNotReady` until there is one.
pub(crate) async fn tenant_of(
    ctx: &Context,
    namespace: &str,
) -> Step<(Arc<crate::api::Tenant>, Arc<crate::tenant::ValidatedTenant>)> {
    let wait =
        |reason, message: String| Halt::Wait(DesiredCondition::not_ready(reason, message), Action::requeue(RETRY));
    match resolve(&ctx.client, &ctx.tenancy, namespace).await? {
        Tenancy::None(message) => Err(wait(Reason::NoTenant, message)),
        Tenancy::Tenant(t, _) if !t.provisioned() => {
            Err(wait(Reason::TenantNotReady, format!("Tenant {} is not provisioned yet", t.name_any())))
        }
        Tenancy::Tenant(t, v) => Ok((t, v)),
    }
}

/// Whether `asked` (another tenant's topic) is granted to tenant `receiver` now: its owner is
/// a provisioned Tenant (Ready) and one of its TopicGrants covers the name and operations.
/// `Err` says why not.
pub(crate) async fn granted(ctx: &Context, receiver: &str, asked: &SharedTopic) -> Step<Result<(), String>> {
    let Some((_, owner)) = provisioned_tenant(&ctx.client, &ctx.tenancy, &asked.tenant).await? else {
        return Ok(Err(format!("Tenant {} does not exist or is not Ready", asked.tenant)));
    };
    let list = Api::<TopicGrant>::namespaced(ctx.client.clone(), &owner.namespace).list(&ListParams::default()).await?;
    let answers: Vec<Result<(), String>> = list
        .items
        .iter()
        .filter(|g| g.metadata.deletion_timestamp.is_none())
        .map(|g| grants(g, &owner, receiver, asked))
        .collect();
    if answers.iter().any(Result::is_ok) {
        return Ok(Ok(()));
    }
    // Grants to other tenants say nothing to this one.
    let reasons: Vec<String> =
        answers.into_iter().filter_map(Result::err).filter(|e| !e.contains("grants tenant")).collect();
    Ok(Err(if reasons.is_empty() {
        format!("no TopicGrant in namespace {} grants tenant {receiver}", owner.namespace)
    } else {
        reasons.join(", ")
    }))
}
