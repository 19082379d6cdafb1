//! Tenant reconcile: dereference → validate → build → apply → status.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::build::{self, Passwords, Rollup};
use super::claim;
use super::fence;
use super::retire::{previous_in_use, retire_previous};
use super::rotation::{ROTATED_AT_ANNOTATION, ROTATION_ANNOTATION, Rotation, second_login, stamp};
use super::validate::{CREDENTIALS_SECRET, ValidatedTenant, validate};
use crate::access::cassandra::{grant_changes, replication_map};
use crate::access::kafka::ScramMechanism;
use crate::access::kafka::acl_changes;
use crate::access::quotas::quota_changes;
use crate::api::Reason;
use crate::api::conditions::DesiredCondition;
use crate::api::tenant::{CredentialsStatus, TenantStatus};
use crate::api::{CassandraSink, TENANT_LABEL, Tenant, Topic};
use crate::controller::{
    APPLIED_CASSANDRA, APPLIED_KAFKA, Context, Error, FIELD_MANAGER, Result, apply_if_changed, apply_unless_current,
    credential_fingerprint, error_policy, finalized, object_key, readiness_changes, record_applied, recorded,
    spec_changes,
};
use crate::external::cassandra::CassandraCallError;
use crate::external::kafka::KafkaCallError;
use crate::resync::Resyncs;
use crate::status::{self, refused_for_good};
use crate::step::{Halt, Step};

const KIND: &str = "Tenant";

pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let owned = watcher::Config::default().labels(TENANT_LABEL);
    // A Topic or sink changing its readiness changes its tenant's roll-up.
    let tenant_of = |tenant: Option<&str>| tenant.map(ObjectRef::<Tenant>::new);
    let tenant_of_topic = move |t: Arc<Topic>| tenant_of(t.readiness().0);
    let tenant_of_sink = move |s: Arc<CassandraSink>| tenant_of(s.readiness().0);
    let watches = &ctx.watches;
    let tenants = watches.tenants.watched.store.clone();
    let resyncs = Resyncs::new(KIND, ctx.config.resync, ctx.config.concurrency, ctx.metrics.clone());
    let controller = Controller::for_shared_stream(spec_changes(&watches.tenants), tenants.clone())
        .reconcile_on(resyncs.due(tenants))
        // Secrets are not watched: the operator may read only the Secrets it names (no list or
        // watch of Secrets cluster-wide); a credentials Secret changed by hand is put back on resync.
        .owns(Api::<Namespace>::all(client.clone()), owned)
        .watches_shared_stream(readiness_changes(&watches.topics, Topic::readiness), tenant_of_topic)
        .watches_shared_stream(readiness_changes(&watches.sinks, CassandraSink::readiness), tenant_of_sink)
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(resyncs.around(reconcile), |obj, err, ctx| error_policy(KIND, obj.as_ref(), err, &ctx), ctx.clone())
        .for_each(|_| futures::future::ready(()));
    // The tenants' usage is measured beside the controller, and stops with it.
    tokio::select! {
        _ = controller => {}
        _ = super::usage::run(ctx) => {}
    }
}

/// Finalizer for what a Tenant creates outside Kubernetes (Kafka user and ACLs).
pub const FINALIZER: &str = "tributary.dev/tenant-cleanup";

pub(crate) async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    let key = object_key(tenant.as_ref());
    let result = finalized(&api, FINALIZER, tenant, |event| async {
        match event {
            FinalizerEvent::Apply(tenant) => apply(tenant, ctx.clone()).await,
            FinalizerEvent::Cleanup(tenant) => {
                crate::status::forget(&ctx, tenant.as_ref());
                ctx.metrics.previous_credentials(&tenant.name_any(), None);
                super::cleanup::cleanup(tenant, ctx.clone()).await
            }
        }
    })
    .await;
    ctx.ended(&key, result)
}

