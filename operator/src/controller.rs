//! What the three controllers share: their context, error classification, backoff and
//! events (how a reconcile ends, its status, is in `status`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ManagedFieldsEntry, ObjectMeta};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::conditions::READY;
use crate::config::Config;
pub use crate::error::{Error, Result};
use crate::external::cassandra::CassandraAdmin;
use crate::external::kafka::KafkaPlatform;
use crate::metrics::Metrics;
use crate::tenancy::TenancyCache;
use crate::watch::Watches;

/// The one field manager for everything the operator writes (server-side apply).
pub const FIELD_MANAGER: &str = "tributary-operator";

pub struct Context {
    pub client: Client,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Who publishes the operator's events; see [`Context::event`].
    reporter: Reporter,
    pub kafka: Arc<dyn KafkaPlatform>,
    pub cassandra: Arc<dyn CassandraAdmin>,
    /// Which tenant a namespace belongs to, from watched copies.
    pub tenancy: TenancyCache,
    /// The one watch of each of the operator's kinds, which every controller shares.
    pub watches: Watches,
    /// Consecutive failures per object, for exponential backoff of transient errors.
    failures: Mutex<HashMap<String, u32>>,
    /// Per object, the [`spec_fingerprint`] its last complete reconcile acted on, and when:
    /// see [`Context::provisioned_for`].
    provisioned: Mutex<HashMap<String, (u64, Instant)>>,
}

impl Context {
    pub fn new(
        client: Client,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        kafka: Arc<dyn KafkaPlatform>,
        cassandra: Arc<dyn CassandraAdmin>,
        tenancy: TenancyCache,
        watches: Watches,
    ) -> Arc<Self> {
        let reporter = Reporter { controller: FIELD_MANAGER.into(), instance: Some(config.identity.clone()) };
        Arc::new(Context {
            client,
            config,
            metrics,
            reporter,
            kafka,
            cassandra,
            tenancy,
            watches,
            failures: Mutex::new(HashMap::new()),
            provisioned: Mutex::new(HashMap::new()),
        })
    }

    /// The drift requeue: look again after the resync interval. The controllers take it out of
    /// their scheduler into a queue that yields to new work and adds the jitter (`resync.rs`).
    pub fn resync(&self) -> Action {
        Action::requeue(self.config.resync)
    }

    /// Records that a reconcile of `obj` provisioned everything outside Kubernetes and found
    /// nothing to wait for; `as_stored`: its metadata with what that reconcile wrote to it.
    pub fn remember_provisioned<K: Resource<DynamicType = ()>>(&self, obj: &K, as_stored: &ObjectMeta) {
        let entry = (spec_fingerprint(as_stored), Instant::now());
        self.provisioned.lock().expect("provisioned lock").insert(object_key(obj), entry);
    }

    /// Forgets that (a reconcile that goes on may fail).
    pub fn forget_provisioned<K: Resource<DynamicType = ()>>(&self, obj: &K) {
        self.provisioned.lock().expect("provisioned lock").remove(&object_key(obj));
    }

    /// How long until `obj`'s drift resync is due, when a reconcile of `obj` as it is now (same
    /// generation, labels, annotations, not being deleted) provisioned everything less than a
    /// resync interval ago: until then there is nothing to re-check outside Kubernetes.
    pub fn provisioned_for<K: Resource<DynamicType = ()>>(&self, obj: &K) -> Option<Duration> {
        let provisioned = self.provisioned.lock().expect("provisioned lock");
        let (fingerprint, at) = provisioned.get(&object_key(obj))?;
        let left = self.config.resync.checked_sub(at.elapsed()).filter(|d| !d.is_zero())?;
        (*fingerprint == spec_fingerprint(obj.meta())).then_some(left)
    }

    /// The one place a reconcile's outcome ends its object's backoff (see [`Self::backoff`]):
    /// any `Ok`, whatever the reconcile waits for next.
    pub fn ended(&self, key: &str, result: Result<Action>) -> Result<Action> {
        if result.is_ok() {
            self.failures.lock().expect("failures lock").remove(key);
        }
        result
    }

