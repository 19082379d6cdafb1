//! Which Tenant a namespaced object belongs to: the one whose namespace it is in.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::{Client, ResourceExt};

use crate::api::Tenant;
use crate::controller::{Result, TENANT_LABEL};
use crate::tenant::{ValidatedTenant, validate};

pub enum Tenancy {
    /// The namespace's tenant, validated.
    Tenant(Box<Tenant>, Box<ValidatedTenant>),
    /// No usable tenant; the message says why and what to do (for the object's status).
    None(String),
}

/// Resolves the tenant of `namespace` through the namespace's `tributary.dev/tenant` label
/// (set by the Tenant controller) and checks that the Tenant really claims that namespace.
pub async fn resolve(client: &Client, namespace: &str) -> Result<Tenancy> {
    let none = |why: String| {
        Ok(Tenancy::None(format!(
            "{why}. Create Topics and CassandraSinks in a tenant's namespace (kubectl get tenants -o \
             custom-columns=TENANT:.metadata.name,NAMESPACE:.status.namespace), or create a Tenant for this one"
        )))
    };
    let Some(ns) = Api::<Namespace>::all(client.clone()).get_opt(namespace).await? else {
        return none(format!("namespace {namespace} does not exist"));
    };
    let Some(name) = ns.labels().get(TENANT_LABEL).cloned() else {
        return none(format!("namespace {namespace} belongs to no Tenant"));
    };
    let Some(tenant) = Api::<Tenant>::all(client.clone()).get_opt(&name).await? else {
        return none(format!("namespace {namespace} is labelled for Tenant {name}, which does not exist"));
    };
    if tenant.metadata.deletion_timestamp.is_some() {
        return none(format!("Tenant {name} is being deleted"));
    }
    match validate(&tenant) {
        Ok(v) if v.namespace == namespace => Ok(Tenancy::Tenant(Box::new(tenant), Box::new(v))),
        Ok(v) => none(format!("Tenant {name} now uses namespace {}, not {namespace}", v.namespace)),
        Err(e) => none(format!("Tenant {name} is invalid ({e})")),
    }
}
