//! The second half of a credential rotation: the previous logins are removed once the grace
//! period is over and every sink Deployment runs with the new ones (see [`super::rotation`]).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::build::Passwords;
use super::rotation::{Rotation, second_login};
use super::validate::ValidatedTenant;
use crate::access::kafka::ScramMechanism;
use crate::api::Tenant;
use crate::controller::{Context, Result};
use crate::step::Step;

/// Removes the previous credentials of a rotation (`previous_kafka`: a SCRAM mechanism the
/// tenant's user still holds; `previous_cassandra`: a login that still works) once the grace
/// period is over and, for Cassandra, every sink Deployment runs the login `cassandra_fp`.
/// Returns what they still wait for and when to look again, or the call that failed.
pub(super) async fn retire_previous(
    ctx: &Context,
    tenant: &Tenant,
    v: &ValidatedTenant,
    rotation: &Rotation,
    previous_kafka: Option<ScramMechanism>,
    previous_cassandra: Option<String>,
    cassandra_fp: &str,
) -> Step<Option<(String, Duration)>> {
    if previous_kafka.is_none() && previous_cassandra.is_none() {
        return Ok(None);
    }
    let grace_end = rotation.grace_end(&v.rotation);
    let left = grace_end.duration_since(Timestamp::now());
    let mut waiting = Vec::new();
    if left.is_positive() {
        waiting.push(format!("the grace period (until {grace_end})"));
    }
    let rolling = match &previous_cassandra {
        Some(_) => sinks_not_running(ctx, &v.namespace, cassandra_fp).await?,
        None => Vec::new(),
    };
    if !rolling.is_empty() {
        waiting.push(format!("sink Deployments {} to run with the new credentials", rolling.join(", ")));
    }
    let mut removed = Vec::new();
    if let Some(mechanism) = previous_kafka.filter(|_| !left.is_positive()) {
        ctx.kafka.delete_scram_credential(&v.kafka_user, mechanism).await?;
        removed.push(format!("the {} credential of Kafka user {}", mechanism.as_str(), v.kafka_user));
    }
    if let Some(login) = previous_cassandra.filter(|_| waiting.is_empty()) {
        // The role itself holds the grants: it only loses its login; the second login goes.
        if login == v.cassandra_role {
            ctx.cassandra.disable_login(&login).await?;
        } else {
            ctx.cassandra.drop_role(&login).await?;
        }
        removed.push(format!("Cassandra login {login}"));
    }
    if !removed.is_empty() {
        ctx.event(tenant, false, "PreviousCredentialsRemoved", format!("removed {}", removed.join(" and "))).await;
    }
    if waiting.is_empty() {
        return Ok(None);
    }
    let after = if left.is_positive() {
        Duration::try_from(left).unwrap_or(SINK_ROLLOUT_POLL) + Duration::from_secs(1)
    } else {
        SINK_ROLLOUT_POLL
    };
    Ok(Some((format!("the previous credentials work until {}", waiting.join(" and ")), after)))
}

/// Whether the other slots of `current` still hold a working login (the previous rotation
/// is not finished); when Kafka or Cassandra cannot tell, they are taken as in use.
pub(super) async fn previous_in_use(ctx: &Context, v: &ValidatedTenant, current: &Passwords) -> bool {
    let kafka = async {
        if v.external_user.is_some() {
            return Ok(false);
        }
        let held = ctx.kafka.scram_mechanisms(&v.kafka_user).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(held.contains(&current.kafka_slot.other()))
    };
    let cassandra = async {
        let other = if current.cassandra_second { v.cassandra_role.clone() } else { second_login(&v.cassandra_role) };
        let role = ctx.cassandra.role(&other).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(role.is_some_and(|r| r.login))
    };
    !matches!(futures::try_join!(kafka, cassandra), Ok((false, false)))
}

/// How often a rotation waiting for sink Deployments to roll looks at them.
const SINK_ROLLOUT_POLL: Duration = Duration::from_secs(3);

/// The sink Deployments of the namespace that do not yet run only pods with the Cassandra
/// login `fingerprint`.
async fn sinks_not_running(ctx: &Context, namespace: &str, fingerprint: &str) -> Result<Vec<String>> {
    let deployments = Api::<Deployment>::namespaced(ctx.client.clone(), namespace);
    let list = deployments.list(&ListParams::default().labels(crate::sink::build::SINK_LABEL)).await?;
    let runs = |d: &Deployment| crate::sink::build::rolled_out(d, crate::sink::build::CASSANDRA_LOGIN, fingerprint);
    Ok(list.items.iter().filter(|d| !runs(d)).map(|d| d.name_any()).collect())
}
