//! KafkaUser reconcile, as steps: the tenant (provisioned) → the spec checked against its
//! prefixes and quota share → the grants of the other tenants' topics it names (read) → the
//! login (`crate::login`: Secret trust, fingerprint first, Kafka, then the Secret) with
//! exactly its own ACLs and the granted ones → a rotation's previous slot once the tenant's
//! rotation is over → the status, published once. A grant deleted or a TopicGrant changed
//! reconciles the users that name another tenant's topic at once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::validate::{DesiredUser, SharedTopic, bindings, validate};
use crate::access::kafka::{AclBinding, ResourceType, user_principal};
use crate::api::Reason;
use crate::api::access::{KafkaUser, KafkaUserStatus, TopicGrant};
use crate::api::conditions::DesiredCondition;
use crate::controller::{Context, Error, Result, error_policy, finalized, object_key};
use crate::login::{self, LoginOf};
use crate::status;
use crate::step::{Halt, Settled, Step};
use crate::tenancy::{Tenancy, resolve_for_cleanup};
use crate::tenant::ValidatedTenant;

const KIND: &str = "KafkaUser";
const RETRY: Duration = Duration::from_secs(15);
/// Finalizer that removes the user's Kafka login, ACLs and quotas.
pub const FINALIZER: &str = "tributary.dev/kafkauser-cleanup";
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let users: Api<KafkaUser> = Api::all(ctx.client.clone());
    let controller = Controller::new(users, watcher::Config::default());
    let store = controller.store();
    // A grant made, changed or revoked: every user that names another tenant's topic looks
    // again at once (few do; each check is one list of the granter's TopicGrants).
    let sharing = move |_: TopicGrant| {
        store
            .state()
            .iter()
            .filter(|u| u.spec.acls.iter().any(|a| a.resource.tenant.is_some()))
            .map(|u| ObjectRef::from_obj(u.as_ref()))
            .collect::<Vec<_>>()
    };
    controller
        .watches(Api::<TopicGrant>::all(ctx.client.clone()), watcher::Config::default(), sharing)
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, |obj, err, ctx| error_policy(KIND, obj.as_ref(), err, &ctx), ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
}

pub(crate) async fn reconcile(user: Arc<KafkaUser>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let namespace = user.namespace().ok_or(Error::Missing("metadata.namespace"))?;
    let api: Api<KafkaUser> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = object_key(user.as_ref());
    let result = finalized(&api, FINALIZER, user, |event| async {
        match event {
            FinalizerEvent::Apply(user) => apply(user, &ctx, &api, &namespace).await,
            FinalizerEvent::Cleanup(user) => {
                crate::status::forget(&ctx, user.as_ref());
                cleanup(user, &ctx, &namespace).await
            }
        }
    })
    .await;
    ctx.ended(&key, result)
}

async fn apply(user: Arc<KafkaUser>, ctx: &Context, api: &Api<KafkaUser>, namespace: &str) -> Result<Action> {
    let old = user.status.clone().unwrap_or_default();
    let mut status = KafkaUserStatus { observed_generation: user.metadata.generation, ..old };
    let settled = match converge(ctx, &user, namespace, &mut status).await {
        Ok((ready, action)) => Settled { ready, action, retry: None },
        Err(halt) => halt.settle(KIND)?,
    };
    status::publish(ctx, api, user.as_ref(), status, &[settled.ready]).await?;
    match settled.retry {
        Some(e) => Err(e),
        None => Ok(settled.action),
    }
}

async fn converge(
    ctx: &Context,
    user: &KafkaUser,
    namespace: &str,
    status: &mut KafkaUserStatus,
) -> Step<(DesiredCondition, Action)> {
    let (tenant_object, tenant) = super::grant::tenant_of(ctx, namespace).await?;
    let share = tenant.quota_split(&ctx.config.default_quotas).each_user;
    let desired = validate(user, &tenant, &share).map_err(|message| {
        Halt::Wait(DesiredCondition::not_ready(Reason::InvalidSpec, message), Action::await_change())
    })?;
    status.username = Some(desired.user.clone());
    status.secret = Some(desired.secret.clone());
    let (granted, missing) = shared_access(ctx, &tenant, &desired).await?;
    let mut acls = desired.own.clone();
    let principal = user_principal(&desired.user);
    for asked in &granted {
        acls.extend(bindings(&principal, ResourceType::Topic, &asked.name, asked.pattern, &asked.operations));
    }

    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let of = LoginOf {
        obj: user,
        user: &desired.user,
        secret: &desired.secret,
        recorded: user.status.as_ref().and_then(|s| s.kafka_credential.clone()),
        legacy: false,
    };
    let login = login::settle(ctx, &of, &tenant, &secrets).await?;
    status.kafka_credential = Some(login.fingerprint.clone());
    let wrote = login::apply_user(ctx, &desired.user, &login, &acls, &desired.quotas).await?;
    let secret = user_secret(ctx, user, &tenant, &desired, &login.login)?;
    login::write_secret(&secrets, &secret, &login, wrote).await?;
    // A rotation's previous credential goes once the tenant's own rotation is over (its
    // grace period past and its sinks rolled).
    let credentials = tenant_object.status.as_ref().and_then(|s| s.credentials.as_ref());
    let rotation_over = credentials.is_some_and(|c| c.previous.is_none());
    login::retire_previous(ctx, user, &desired.user, &login, rotation_over).await?;

    status.acls = Some(i32::try_from(acls.len()).unwrap_or(i32::MAX));
    status.shared = granted.iter().map(describe).collect();
    Ok(readiness(&desired, &acls, &missing, ctx))
}

