//! A deleted CassandraSink: what the finalizer removes (its Kafka user, ACLs and quotas),
//! within a bound, and what stays (its dead-letter topic).

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::build;
use crate::api::CassandraSink;
use crate::controller::{Context, Result};
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
    let delete = crate::login::remove_user(ctx, &names.kafka_user, CLEANUP_TIMEOUT);
    let left_behind =
        |why: String| (true, format!("left behind Kafka user {} with its ACLs ({why})", names.kafka_user));
    let (warning, note) = match delete.await {
        Ok(()) => (
            false,
            format!(
                "deleted Kafka user {} and its ACLs; kept dead-letter topic {}",
                names.kafka_user, names.dead_letter_topic
            ),
        ),
        Err(why) => left_behind(why),
    };
    ctx.event(sink.as_ref(), warning, "CleanedUp", note).await;
    Ok(Action::await_change())
}