/// One pass over a live Tenant, as steps: validate → ownership (read only; a refusal shows
/// no namespace or Secret) → credentials (kept, or a rotation's) → Kubernetes (namespace,
/// Secrets access, fence) → Kafka and Cassandra at once → the Secret → a rotation's previous
/// logins → the status, published once.
async fn apply(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action> {
    if refused_for_good(tenant.as_ref()) {
        return Ok(Action::await_change());
    }
    if let (Some(left), Ok(v)) = (ctx.provisioned_for(tenant.as_ref()), validate(&tenant)) {
        return rollup_only(&ctx, &tenant, &v, left).await;
    }
    ctx.forget_provisioned(tenant.as_ref());
    let invalid =
        |message| Halt::Wait(DesiredCondition::not_ready(Reason::InvalidSpec, message), Action::await_change());
    let v = match validate(&tenant) {
        Ok(v) => v,
        Err(message) => return halted(&ctx, &tenant, None, invalid(message)).await,
    };
    if let Some(message) = claim::reserved_name(&ctx, &v) {
        return halted(&ctx, &tenant, Some(&v), invalid(message)).await;
    }
    let owned = match ownership(&ctx, &tenant, &v).await {
        Ok(owned) => owned,
        Err(halt) => return halted(&ctx, &tenant, None, halt).await,
    };
    match provision(&ctx, &tenant, &v, owned).await {
        Ok(done) => finish(&ctx, &tenant, &v, done).await,
        Err(halt) => halted(&ctx, &tenant, Some(&v), halt).await,
    }
}

/// A reconcile that stopped short: its condition published (`shown`: the validated spec the
/// status may show), and its next look or the error that retries it.
async fn halted(ctx: &Context, tenant: &Tenant, shown: Option<&ValidatedTenant>, halt: Halt) -> Result<Action> {
    let settled = halt.settle(KIND)?;
    publish_status(ctx, tenant, shown, &Rollup::default(), settled.ready).await?;
    if let Some(e) = settled.retry {
        return Err(e);
    }
    Ok(settled.action)
}

/// What the ownership step read, for the steps after it.
struct Owned {
    namespace: Option<Namespace>,
    secret: Option<Secret>,
    /// Provisioned by an operator from before claims were recorded.
    legacy: bool,
}

/// Whether everything the Tenant names is its own, before anything is written anywhere: the
/// namespace, the other Tenants' claims, and (for a Tenant not yet claimed) Kafka's and
/// Cassandra's principals and names. A refusal is looked at again on resync (the holder may
/// go away).
async fn ownership(ctx: &Context, tenant: &Arc<Tenant>, v: &ValidatedTenant) -> Step<Owned> {
    let refused = |refusal: claim::Refusal| {
        Halt::Wait(DesiredCondition::not_ready(refusal.reason, refusal.message), ctx.resync())
    };
    let namespace = Api::<Namespace>::all(ctx.client.clone()).get_opt(&v.namespace).await?;
    // Every other Tenant, for the claims: from the watched copies (a list of every Tenant on
    // each reconcile was quadratic in the number of Tenants), or listed while they lag.
    let tenants: Vec<Arc<Tenant>> = match ctx.tenancy.tenants_including(tenant) {
        Some(tenants) => tenants,
        None => {
            let listed = Api::<Tenant>::all(ctx.client.clone()).list(&ListParams::default()).await?.items;
            listed.into_iter().map(Arc::new).collect()
        }
    };
    let refusal = claim::namespace_refusal(tenant, v, namespace.as_ref(), &ctx.config.lease_namespace)
        .or_else(|| claim::holder(tenant, v, tenants.iter().map(|t| t.as_ref()), &ctx.tenancy.validations));
    if let Some(refusal) = refusal {
        return Err(refused(refusal));
    }
    let secret = match &namespace {
        Some(_) => {
            ensure_secrets_access(ctx, tenant, v).await?;
            Api::<Secret>::namespaced(ctx.client.clone(), &v.namespace).get_opt(CREDENTIALS_SECRET).await?
        }
        None => None,
    };
    let legacy = claim::provisioned_before_claims(tenant, namespace.as_ref(), secret.as_ref());
    let unclaimed = !claim::is_claimed(tenant) && !legacy;
    if unclaimed && let Some(refusal) = claim::existing_elsewhere(ctx, v).await? {
        return Err(refused(refusal));
    }
    Ok(Owned { namespace, secret, legacy })
}

/// The credentials this pass writes: the Secret's, new ones after a rotation falls due
/// (`rotated_because`), or new ones where none are trusted (a rotation done now).
struct Credentials {
    passwords: Passwords,
    rotation: Rotation,
    rotated_because: Option<String>,
    /// A rotation is due but waits for the previous one's slot.
    rotation_waits: bool,
}

async fn credentials(ctx: &Context, tenant: &Tenant, v: &ValidatedTenant, owned: &Owned) -> Step<Credentials> {
    let now = Timestamp::now();
    let external = v.external_user.is_some();
    let trusted = claim::trusted_passwords(tenant, v, owned.secret.as_ref(), owned.legacy);
    let mut chosen = match (trusted, Rotation::of(tenant)) {
        (Some(current), Some(last)) => match last.due(&v.rotation, now) {
            // A rotation never overwrites the slot the previous one still needs: it waits.
            Some(_) if previous_in_use(ctx, v, &current).await => {
                Credentials { passwords: current, rotation: last, rotated_because: None, rotation_waits: true }
            }
            Some(why) => Credentials {
                passwords: current.rotated(external),
                rotation: Rotation::now(&v.rotation, now),
                rotated_because: Some(why),
                rotation_waits: false,
            },
            None => Credentials { passwords: current, rotation: last, rotated_because: None, rotation_waits: false },
        },
        _ => Credentials {
            passwords: Passwords::generate(),
            rotation: Rotation::now(&v.rotation, now),
            rotated_because: None,
            rotation_waits: false,
        },
    };
    if let Some(external) = &v.external_user {
        chosen.passwords.kafka = external_password(ctx, external).await?;
    }
    Ok(chosen)
}

/// What [`provision`] leaves for the status.
struct Provisioned {
    as_stored: kube::api::ObjectMeta,
    credentials: CredentialsStatus,
    /// What the previous credentials still wait for, and when to look again.
    waiting: Option<(String, Duration)>,
    rotation_waits: bool,
}

/// Everything the Tenant is given, in the documented order: its claim recorded, the
/// namespace and its fence, then Kafka and Cassandra at once, then the Secret, then a
/// rotation's previous logins retired.
async fn provision(ctx: &Context, tenant: &Tenant, v: &ValidatedTenant, owned: Owned) -> Step<Provisioned> {
    let chosen = credentials(ctx, tenant, v, &owned).await?;
    let (passwords, rotation) = (&chosen.passwords, &chosen.rotation);
    let external = v.external_user.is_some();
    let as_stored = record_claim(ctx, tenant, &claim::digest_basis(passwords, external), rotation).await?;
    if let Some(why) = &chosen.rotated_because {
        let note = format!(
            "new credentials in Secret {}/{CREDENTIALS_SECRET} ({why}); the previous ones keep working until every \
             sink runs with the new ones and {} s have passed",
            v.namespace, v.rotation.grace_period_seconds
        );
        ctx.event(tenant, false, "CredentialsRotated", note).await;
    }
    ensure_namespace(ctx, tenant, v, owned.namespace.as_ref()).await?;
    if owned.namespace.is_none() {
        ensure_secrets_access(ctx, tenant, v).await?;
    }
    if let Some(uncounted) = ensure_fence(ctx, tenant, v).await? {
        // Until Kubernetes counts the quota it refuses every object the quota covers: the
        // Tenant is not Ready before its team can create a Topic.
        let message = format!(
            "waiting for Kubernetes to count ResourceQuota {}/{} ({uncounted} not counted yet; a new cluster's quota \
             controller learns new resources within about 30 s)",
            v.namespace,
            fence::QUOTA
        );
        let pending = DesiredCondition::not_ready(Reason::Pending, message);
        return Err(Halt::Wait(pending, Action::requeue(Duration::from_secs(3))));
    }
    let (logins, previous_kafka, previous_cassandra) = write_logins(ctx, v, passwords, owned.secret.as_ref()).await?;
    ensure_credentials(ctx, tenant, v, owned.secret.as_ref(), passwords, rotation).await?;
    logins.record(ctx, v).await?;
    // The previous credentials, once nobody the operator knows of needs them.
    let cassandra_fp = &logins.cassandra_fp;
    let waiting = retire_previous(ctx, tenant, v, rotation, previous_kafka, previous_cassandra, cassandra_fp).await?;
    let credentials = CredentialsStatus {
        rotated_at: Some(rotation.at.clone()),
        rotation_request: rotation.request.clone(),
        kafka_mechanism: Some(passwords.kafka_mechanism(v).as_str().to_string()),
        cassandra_username: Some(passwords.cassandra_user(v)),
        previous: waiting.as_ref().map(|(message, _)| message.clone()),
    };
    Ok(Provisioned { as_stored, credentials, waiting, rotation_waits: chosen.rotation_waits })
}

/// The logins written to Kafka and Cassandra, to be recorded on the Secret once it holds them.
struct Logins {
    kafka_fp: String,
    kafka_wrote: bool,
    cassandra_fp: String,
    cassandra_wrote: bool,
}

impl Logins {
    /// Records on the Secret each password written this pass (see APPLIED_KAFKA).
    async fn record(&self, ctx: &Context, v: &ValidatedTenant) -> Result<()> {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &v.namespace);
        if self.kafka_wrote {
            record_applied(&secrets, CREDENTIALS_SECRET, APPLIED_KAFKA, &self.kafka_fp).await?;
        }
        if self.cassandra_wrote {
            record_applied(&secrets, CREDENTIALS_SECRET, APPLIED_CASSANDRA, &self.cassandra_fp).await?;
        }
        Ok(())
    }
}