    /// 1 s, 2 s, 4 s ... up to 5 min for the same object failing again and again.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("failures lock");
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300))
    }

    /// Publishes an event about `obj` in the background: the reconcile does not wait for the
    /// API server (two events per new Topic were two of its round trips). A failure to
    /// publish is logged, never fatal.
    ///
    /// Each event gets a recorder of its own. kube's `Recorder` keeps every event it published
    /// in a map for six minutes (to count repeats as a series) and the map never shrinks: a
    /// heap profile at 2,000 new Topics found 12 MB of the operator's 38 MB live heap in that
    /// map alone. The operator publishes only on a change (a Ready flip, a refusal), so a
    /// repeat is rare, and each is its own Event object, as it would be after six minutes.
    pub async fn event<K: Resource<DynamicType = ()>>(&self, obj: &K, warning: bool, reason: &str, note: String) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        let (reference, name) = (obj.object_ref(&()), obj.name_any());
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::warn!(object = %name, error = %e, "could not publish event");
            }
        });
    }
}

/// The error policy shared by every controller: count, log, and back off per object.
pub fn error_policy<K: Resource<DynamicType = ()>>(kind: &'static str, obj: &K, err: &Error, ctx: &Context) -> Action {
    ctx.metrics.failure(kind, err.category());
    let key = object_key(obj);
    let delay = ctx.backoff(&key);
    tracing::warn!(kind, object = %key, category = err.category(), error = %err, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

pub fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    let meta = obj.meta();
    match &meta.namespace {
        Some(ns) => format!("{}/{}/{}", K::kind(&()), ns, meta.name.as_deref().unwrap_or_default()),
        None => format!("{}/{}", K::kind(&()), meta.name.as_deref().unwrap_or_default()),
    }
}

/// Annotations on a credentials Secret: the fingerprint of the password last applied to its
/// Kafka user or Cassandra role. A reconcile applies a password only when the Secret does not
/// record it, or the user or role is gone, so neither a resync nor an operator restart nor a
/// new leader writes a credential again.
pub const APPLIED_KAFKA: &str = "tributary.dev/applied-kafka";
pub const APPLIED_CASSANDRA: &str = "tributary.dev/applied-cassandra";

/// Fingerprint of `password` as applied to `principal`: SHA-256, 128 bits in hex. It says
/// nothing the Secret that carries it does not already hold.
pub fn credential_fingerprint(principal: &str, password: &str) -> String {
    fingerprint(format!("{principal}\n{password}").as_bytes())
}

/// SHA-256 of `bytes`, 128 bits in hex.
fn fingerprint(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Whether `secret` records `fingerprint` under `annotation`.
pub fn recorded(secret: Option<&Secret>, annotation: &str, fingerprint: &str) -> bool {
    secret.and_then(|s| s.metadata.annotations.as_ref()?.get(annotation)).is_some_and(|f| f == fingerprint)
}

/// Records on the Secret `name` that the password with `fingerprint` is applied.
pub async fn record_applied(secrets: &Api<Secret>, name: &str, annotation: &str, fingerprint: &str) -> Result<()> {
    let patch = serde_json::json!({"metadata": {"annotations": {annotation: fingerprint}}});
    secrets.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// On an object the operator applies: a fingerprint of what it applied last.
pub const APPLIED_HASH: &str = "tributary.dev/applied-hash";

/// Marks `desired` with the fingerprint of its own content (see [`applied_unchanged`]).
pub fn stamp_applied<K: Resource + serde::Serialize>(desired: &mut K) {
    let meta = desired.meta_mut();
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(APPLIED_HASH);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
    let hash = fingerprint(&serde_json::to_vec(desired).unwrap_or_default());
    desired.meta_mut().annotations.get_or_insert_with(Default::default).insert(APPLIED_HASH.into(), hash);
}

/// Whether applying `desired` (marked by [`stamp_applied`]) to `live`, as read from the API
/// server, would change nothing: `live` carries the same fingerprint, so the operator's last
/// apply was this very object, and no other field manager has written to it since (a
/// `kubectl edit`, `scale` or `annotate` adds its manager; status writers do not count).
pub fn applied_unchanged<K: Resource>(live: Option<&K>, desired: &K) -> bool {
    let Some(live) = live else { return false };
    let hash = |m: &ObjectMeta| m.annotations.as_ref().and_then(|a| a.get(APPLIED_HASH)).cloned();
    let ours = |e: &ManagedFieldsEntry| e.manager.as_deref() == Some(FIELD_MANAGER);
    let ours_only = live.meta().managed_fields.as_ref().is_some_and(|entries| {
        entries.iter().any(ours) && entries.iter().all(|e| ours(e) || e.subresource.as_deref() == Some("status"))
    });
    hash(desired.meta()).is_some() && hash(live.meta()) == hash(desired.meta()) && ours_only
}

/// Server-side applies `desired` as `name` unless `live` (read from the API server) is already
/// it (see [`applied_unchanged`]): a steady resync writes nothing. Returns the object as it
/// now is.
pub async fn apply_unless_current<K>(api: &Api<K>, name: &str, live: Option<K>, mut desired: K) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    stamp_applied(&mut desired);
    match live {
        Some(live) if applied_unchanged(Some(&live), &desired) => Ok(live),
        _ => Ok(api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired)).await?),
    }
}

