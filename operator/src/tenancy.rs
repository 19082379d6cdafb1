//! Which Tenant a namespaced object belongs to: the one whose namespace it is in.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::api::TENANT_LABEL;
use crate::api::Tenant;
use crate::error::Result;
use crate::tenant::{ValidatedTenant, Validations};

pub enum Tenancy {
    /// The namespace's tenant, validated.
    Tenant(Arc<Tenant>, Arc<ValidatedTenant>),
    /// No usable tenant; the message says why and what to do (for the object's status).
    None(String),
}

/// Watched copies of the tenant namespaces and the Tenants, so resolving the tenant of a
/// Topic or sink costs no API call (it was two GETs per reconcile, about a third of a new
/// Topic's time when a thousand arrive at once). A name the copies do not have yet (an
/// object newer than the watch) is asked of the API server.
#[derive(Clone)]
pub struct TenancyCache {
    namespaces: Store<Namespace>,
    tenants: Store<Tenant>,
    /// Each Tenant validated once per generation.
    pub validations: Validations,
}

impl TenancyCache {
    /// Starts the namespaces' watch on the current tokio runtime; the Tenants' copy is the
    /// operator's shared one.
    pub fn start(client: &Client, tenants: Store<Tenant>) -> Self {
        fn watch<K>(api: Api<K>, config: watcher::Config) -> Store<K>
        where
            K: kube::Resource<DynamicType = ()>
                + Clone
                + serde::de::DeserializeOwned
                + std::fmt::Debug
                + Send
                + Sync
                + 'static,
        {
            let (store, writer) = reflector::store();
            let stream = watcher(api, config).default_backoff().modify(crate::watch::slim).reflect(writer);
            tokio::spawn(stream.for_each(|_| futures::future::ready(())));
            store
        }
        TenancyCache {
            namespaces: watch(Api::all(client.clone()), watcher::Config::default().labels(TENANT_LABEL)),
            tenants,
            validations: Validations::default(),
        }
    }

    /// Copies that stay empty (no watch): every lookup asks the API server. For tests.
    #[cfg(test)]
    pub fn empty() -> Self {
        TenancyCache {
            namespaces: reflector::store().0,
            tenants: reflector::store().0,
            validations: Validations::default(),
        }
    }

    /// Every Tenant, from the watched copies, once they hold `tenant` exactly as given (same
    /// resourceVersion): a watch delivers changes in the order they were made, so the copies
    /// then hold every Tenant, and every claim, written before `tenant` last changed, as a
    /// list at that moment would. `None` while they lag behind (then list from the API server).
    pub fn tenants_including(&self, tenant: &Tenant) -> Option<Vec<Arc<Tenant>>> {
        let seen = self.tenants.get(&ObjectRef::from_obj(tenant))?;
        let same = seen.metadata.uid == tenant.metadata.uid
            && seen.metadata.resource_version == tenant.metadata.resource_version
            && tenant.metadata.resource_version.is_some();
        same.then(|| self.tenants.state())
    }

    async fn namespace(&self, client: &Client, name: &str) -> Result<Option<Arc<Namespace>>> {
        match self.namespaces.get(&ObjectRef::new(name)) {
            Some(ns) => Ok(Some(ns)),
            None => Ok(Api::<Namespace>::all(client.clone()).get_opt(name).await?.map(Arc::new)),
        }
    }

    async fn tenant(&self, client: &Client, name: &str) -> Result<Option<Arc<Tenant>>> {
        match self.tenants.get(&ObjectRef::new(name)) {
            Some(t) => Ok(Some(t)),
            None => Ok(Api::<Tenant>::all(client.clone()).get_opt(name).await?.map(Arc::new)),
        }
    }
}

/// The Tenant named `name`, validated, when it is provisioned and not being deleted: the
/// granting side of a shared topic.
pub async fn provisioned_tenant(
    client: &Client,
    cache: &TenancyCache,
    name: &str,
) -> Result<Option<(Arc<Tenant>, Arc<ValidatedTenant>)>> {
    let Some(tenant) = cache.tenant(client, name).await? else { return Ok(None) };
    if tenant.metadata.deletion_timestamp.is_some() || !tenant.provisioned() {
        return Ok(None);
    }
    Ok(cache.validations.of(&tenant).ok().map(|v| (tenant, v)))
}

/// Resolves the tenant of `namespace` through the namespace's `tributary.dev/tenant` label
/// (set by the Tenant controller) and checks that the Tenant really claims that namespace.
pub async fn resolve(client: &Client, cache: &TenancyCache, namespace: &str) -> Result<Tenancy> {
    lookup(client, cache, namespace, false).await
}

/// Like [`resolve`], also while the Tenant is being deleted: the cleanup of a Topic derives
/// its Kafka name from its spec and the tenant's prefix, never from its status.
pub async fn resolve_for_cleanup(client: &Client, cache: &TenancyCache, namespace: &str) -> Result<Tenancy> {
    lookup(client, cache, namespace, true).await
}

async fn lookup(client: &Client, cache: &TenancyCache, namespace: &str, deleting_too: bool) -> Result<Tenancy> {
    let none = |why: String| {
        Ok(Tenancy::None(format!(
            "{why}. Create Topics and CassandraSinks in a tenant's namespace (kubectl get tenants -o \
             custom-columns=TENANT:.metadata.name,NAMESPACE:.status.namespace), or create a Tenant for this one"
        )))
    };
    let Some(ns) = cache.namespace(client, namespace).await? else {
        return none(format!("namespace {namespace} does not exist"));
    };
    let Some(name) = ns.labels().get(TENANT_LABEL).cloned() else {
        return none(format!("namespace {namespace} belongs to no Tenant"));
    };
    let Some(tenant) = cache.tenant(client, &name).await? else {
        return none(format!("namespace {namespace} is labelled for Tenant {name}, which does not exist"));
    };
    if tenant.metadata.deletion_timestamp.is_some() && !deleting_too {
        return none(format!("Tenant {name} is being deleted"));
    }
    match cache.validations.of(&tenant) {
        Ok(v) if v.namespace == namespace => Ok(Tenancy::Tenant(tenant, v)),
        Ok(v) => none(format!("Tenant {name} now uses namespace {}, not {namespace}", v.namespace)),
        Err(e) => none(format!("Tenant {name} is invalid ({e})")),
    }
}