/// Each password is written once (see APPLIED_KAFKA): first to Kafka and Cassandra, so a
/// login handed out in the Secret works the moment anyone reads it (a sink pod rolled by
/// then, a team's client); then to the Secret, and its fingerprint recorded on it. Kafka and
/// Cassandra at once: neither waits for the other's round trips. Returns the logins and the
/// previous slots that still exist.
async fn write_logins(
    ctx: &Context,
    v: &ValidatedTenant,
    passwords: &Passwords,
    secret: Option<&Secret>,
) -> Step<(Logins, Option<ScramMechanism>, Option<String>)> {
    let kafka_fp = credential_fingerprint(&v.kafka_user, &passwords.kafka);
    let cassandra_fp = credential_fingerprint(&passwords.cassandra_user(v), &passwords.cassandra);
    let (kafka, cassandra) = tokio::join!(
        ensure_kafka_user(ctx, v, passwords, recorded(secret, APPLIED_KAFKA, &kafka_fp)),
        ensure_cassandra(ctx, v, passwords, recorded(secret, APPLIED_CASSANDRA, &cassandra_fp))
    );
    let (kafka_wrote, previous_kafka) = kafka?;
    let (cassandra_wrote, previous_cassandra) = cassandra?;
    Ok((Logins { kafka_fp, kafka_wrote, cassandra_fp, cassandra_wrote }, previous_kafka, previous_cassandra))
}