/// [`apply_unless_current`] of `desired` as `name`, the live object read first. `Ok(true)`:
/// it was written.
pub async fn apply_if_changed<K>(api: &Api<K>, name: &str, mut desired: K) -> Result<bool>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let live = api.get_opt(name).await?;
    stamp_applied(&mut desired);
    if applied_unchanged(live.as_ref(), &desired) {
        return Ok(false);
    }
    apply_unless_current(api, name, live, desired).await?;
    Ok(true)
}

/// One number for the parts of an object a trigger stream compares ([`Shared::changes_of`]).
///
/// [`Shared::changes_of`]: crate::watch::Shared::changes_of
pub fn hash_of(parts: impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(parts)
}

/// The changes of the shared watch of `K` that another controller reacts to: the
/// object's readiness, its tenant, its generation, whether it is being deleted, and its
/// deletion. A sink's status changes every few seconds (lag) and a Topic's on resync notes;
/// without this filter each such change re-ran the owning Tenant's reconcile and, with a
/// hundred tenants, the Tenant queue never drained.
pub fn readiness_changes<K>(
    watch: &crate::watch::Shared<K>,
    tenant_and_conditions: fn(&K) -> (Option<&str>, &[Condition]),
) -> impl futures::Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    watch.changes_of(move |obj: &K| {
        let (tenant, conditions) = tenant_and_conditions(obj);
        let ready = conditions.iter().find(|c| c.type_ == READY).map(|c| (&c.status, &c.reason));
        hash_of((tenant, obj.meta().generation, obj.meta().deletion_timestamp.is_some(), ready))
    })
}

/// The changes of `K`'s shared watch that its own controller must act on: a new object, a
/// new generation of its spec, its labels or annotations, and the start of its deletion. Its
/// status and finalizers are the operator's own writes: a reconcile that wrote them has
/// nothing left to do when they come back, and the periodic resync undoes anyone else's.
/// Without this filter a new Topic was reconciled three times (its finalizer, its creation,
/// and once more for the status that creation wrote), each describing it in Kafka again.
pub fn spec_changes<K>(watch: &crate::watch::Shared<K>) -> impl futures::Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    watch.changes_of(|obj: &K| spec_fingerprint(obj.meta()))
}

/// What [`spec_changes`] compares: the parts of an object its own reconcile acts on.
fn spec_fingerprint(meta: &ObjectMeta) -> u64 {
    hash_of((meta.generation, meta.deletion_timestamp.is_some(), &meta.labels, &meta.annotations))
}

