//! A deleted CassandraSink: what the finalizer removes (its Kafka user, ACLs and quotas),
//! within a bound, and what stays (its dead-letter topic).

use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::build;
use crate::api::CassandraSink;
use crate::controller::{Context, Result};
use crate::external::kafka::KafkaCallError;
use crate::external::retries_within;
use crate::tenancy::{Tenancy, resolve};

/// Bound on the cleanup of a deleted sink: a deletion never hangs on Kafka.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A deleted sink: its Deployment, ConfigMap and Secret go with it (owner references); its
/// Kafka user and ACLs are removed here; its dead-letter topic stays (it holds the records
/// that could not be written) and the event says so.
pub(super) async fn cleanup(sink: Arc<CassandraSink>, ctx: &Context, namespace: &str) -> Result<Action> {
    let Tenancy::Tenant(_, tenant) = resolve(&ctx.client, &ctx.tenancy, namespace).await? else {
        return Ok(Action::await_change());
    };
    let names = build::names(&sink.name_any(), &tenant);
    if tenant.external_user.is_some() {
        // It ran as the tenant's external principal: nothing of its own to delete.
        let note = format!("kept dead-letter topic {} (the sink ran as the tenant's user)", names.dead_letter_topic);
        ctx.event(sink.as_ref(), false, "CleanedUp", note).await;
        return Ok(Action::await_change());
    }
    let user = names.kafka_user.as_str();
    let delete = || async move {
        let current = ctx.kafka.describe_acls(&crate::access::kafka::user_principal(user)).await?;
        ctx.kafka.delete_acls(current).await?;
        // Its quotas too: nothing is left under its name for a new sink of that name to find.
        let quotas: Vec<String> = ctx.kafka.describe_user_quotas(user).await?.into_keys().collect();
        if !quotas.is_empty() {
            ctx.kafka.alter_user_quotas(user, &Default::default(), &quotas).await?;
        }
        ctx.kafka.delete_scram_user(user).await
    };
    // A broker restarting (or the breaker open after it) is waited out, within the bound.
    let delete = delete.retry(retries_within(CLEANUP_TIMEOUT)).when(KafkaCallError::is_transient);
    let left_behind =
        |why: String| (true, format!("left behind Kafka user {} with its ACLs ({why})", names.kafka_user));
    let (warning, note) = match tokio::time::timeout(CLEANUP_TIMEOUT, delete).await {
        Ok(Ok(())) => (
            false,
            format!(
                "deleted Kafka user {} and its ACLs; kept dead-letter topic {}",
                names.kafka_user, names.dead_letter_topic
            ),
        ),
        Ok(Err(e)) => left_behind(e.to_string()),
        Err(_) => left_behind("Kafka did not answer".into()),
    };
    ctx.event(sink.as_ref(), warning, "CleanedUp", note).await;
    Ok(Action::await_change())
}