/// The status of a provisioned Tenant, published once, and its next look.
async fn finish(ctx: &Context, tenant: &Tenant, v: &ValidatedTenant, done: Provisioned) -> Result<Action> {
    let rollup = rollup_of(ctx, v);
    let status = build::status(tenant.status.as_ref(), Some(v), &rollup, tenant.metadata.generation);
    // While the previous credentials still work, when their grace period ends (an alert
    // warns before clients on them are cut off).
    let grace_end = done.credentials.previous.as_ref().and_then(|_| {
        let at: k8s_openapi::jiff::Timestamp = done.credentials.rotated_at.as_deref()?.parse().ok()?;
        Some(at.as_second() + v.rotation.grace_period_seconds.max(0))
    });
    ctx.metrics.previous_credentials(&v.name, grace_end);
    let status = TenantStatus { credentials: Some(done.credentials), ..status };
    let ready = build::ready_condition(&rollup);
    status::publish(ctx, &Api::<Tenant>::all(ctx.client.clone()), tenant, status, &[ready]).await?;
    // Nothing left to do outside Kubernetes until the resync: no previous credentials to
    // retire, no rotation waiting for them.
    if done.waiting.is_none() && !done.rotation_waits {
        ctx.remember_provisioned(tenant, &done.as_stored);
    }
    // Previous credentials still in use are looked at again when they may go.
    Ok(done.waiting.map_or_else(|| ctx.resync(), |(_, after)| Action::requeue(after.min(ctx.config.resync))))
}

/// A provisioned Tenant reconciled again, unchanged, before its resync is due: what changed
/// is one of its Topics or sinks (their readiness), so only the roll-up is computed again
/// and published. While a thousand Topics are created each Ready flip re-ran the whole
/// reconcile, SCRAM, ACL and quota describes and Cassandra reads included, to change nothing
/// but the counts. Kafka and Cassandra are looked at again when the resync falls due.
async fn rollup_only(ctx: &Context, tenant: &Tenant, v: &ValidatedTenant, left: Duration) -> Result<Action> {
    let rollup = rollup_of(ctx, v);
    publish_status(ctx, tenant, Some(v), &rollup, build::ready_condition(&rollup)).await?;
    Ok(Action::requeue(left))
}

