//! A deleted Tenant's cleanup (its finalizer): access always goes, data per
//! `deletionPolicy`, bounded in time, and what stays is told in an event.

use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use futures::FutureExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::controller::Action;

use super::build;
use super::claim;
use super::rotation::second_login;
use super::validate::{CREDENTIALS_SECRET, ValidatedTenant, validate};
use crate::api::{DeletionPolicy, Tenant, Topic};
use crate::controller::{Context, Result};
use crate::external::cassandra::CassandraCallError;
use crate::external::kafka::KafkaCallError;
use crate::external::retries_within;

/// Bound on the whole cleanup of a deleted Tenant: a deletion never hangs on Kafka.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on the wait for a `Delete` Tenant's consumer groups to empty (its sinks stopping)
/// so they can be deleted: part of [`CLEANUP_TIMEOUT`], its users and ACLs go after it
/// within the rest either way.
const GROUPS_TIMEOUT: Duration = Duration::from_secs(12);

/// A deleted Tenant. Its access always goes: the Kafka user and every sink user of the
/// tenant with their ACLs and quotas, and the Cassandra role. Its data follows
/// `deletionPolicy`: `Delete` also deletes the topics under its prefix (dead-letter topics
/// included; a Topic that says `Retain` itself is kept) and drops the keyspace, `Retain`
/// keeps them. Only what this Tenant claimed is touched (a refused Tenant's names may be
/// another's). Bounded in time; what stays is told in an event, and the finalizer is
/// released either way so the deletion never hangs.
pub(super) async fn cleanup(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action> {
    ctx.forget_provisioned(tenant.as_ref());
    let Ok(v) = validate(&tenant) else {
        // An invalid Tenant never provisioned anything.
        return Ok(Action::await_change());
    };
    let Some(namespace) = claimed_namespace(&ctx, &tenant, &v).await? else {
        // Never provisioned, and its names may be the operator's or another Tenant's: touch nothing.
        return Ok(Action::await_change());
    };
    let delete_data = v.deletion_policy == DeletionPolicy::Delete;
    let kept_topics = match &namespace {
        Some(_) => retained_topics(&ctx, &v).await?,
        None => Vec::new(),
    };
    // With `Delete`, the consumer groups (committed offsets) go too, or a Tenant made again
    // under the name would be refused for them. Kafka deletes no group with members, so the
    // sinks stop first (the namespace and its pods would go right after the Tenant anyway):
    // their pods leave the groups as they exit.
    // Best effort: without it the groups in use are named as left behind, nothing waits on it.
    if delete_data
        && namespace.is_some()
        && let Err(error) = stop_sinks(&ctx, &v).await
    {
        tracing::warn!(tenant = %v.name, %error, "could not stop the sinks before deleting the consumer groups");
    }
    let removal = remove(&ctx, &v, &kept_topics, delete_data).await;
    let (note, failed, left) = removal.report(&v, &kept_topics, delete_data);
    tracing::info!(tenant = %v.name, %note, "tenant deleted");
    ctx.event(tenant.as_ref(), failed, if left { "LeftBehind" } else { "CleanedUp" }, note).await;
    Ok(Action::await_change())
}

/// The Tenant's namespace (`Some(None)`: there is none) when the Tenant claimed its names;
/// `None` when it never did (reserved, or refused: the names may be someone else's).
async fn claimed_namespace(ctx: &Context, tenant: &Tenant, v: &ValidatedTenant) -> Result<Option<Option<Namespace>>> {
    let namespace = Api::<Namespace>::all(ctx.client.clone()).get_opt(&v.namespace).await?;
    let secret = match &namespace {
        // Forbidden: the namespace is going, its RoleBinding to the Secrets first (see
        // `fence::secrets_role_binding`); a deletion never waits for it.
        Some(_) => {
            match Api::<Secret>::namespaced(ctx.client.clone(), &v.namespace).get_opt(CREDENTIALS_SECRET).await {
                Err(kube::Error::Api(e)) if e.code == 403 => None,
                other => other?,
            }
        }
        None => None,
    };
    let claimed =
        claim::is_claimed(tenant) || claim::provisioned_before_claims(tenant, namespace.as_ref(), secret.as_ref());
    Ok((claim::reserved_name(ctx, v).is_none() && claimed).then_some(namespace))
}

/// The Kafka names of the namespace's Topics that say `Retain` themselves.
async fn retained_topics(ctx: &Context, v: &ValidatedTenant) -> Result<Vec<String>> {
    let topics = Api::<Topic>::namespaced(ctx.client.clone(), &v.namespace).list(&ListParams::default()).await?;
    Ok(topics
        .items
        .iter()
        .filter(|t| t.spec.deletion_policy == Some(DeletionPolicy::Retain))
        .map(|t| crate::topic::validate::kafka_name(t, v))
        .collect())
}

/// What the removal did in each system: the consumer groups deleted (with `Delete`), the
/// Kafka users and deleted topics, Cassandra's side; each failure in words.
struct Removal {
    groups: Option<std::result::Result<Vec<String>, String>>,
    kafka: std::result::Result<(Vec<String>, Vec<String>), String>,
    cassandra: std::result::Result<(), String>,
}

/// Both systems at once, each bounded: one being down does not delay the other. Within the
/// bound, transient failures (a broker restarting, the breaker open, a group whose consumers
/// are still leaving) are retried. The groups go before the users: a sink whose login is
/// gone cannot leave its group.
async fn remove(ctx: &Context, v: &ValidatedTenant, kept_topics: &[String], delete_data: bool) -> Removal {
    let groups = || delete_groups(ctx, v);
    let kafka = || delete_kafka_access(ctx, v, kept_topics, delete_data);
    let cassandra = || delete_cassandra_access(ctx, v, delete_data);
    // Boxed: rustc cannot prove the retry futures `Send` inside the reconcile future otherwise.
    let groups = groups.retry(retries_within(GROUPS_TIMEOUT)).when(KafkaCallError::is_transient);
    let kafka = kafka.retry(retries_within(CLEANUP_TIMEOUT)).when(KafkaCallError::is_transient);
    let deadline = tokio::time::Instant::now() + CLEANUP_TIMEOUT;
    let kafka = async move {
        let groups = match delete_data {
            true => Some(match tokio::time::timeout(GROUPS_TIMEOUT, groups).await {
                Ok(deleted) => deleted.map_err(|e| e.to_string()),
                Err(_) => Err(format!("still in use, or Kafka silent, after {GROUPS_TIMEOUT:?}")),
            }),
            false => None,
        };
        (groups, tokio::time::timeout_at(deadline, kafka).await)
    }
    .boxed();
    let cassandra = cassandra.retry(retries_within(CLEANUP_TIMEOUT)).when(CassandraCallError::is_transient).boxed();
    let ((groups, kafka), cassandra) = tokio::join!(kafka, tokio::time::timeout(CLEANUP_TIMEOUT, cassandra));
    let timed_out = |system: &str| format!("{system} did not answer within {CLEANUP_TIMEOUT:?}");
    Removal {
        groups,
        kafka: kafka.map_err(|_| timed_out("Kafka")).and_then(|r| r.map_err(|e| e.to_string())),
        cassandra: cassandra.map_err(|_| timed_out("Cassandra")).and_then(|r| r.map_err(|e| e.to_string())),
    }
}

impl Removal {
    /// The event's note (pure): what was deleted and what stays. Returns the note, whether a
    /// removal failed, and whether anything was left behind.
    fn report(&self, v: &ValidatedTenant, kept_topics: &[String], delete_data: bool) -> (String, bool, bool) {
        let (mut done, mut left_behind) = (Vec::new(), Vec::new());
        match &self.groups {
            None => {}
            Some(Ok(groups)) if groups.is_empty() => {}
            Some(Ok(groups)) => done.push(format!("Kafka consumer groups {}", groups.join(", "))),
            Some(Err(e)) => left_behind.push(format!(
                "Kafka consumer groups under {} ({e}; once their consumers stop, kafka-consumer-groups.sh --delete \
                 --group each)",
                v.group_prefix
            )),
        }
        match &self.kafka {
            Ok((users, deleted)) => {
                done.push(match v.external_user {
                    // The principal itself is the issuer's; it stays, with nothing granted.
                    Some(_) => format!("the ACLs and quotas of external Kafka user {} (the user stays)", v.kafka_user),
                    None => format!("Kafka users {} with their ACLs and quotas", users.join(", ")),
                });
                if delete_data {
                    let deleted = if deleted.is_empty() { "(none)".into() } else { deleted.join(", ") };
                    done.push(format!("Kafka topics {deleted}"));
                }
            }
            Err(e) => {
                left_behind.push(format!("Kafka user {} with its ACLs ({e}), and its sinks' users", v.kafka_user))
            }
        }
        let cassandra_what = if delete_data {
            format!("Cassandra keyspace {} and role {}", v.keyspace, v.cassandra_role)
        } else {
            format!("Cassandra role {}", v.cassandra_role)
        };
        match &self.cassandra {
            Ok(()) => done.push(cassandra_what),
            Err(e) => left_behind.push(format!("{cassandra_what} ({e})")),
        }
        let failed = !left_behind.is_empty();
        if !delete_data {
            left_behind.extend(build::retained(v));
        } else if !kept_topics.is_empty() {
            left_behind.push(format!("Kafka topics {} (their Topic says Retain)", kept_topics.join(", ")));
        }
        let mut note = format!("deleted {}", if done.is_empty() { "nothing".into() } else { done.join("; ") });
        if !left_behind.is_empty() {
            note = format!("left behind: {}; {note}", left_behind.join("; "));
        }
        (note, failed, !left_behind.is_empty())
    }
}

/// A deleted Tenant's Kafka users (its own and its sinks') with their ACLs and quotas, and
/// with `Delete` its topics except those whose Topic says Retain. Returns the users and the
/// deleted topics. Idempotent, so it can be retried.
async fn delete_kafka_access(
    ctx: &Context,
    v: &ValidatedTenant,
    kept_topics: &[String],
    delete_data: bool,
) -> std::result::Result<(Vec<String>, Vec<String>), KafkaCallError> {
    let mut users = vec![v.kafka_user.clone()];
    // An external principal is not the operator's to delete (nor are there sink users).
    if v.external_user.is_none() {
        // Its sinks' users and its applications' (KafkaUsers) go with it.
        let own = [format!("{}.sink.", v.kafka_user), format!("{}.app.", v.kafka_user)];
        users.extend(ctx.kafka.scram_users().await?.into_iter().filter(|u| own.iter().any(|p| u.starts_with(p))));
    }
    for user in &users {
        ctx.kafka.delete_acls(ctx.kafka.describe_acls(&crate::access::kafka::user_principal(user)).await?).await?;
        let quotas: Vec<String> = ctx.kafka.describe_user_quotas(user).await?.into_keys().collect();
        ctx.kafka.alter_user_quotas(user, &Default::default(), &quotas).await?;
        if v.external_user.is_none() {
            ctx.kafka.delete_scram_user(user).await?;
        }
    }
    let mut deleted = Vec::new();
    if delete_data {
        for topic in ctx.kafka.topics_with_prefix(&v.topic_prefix).await? {
            if !kept_topics.contains(&topic) {
                ctx.kafka.delete_topic(&topic).await?;
                deleted.push(topic);
            }
        }
    }
    Ok((users, deleted))
}

/// A deleted `Delete` Tenant's sinks stopped: their Deployments (the operator's, by label)
/// deleted, so their pods exit and leave their consumer groups.
async fn stop_sinks(ctx: &Context, v: &ValidatedTenant) -> std::result::Result<(), kube::Error> {
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &v.namespace);
    let sinks = ListParams::default().labels(crate::sink::build::SINK_LABEL);
    for deployment in deployments.list(&sinks).await?.items {
        match deployments.delete(&deployment.name_any(), &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A deleted `Delete` Tenant's consumer groups (those under its group prefix, its sinks'
/// among them), with their committed offsets. Returns the groups deleted. Idempotent.
async fn delete_groups(ctx: &Context, v: &ValidatedTenant) -> std::result::Result<Vec<String>, KafkaCallError> {
    let groups = ctx.kafka.groups_with_prefix(&v.group_prefix).await?;
    ctx.kafka.delete_groups(&groups).await?;
    Ok(groups)
}

/// A deleted Tenant's Cassandra role, and with `Delete` its keyspace. Idempotent.
async fn delete_cassandra_access(
    ctx: &Context,
    v: &ValidatedTenant,
    delete_data: bool,
) -> std::result::Result<(), CassandraCallError> {
    if delete_data {
        ctx.cassandra.drop_keyspace(&v.keyspace).await?;
    }
    ctx.cassandra.drop_role(&second_login(&v.cassandra_role)).await?;
    ctx.cassandra.drop_role(&v.cassandra_role).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TenantSpec;

    fn water(policy: DeletionPolicy) -> ValidatedTenant {
        validate(&Tenant::new("water", TenantSpec { deletion_policy: policy, ..Default::default() })).unwrap()
    }

    #[test]
    fn the_note_says_what_went_and_what_stays_and_why() {
        let v = water(DeletionPolicy::Delete);
        let removal = Removal {
            groups: Some(Ok(vec!["water.sink.rows".into()])),
            kafka: Err("Kafka did not answer within 20s".into()),
            cassandra: Ok(()),
        };
        let (note, failed, left) = removal.report(&v, &["water.keep".to_string()], true);
        assert!(failed && left, "{note}");
        assert!(note.starts_with("left behind: Kafka user water with its ACLs (Kafka did not answer"), "{note}");
        assert!(note.contains("Kafka topics water.keep (their Topic says Retain)"), "{note}");
        assert!(note.contains("deleted Kafka consumer groups water.sink.rows; Cassandra keyspace water"), "{note}");

        let v = water(DeletionPolicy::Retain);
        let removal = Removal { groups: None, kafka: Ok((vec!["water".into()], vec![])), cassandra: Ok(()) };
        let (note, failed, left) = removal.report(&v, &[], false);
        assert!(!failed && left, "Retain keeps the data, and says so: {note}");
        assert!(note.contains("Kafka topics with prefix water. (deletionPolicy Retain)"), "{note}");
        assert!(note.ends_with("deleted Kafka users water with their ACLs and quotas; Cassandra role water"), "{note}");
    }
}