/// The changes of the Tenants that the Topics in their namespaces act on: a new Tenant, a
/// new generation of its spec (prefix, limits, deletion policy), its deletion, and the end of
/// its provisioning (its namespace is labelled then). Not its roll-up: a Tenant goes from
/// Ready to ChildrenNotReady and back because of its own Topics, and each of a thousand
/// Topics applied at once was reconciled once more for it, to change nothing.
pub fn tenant_changes(
    watch: &crate::watch::Shared<crate::api::Tenant>,
) -> impl futures::Stream<Item = Arc<crate::api::Tenant>> + Send + 'static {
    watch.changes_of(|tenant| {
        hash_of((tenant.metadata.generation, tenant.metadata.deletion_timestamp.is_some(), tenant.provisioned()))
    })
}

/// Every controller's reconcile: `reconcile` under the finalizer `name`, through kube's
/// `finalizer` (apply, or cleanup and then the finalizer removed), once the finalizer is on
/// the object. kube's own adds a missing finalizer and ends the reconcile, leaving the work to
/// a next one that the watch brings back (a round trip through the watch and the queue per
/// new object); here the same reconcile goes on once the finalizer is stored, still before
/// any external write.
pub async fn finalized<K, Fut>(
    api: &Api<K>,
    name: &str,
    obj: Arc<K>,
    reconcile: impl FnOnce(kube::runtime::finalizer::Event<K>) -> Fut,
) -> Result<Action>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
    Fut: std::future::Future<Output = Result<Action>>,
{
    let obj = with_finalizer(api, name, obj).await?;
    kube::runtime::finalizer::finalizer(api, name, obj, reconcile).await.map_err(Error::from)
}

/// `obj` with the finalizer `name` on it: added now when it is missing (unless the object is
/// being deleted), and then the object as the API server returned it. The patch tests the
/// finalizers it read, so another writer's finalizer added meanwhile fails it (and the
/// reconcile is retried) instead of being overwritten.
async fn with_finalizer<K>(api: &Api<K>, name: &str, obj: Arc<K>) -> Result<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    use json_patch::{AddOperation, PatchOperation, TestOperation, jsonptr::PointerBuf};
    if obj.meta().deletion_timestamp.is_some() || obj.finalizers().iter().any(|f| f == name) {
        return Ok(obj);
    }
    let read = obj.finalizers();
    let mut wanted = read.to_vec();
    wanted.push(name.to_string());
    let path = PointerBuf::from_tokens(["metadata", "finalizers"]);
    let patch = json_patch::Patch(vec![
        PatchOperation::Test(TestOperation {
            path: path.clone(),
            value: if read.is_empty() { serde_json::Value::Null } else { read.into() },
        }),
        PatchOperation::Add(AddOperation { path, value: wanted.into() }),
    ]);
    let patched = api.patch(&obj.name_any(), &PatchParams::default(), &Patch::<()>::Json(patch)).await?;
    Ok(Arc::new(patched))
}