/// The roll-up of the tenant's namespace, from the watched copies of its Topics and sinks:
/// the changes that trigger a Tenant reconcile come from the same watches, after the copies
/// took them in.
fn rollup_of(ctx: &Context, v: &ValidatedTenant) -> Rollup {
    let topics = ctx.watches.topics.watched.in_namespace(&v.namespace);
    let sinks = ctx.watches.sinks.watched.in_namespace(&v.namespace);
    build::rollup(topics.iter().map(|t| t.as_ref()), sinks.iter().map(|s| s.as_ref()))
}

/// Records on the Tenant that its names are its own (its UID) and which passwords the
/// operator wrote (their digest), before the first external write. See [`claim`]. Returns
/// the Tenant's metadata with those annotations, as the API server now stores it.
async fn record_claim(
    ctx: &Context,
    tenant: &Tenant,
    passwords: &Passwords,
    rotation: &Rotation,
) -> Result<kube::api::ObjectMeta> {
    let uid = tenant.uid().ok_or(Error::Missing("metadata.uid"))?;
    let digest = claim::credentials_digest(passwords);
    let rotation = rotation.to_annotation();
    let annotations = tenant.annotations();
    if claim::is_claimed(tenant)
        && annotations.get(claim::CREDENTIALS_ANNOTATION) == Some(&digest)
        && annotations.get(ROTATION_ANNOTATION) == Some(&rotation)
    {
        return Ok(tenant.metadata.clone());
    }
    let patch = serde_json::json!({"metadata": {"annotations": {
        claim::CLAIM_ANNOTATION: uid,
        claim::CREDENTIALS_ANNOTATION: digest,
        ROTATION_ANNOTATION: rotation,
    }}});
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    let patched = api.patch(&tenant.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(patched.metadata)
}

/// Ends the reconcile: the Tenant's status from what it found, `ready` merged in
/// (see [`crate::status`]).
async fn publish_status(
    ctx: &Context,
    tenant: &Tenant,
    v: Option<&ValidatedTenant>,
    rollup: &Rollup,
    ready: DesiredCondition,
) -> Result<()> {
    let status = build::status(tenant.status.as_ref(), v, rollup, tenant.metadata.generation);
    status::publish(ctx, &Api::<Tenant>::all(ctx.client.clone()), tenant, status, &[ready]).await
}

/// The tenant's SCRAM credential (written unless the Secret records this password as applied
/// and the user exists), its ACL set and its client quotas, converged: missing entries added,
/// stray ones removed, nothing written when Kafka already matches. `Ok(true)`: the
/// credential was written.
async fn ensure_kafka_user(
    ctx: &Context,
    v: &ValidatedTenant,
    passwords: &Passwords,
    recorded: bool,
) -> Result<(bool, Option<ScramMechanism>), KafkaCallError> {
    // An external principal's credential is its issuer's: never written here.
    let held = match v.external_user {
        Some(_) => Default::default(),
        None => ctx.kafka.scram_mechanisms(&v.kafka_user).await?,
    };
    let write = v.external_user.is_none() && (!recorded || !held.contains(&passwords.kafka_slot));
    if write {
        ctx.kafka.upsert_scram_user(&v.kafka_user, passwords.kafka_slot, &passwords.kafka).await?;
    }
    let previous = held.into_iter().find(|m| *m != passwords.kafka_slot);
    let current = ctx.kafka.describe_acls(&build::principal(v)).await?;
    let (add, remove) = acl_changes(&build::desired_acls(v), &current);
    ctx.kafka.create_acls(add).await?;
    ctx.kafka.delete_acls(remove).await?;
    let live = ctx.kafka.describe_user_quotas(&v.kafka_user).await?;
    let (set, remove) = quota_changes(&v.quota_split(&ctx.config.default_quotas).tenant, &live);
    ctx.kafka.alter_user_quotas(&v.kafka_user, &set, &remove).await?;
    Ok((write, previous))
}

/// The password of an external Kafka user, from its Secret in the operator's namespace; the
/// halt says which Secret or key to create.
async fn external_password(ctx: &Context, external: &crate::api::tenant::ExternalKafkaUser) -> Step<String> {
    let namespace = &ctx.config.lease_namespace;
    let key = &external.password_secret;
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), namespace).get_opt(&key.name).await?;
    let password = secret
        .as_ref()
        .and_then(|s| s.data.as_ref()?.get(&key.key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .filter(|p| !p.is_empty());
    password.ok_or_else(|| {
        let message = format!(
            "spec.kafka.externalUser.passwordSecret: Secret {namespace}/{} has no key {:?} with the password of Kafka \
             user {}: create it in the operator's namespace ({namespace})",
            key.name, key.key, external.name
        );
        // Creating the Secret sends no event to Tenants: look again at the next resync.
        Halt::Wait(DesiredCondition::not_ready(Reason::InvalidSpec, message), ctx.resync())
    })
}

/// The tenant's keyspace (replication converged), its role with exactly the tenant grants on
/// the keyspace, and its login: the role itself or, after a rotation, the second login
/// granted it (password set unless the Secret records it as applied and the login exists
/// and logs in). Returns whether the password was written, and the previous login (the
/// other slot) if it still works.
async fn ensure_cassandra(
    ctx: &Context,
    v: &ValidatedTenant,
    passwords: &Passwords,
    recorded: bool,
) -> Result<(bool, Option<String>), CassandraCallError> {
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
    let second = second_login(&v.cassandra_role);
    let (write, previous) = if passwords.cassandra_second {
        let mut role_logs_in = role.as_ref().is_some_and(|r| r.login);
        if role.is_none() {
            // The role holds the grants; created with a password nobody knows, retired below.
            cassandra.put_role(&v.cassandra_role, &crate::tenant::build::generate_password(), false).await?;
            role_logs_in = true;
        }
        let login = cassandra.role(&second).await?;
        let write = login.is_none() || !recorded || login.as_ref().is_some_and(|r| !r.login);
        if write {
            cassandra.put_role(&second, &passwords.cassandra, login.is_some()).await?;
        }
        if !login.is_some_and(|l| l.member_of.contains(&v.cassandra_role)) {
            cassandra.grant_role(&v.cassandra_role, &second).await?;
        }
        (write, role_logs_in.then(|| v.cassandra_role.clone()))
    } else {
        let write = role.is_none() || !recorded || role.as_ref().is_some_and(|r| !r.login);
        if write {
            cassandra.put_role(&v.cassandra_role, &passwords.cassandra, role.is_some()).await?;
        }
        (write, cassandra.role(&second).await?.map(|_| second))
    };
    let (add, remove) = grant_changes(&v.keyspace, v.schema_changes, &cassandra.permissions(&v.cassandra_role).await?);
    for permission in add {
        cassandra.grant(&v.cassandra_role, permission, &v.keyspace).await?;
    }
    for (resource, permission) in remove {
        cassandra.revoke(&v.cassandra_role, &permission, &resource).await?;
    }
    Ok((write, previous))
}

/// Creates (and owns) the namespace, or labels the one it created before or adopts
/// ([`claim::namespace_refusal`] has ruled out every other).
async fn ensure_namespace(
    ctx: &Context,
    tenant: &Tenant,
    v: &ValidatedTenant,
    existing: Option<&Namespace>,
) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let owner = tenant.controller_owner_ref(&()).ok_or(Error::Missing("metadata.uid"))?;
    let own_it = existing.is_none_or(|ns| ns.owner_references().iter().any(|o| o.uid == owner.uid));
    let desired = build::namespace(v, own_it.then_some(owner));
    if existing.is_some_and(|ns| build::namespace_current(ns, &desired)) {
        return Ok(());
    }
    namespaces.patch(&v.namespace, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired)).await?;
    if existing.is_none() {
        ctx.event(tenant, false, "NamespaceCreated", format!("created namespace {}", v.namespace)).await;
    }
    Ok(())
}