fn describe(s: &SharedTopic) -> String {
    let ops: Vec<String> = s.operations.iter().map(|o| format!("{o:?}")).collect();
    format!("{} ({}, from {})", s.name, ops.join(", "), s.tenant)
}

/// Ready when every declared topic of another tenant is granted; otherwise `NotGranted`
/// naming each one and why, looked at again on resync (and at once on a grant's change).
fn readiness(
    desired: &DesiredUser,
    acls: &BTreeSet<AclBinding>,
    missing: &[(SharedTopic, String)],
    ctx: &Context,
) -> (DesiredCondition, Action) {
    if missing.is_empty() {
        let message = format!(
            "Kafka user {} with {} ACL entries; its login is in Secret {}",
            desired.user,
            acls.len(),
            desired.secret
        );
        return (DesiredCondition::ready(Reason::Provisioned, message), ctx.resync());
    }
    let why: Vec<String> = missing.iter().map(|(s, why)| format!("{} of tenant {}: {why}", s.name, s.tenant)).collect();
    let message = format!(
        "not granted: {}. Its other ACLs are in effect; ask the owning tenant for a TopicGrant to tenant {}",
        why.join("; "),
        desired.user.split(".app.").next().unwrap_or_default()
    );
    (DesiredCondition::not_ready(Reason::NotGranted, message), Action::requeue(RETRY))
}

/// Which of the other tenants' topics the user names are granted now; the others with why not.
async fn shared_access(
    ctx: &Context,
    tenant: &ValidatedTenant,
    desired: &DesiredUser,
) -> Step<(Vec<SharedTopic>, Vec<(SharedTopic, String)>)> {
    let (mut granted, mut missing) = (Vec::new(), Vec::new());
    for asked in &desired.shared {
        match super::grant::granted(ctx, &tenant.name, asked).await? {
            Ok(()) => granted.push(asked.clone()),
            Err(why) => missing.push((asked.clone(), why)),
        }
    }
    Ok((granted, missing))
}

/// The user's Secret: the tenant bundle's Kafka half with this user's login.
fn user_secret(
    ctx: &Context,
    user: &KafkaUser,
    tenant: &ValidatedTenant,
    desired: &DesiredUser,
    login: &crate::sink::build::SinkLogin,
) -> Step<Secret> {
    let owner = user.controller_owner_ref(&()).ok_or(Error::Missing("metadata.uid"))?;
    let endpoints = crate::tenant::build::Endpoints::of(&ctx.config);
    let mechanism = match login.mechanism.as_str() {
        "SCRAM-SHA-256" => crate::api::tenant::SaslMechanism::ScramSha256,
        _ => crate::api::tenant::SaslMechanism::ScramSha512,
    };
    let data = crate::tenant::build::kafka_bundle(tenant, &desired.user, &login.password, mechanism, &endpoints);
    let mut annotations = std::collections::BTreeMap::new();
    if let Some(at) = &login.rotated_at {
        annotations.insert(crate::tenant::rotation::ROTATED_AT_ANNOTATION.to_string(), at.clone());
    }
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(desired.secret.clone()),
            namespace: user.namespace(),
            labels: Some(crate::tenant::build::labels(&tenant.name)),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v.into_bytes()))).collect()),
        ..Default::default()
    })
}

/// A deleted KafkaUser: its login, ACLs and quotas go (its Secret goes with it, owned).
async fn cleanup(user: Arc<KafkaUser>, ctx: &Context, namespace: &str) -> Result<Action> {
    // Also while the Tenant is being deleted (its namespace going takes its KafkaUsers with it).
    let Tenancy::Tenant(_, tenant) = resolve_for_cleanup(&ctx.client, &ctx.tenancy, namespace).await? else {
        return Ok(Action::await_change());
    };
    // Only a user this KafkaUser made (its status names it) is removed: a refused one's
    // name may be someone else's.
    let status = user.status.as_ref();
    let made = status.and_then(|s| s.kafka_credential.as_ref()).is_some();
    let Some(name) = status.and_then(|s| s.username.clone()).filter(|_| made) else {
        return Ok(Action::await_change());
    };
    if tenant.external_user.is_some() {
        return Ok(Action::await_change());
    }
    let (warning, note) = match login::remove_user(ctx, &name, CLEANUP_TIMEOUT).await {
        Ok(()) => (false, format!("deleted Kafka user {name} with its ACLs and quotas")),
        Err(why) => (true, format!("left behind Kafka user {name} with its ACLs ({why})")),
    };
    ctx.event(user.as_ref(), warning, "CleanedUp", note).await;
    Ok(Action::await_change())
}