/// For a watch on Tenants: the watched objects in the Tenant's namespace (from its spec).
pub fn in_tenant_namespace<K>(
    watched: crate::watch::Watched<K>,
    validations: crate::tenant::Validations,
) -> impl Fn(Arc<crate::api::Tenant>) -> Vec<kube::runtime::reflector::ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    move |tenant| match validations.of(&tenant) {
        Ok(v) => watched
            .in_namespace(&v.namespace)
            .iter()
            .map(|o| kube::runtime::reflector::ObjectRef::from_obj(o.as_ref()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_controller_wakes_for_spec_labels_annotations_and_deletion_not_for_its_own_writes() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let stored = ObjectMeta {
            generation: Some(1),
            resource_version: Some("10".into()),
            labels: Some([("team".to_string(), "a".to_string())].into()),
            ..Default::default()
        };
        let print = spec_fingerprint(&stored);
        // The operator's own writes: a finalizer, a status (only resourceVersion moves).
        let finalized = ObjectMeta {
            finalizers: Some(vec!["tributary.dev/topic-cleanup".into()]),
            resource_version: Some("11".into()),
            ..stored.clone()
        };
        assert_eq!(spec_fingerprint(&finalized), print, "its finalizer and status writes do not wake it");
        let changed = [
            ObjectMeta { generation: Some(2), ..stored.clone() },
            ObjectMeta { deletion_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::now())), ..stored.clone() },
            ObjectMeta { labels: None, ..stored.clone() },
            ObjectMeta { annotations: Some([("k".to_string(), "v".to_string())].into()), ..stored.clone() },
        ];
        for meta in changed {
            assert_ne!(spec_fingerprint(&meta), print, "{meta:?} wakes it");
        }
    }

    #[test]
    fn an_apply_is_skipped_only_when_the_live_object_is_the_last_one_applied_and_nobody_else_wrote() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
        let desired = |value: &str| {
            let mut cm =
                ConfigMap { data: Some([("config.yaml".to_string(), value.to_string())].into()), ..Default::default() };
            stamp_applied(&mut cm);
            cm
        };
        let entry = |manager: &str, subresource: Option<&str>| ManagedFieldsEntry {
            manager: Some(manager.into()),
            subresource: subresource.map(Into::into),
            ..Default::default()
        };
        let live = |cm: &ConfigMap, entries: Vec<ManagedFieldsEntry>| {
            let mut live = cm.clone();
            live.metadata.managed_fields = Some(entries);
            live
        };
        let wanted = desired("a");
        assert_eq!(desired("a").metadata.annotations, wanted.metadata.annotations, "the fingerprint is stable");
        let mut restamped = wanted.clone();
        stamp_applied(&mut restamped);
        assert_eq!(restamped.metadata.annotations, wanted.metadata.annotations, "stamping twice changes nothing");

        assert!(applied_unchanged(Some(&live(&wanted, vec![entry(FIELD_MANAGER, None)])), &wanted));
        let with_status =
            live(&wanted, vec![entry(FIELD_MANAGER, None), entry("kube-controller-manager", Some("status"))]);
        assert!(applied_unchanged(Some(&with_status), &wanted), "a status writer changes none of the applied fields");
        assert!(!applied_unchanged(None, &wanted), "absent: create it");
        assert!(
            !applied_unchanged(Some(&live(&desired("b"), vec![entry(FIELD_MANAGER, None)])), &wanted),
            "changed spec"
        );
        let edited = live(&wanted, vec![entry(FIELD_MANAGER, None), entry("kubectl-edit", None)]);
        assert!(!applied_unchanged(Some(&edited), &wanted), "someone else wrote to it: apply again");
        let scaled = live(&wanted, vec![entry(FIELD_MANAGER, None), entry("kubectl", Some("scale"))]);
        assert!(!applied_unchanged(Some(&scaled), &wanted), "kubectl scale wrote spec.replicas: apply again");
        assert!(!applied_unchanged(Some(&live(&wanted, Vec::new())), &wanted), "no record of who wrote it");
    }

    #[test]
    fn a_secret_records_only_the_fingerprint_of_its_own_password() {
        let fingerprint = credential_fingerprint("water", "s3cret");
        assert_eq!(fingerprint.len(), 32);
        assert_ne!(fingerprint, credential_fingerprint("water", "other"));
        assert_ne!(fingerprint, credential_fingerprint("bts", "s3cret"));
        let mut secret = Secret::default();
        assert!(!recorded(Some(&secret), APPLIED_KAFKA, &fingerprint));
        secret.metadata.annotations = Some([(APPLIED_KAFKA.to_string(), fingerprint.clone())].into());
        assert!(recorded(Some(&secret), APPLIED_KAFKA, &fingerprint));
        assert!(!recorded(Some(&secret), APPLIED_CASSANDRA, &fingerprint));
        assert!(!recorded(None, APPLIED_KAFKA, &fingerprint));
    }
}