/// The RoleBinding that lets the operator use the Secrets of the tenant namespace (and no
/// other namespace's): written before the first Secret is read there. Only in the cluster (the
/// chart sets who the operator is); an operator run with its own credentials needs none.
async fn ensure_secrets_access(ctx: &Context, tenant: &Tenant, v: &ValidatedTenant) -> Result<()> {
    let Some(binding) = &ctx.config.secrets_binding else { return Ok(()) };
    let owner = tenant.controller_owner_ref(&()).ok_or(Error::Missing("metadata.uid"))?;
    let bindings: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &v.namespace);
    let desired = fence::secrets_role_binding(v, &owner, binding, &ctx.config.lease_namespace);
    // A binding's role is immutable: one written by an operator installed under another release
    // name (its own Secrets role) is replaced, not patched.
    let live = match bindings.get_opt(fence::SECRETS_BINDING).await? {
        Some(live) if live.role_ref != desired.role_ref => {
            bindings.delete(fence::SECRETS_BINDING, &Default::default()).await?;
            None
        }
        live => live,
    };
    let mut desired = desired;
    crate::controller::stamp_applied(&mut desired);
    if crate::controller::applied_unchanged(live.as_ref(), &desired) {
        return Ok(());
    }
    apply_unless_current(&bindings, fence::SECRETS_BINDING, live, desired).await?;
    // The API server's authorizer learns of a new binding a moment later: wait for it, so
    // the next read of a Secret there is not refused.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &v.namespace);
    for _ in 0..50 {
        match secrets.get_opt(CREDENTIALS_SECRET).await {
            Err(kube::Error::Api(e)) if e.code == 403 => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// The namespace's ResourceQuota, LimitRange and NetworkPolicy ([`fence`]), written unless
/// already as desired. Returns the quota's resources Kubernetes has not counted yet (after
/// waiting up to 5 s for a quota just written): until it counts them it refuses every object
/// they cover, so the Tenant waits for them before it is Ready.
async fn ensure_fence(ctx: &Context, tenant: &Tenant, v: &ValidatedTenant) -> Result<Option<String>> {
    let owner = tenant.controller_owner_ref(&()).ok_or(Error::Missing("metadata.uid"))?;
    let quotas: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &v.namespace);
    let limits: Api<LimitRange> = Api::namespaced(ctx.client.clone(), &v.namespace);
    let policies: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), &v.namespace);
    let config = &ctx.config;
    let policy = fence::network_policy(
        v,
        &owner,
        config.kafka_client_bootstrap.split(','),
        config.cassandra.contact_points.iter().map(String::as_str),
        &config.lease_namespace,
    );
    let quota = async {
        let live = quotas.get_opt(fence::QUOTA).await?;
        apply_unless_current(&quotas, fence::QUOTA, live, fence::resource_quota(v, &owner)).await
    };
    let (mut quota, _, _) = futures::try_join!(
        quota,
        apply_if_changed(&limits, fence::LIMIT_RANGE, fence::limit_range(v, &owner)),
        apply_if_changed(&policies, fence::NETWORK_POLICY, policy),
    )?;
    // The resources of the quota's spec that its status does not count (yet).
    let uncounted = |q: &ResourceQuota| {
        let hard = q.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
        let status = q.status.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
        // Admission refuses a resource the status has no usage for ("status unknown for quota").
        let used = q.status.as_ref().and_then(|s| s.used.clone()).unwrap_or_default();
        let missing: Vec<String> = hard
            .into_iter()
            .filter(|(k, v)| status.get(k) != Some(v) || !used.contains_key(k))
            .map(|(k, _)| k)
            .collect();
        (!missing.is_empty()).then(|| missing.join(", "))
    };
    for _ in 0..25 {
        if uncounted(&quota).is_none() {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        match quotas.get_opt(fence::QUOTA).await? {
            Some(q) => quota = q,
            None => return Ok(None),
        }
    }
    Ok(uncounted(&quota))
}

async fn ensure_credentials(
    ctx: &Context,
    tenant: &Tenant,
    v: &ValidatedTenant,
    existing: Option<&Secret>,
    passwords: &Passwords,
    rotation: &Rotation,
) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &v.namespace);
    let owner = tenant.controller_owner_ref(&()).ok_or(Error::Missing("metadata.uid"))?;
    let mut desired = build::credentials_secret(v, owner, &build::Endpoints::of(&ctx.config), passwords);
    // When these passwords were made: each sink compares it with its own Secret's.
    desired.annotations_mut().insert(ROTATED_AT_ANNOTATION.into(), rotation.at.clone());
    let unchanged = |s: &Secret| {
        (&s.data, &s.metadata.labels, s.owner_references(), stamp(s))
            == (&desired.data, &desired.metadata.labels, desired.owner_references(), stamp(&desired))
    };
    if !existing.is_some_and(unchanged) {
        secrets.patch(CREDENTIALS_SECRET, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired)).await?;
    }
    Ok(())
}
