//! The one way a reconcile of any kind ends.
//!
//! Each kind's reconcile builds its status from what it found (its `build::status`, a pure
//! function of the old status and the reconcile's outcome, conditions left as they were)
//! and names the conditions it observed. [`publish`] does the rest, the same for all three
//! kinds: merge the observed conditions into the old ones (an unchanged status keeps its
//! `lastTransitionTime`), tell a Ready change in an event, and write the status with
//! server-side apply only when it differs from what is stored.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::access::{KafkaUser, KafkaUserStatus, TopicGrant, TopicGrantStatus};
use crate::api::conditions::{self, DesiredCondition, READY};
use crate::api::{CassandraSink, CassandraSinkStatus, Reason, Tenant, TenantStatus, Topic, TopicStatus};
use crate::controller::{Context, FIELD_MANAGER, Result};

/// A kind whose status carries conditions, as the one status path sees it.
pub trait WithStatus: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug {
    type Status: Serialize + PartialEq + Clone + Default;

    fn status(&self) -> Option<&Self::Status>;
    fn conditions(status: &Self::Status) -> &[Condition];
    fn conditions_mut(status: &mut Self::Status) -> &mut Vec<Condition>;

    /// The part of the status the reconcile writes: fields another writer owns (a sink's
    /// counts, read from its pods) are left out, so the reconcile never undoes them.
    fn reconciled(status: &Self::Status) -> Self::Status {
        status.clone()
    }

    /// The stored conditions (none before the first status).
    fn current_conditions(&self) -> &[Condition] {
        self.status().map(Self::conditions).unwrap_or_default()
    }

    /// Whether `tributary_object_ready` carries this kind: only kinds whose deletion the
    /// operator sees (a finalizer), so the series goes with the object ([`forget`]).
    const READY_METRIC: bool = true;
}

/// The accessors are the same for every kind: `status` with a `conditions` list.
macro_rules! with_status {
    ($kind:ty, $status:ty $(, reconciled: $reconciled:path)?) => {
        impl WithStatus for $kind {
            type Status = $status;
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn conditions(status: &$status) -> &[Condition] {
                &status.conditions
            }
            fn conditions_mut(status: &mut $status) -> &mut Vec<Condition> {
                &mut status.conditions
            }
            $(fn reconciled(status: &$status) -> $status {
                $reconciled(status)
            })?
        }
    };
}

with_status!(Tenant, TenantStatus, reconciled: crate::tenant::usage::strip);
with_status!(Topic, TopicStatus);
with_status!(KafkaUser, KafkaUserStatus);
impl WithStatus for TopicGrant {
    type Status = TopicGrantStatus;
    fn status(&self) -> Option<&TopicGrantStatus> {
        self.status.as_ref()
    }
    fn conditions(status: &TopicGrantStatus) -> &[Condition] {
        &status.conditions
    }
    fn conditions_mut(status: &mut TopicGrantStatus) -> &mut Vec<Condition> {
        &mut status.conditions
    }
    // No finalizer: its deletion is never seen, so it has no readiness series.
    const READY_METRIC: bool = false;
}
with_status!(CassandraSink, CassandraSinkStatus, reconciled: crate::sink::report::Reported::strip);

/// The status to write: `status` with the `observed` conditions merged into the stored ones
/// at `now`, reduced to the fields the reconcile owns. Pure, so the merge is tested alone.
pub fn finish<K: WithStatus>(
    obj: &K,
    mut status: K::Status,
    observed: &[DesiredCondition],
    now: Timestamp,
) -> K::Status {
    let merged = conditions::merge(obj.current_conditions(), observed, obj.meta().generation, now);
    *K::conditions_mut(&mut status) = merged;
    K::reconciled(&status)
}

/// Ends a reconcile of `obj`: see the module doc. `status` is the kind's built status.
pub async fn publish<K: WithStatus>(
    ctx: &Context,
    api: &Api<K>,
    obj: &K,
    status: K::Status,
    observed: &[DesiredCondition],
) -> Result<()> {
    let status = finish(obj, status, observed, Timestamp::now());
    ready_change(ctx, obj, K::conditions(&status)).await;
    if K::READY_METRIC {
        let ready = conditions::status_of(K::conditions(&status), READY) == Some("True");
        ctx.metrics.object_ready(&K::kind(&()), obj.meta().namespace.as_deref(), &obj.name_any(), ready);
    }
    if obj.status().map(K::reconciled).as_ref() == Some(&status) {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

/// `obj` is being deleted: its readiness series goes (called from its finalizer's cleanup).
pub fn forget<K: WithStatus>(ctx: &Context, obj: &K) {
    ctx.metrics.forget_object(&K::kind(&()), obj.meta().namespace.as_deref(), &obj.name_any());
}

/// An event when the Ready condition changes status, so `kubectl describe` tells the story.
async fn ready_change<K: WithStatus>(ctx: &Context, obj: &K, after: &[Condition]) {
    let Some(now) = after.iter().find(|c| c.type_ == READY) else { return };
    if conditions::status_of(obj.current_conditions(), READY) != Some(now.status.as_str()) {
        ctx.event(obj, now.status != "True", &now.reason, now.message.clone()).await;
    }
}

/// Whether Kafka or Cassandra refused this very generation of the spec for good
/// (`KafkaRejected`, `CassandraRejected`). Such an object waits for a change of its spec, in
/// this process as in the next: an operator restart does not send the refused call again.
pub fn refused_for_good<K: WithStatus>(obj: &K) -> bool {
    refused(obj.meta().generation, obj.current_conditions())
}

fn refused(generation: Option<i64>, conditions: &[Condition]) -> bool {
    let refusals = [Reason::KafkaRejected.as_str(), Reason::CassandraRejected.as_str()];
    generation.is_some()
        && conditions.iter().any(|c| {
            c.type_ == READY
                && c.status == "False"
                && refusals.contains(&c.reason.as_str())
                && c.observed_generation == generation
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::ConditionStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ready(status: &str, reason: &str, generation: i64) -> Condition {
        Condition {
            type_: READY.into(),
            status: status.into(),
            reason: reason.into(),
            observed_generation: Some(generation),
            message: String::new(),
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn a_refusal_waits_for_a_new_generation_and_nothing_else_does() {
        assert!(refused(Some(3), &[ready("False", "KafkaRejected", 3)]));
        assert!(refused(Some(3), &[ready("False", "CassandraRejected", 3)]));
        assert!(!refused(Some(4), &[ready("False", "KafkaRejected", 3)]), "the spec changed since");
        assert!(!refused(Some(3), &[ready("False", "KafkaUnavailable", 3)]), "transient: retried");
        assert!(!refused(Some(3), &[ready("True", "Provisioned", 3)]));
        assert!(!refused(None, &[ready("False", "KafkaRejected", 3)]));
    }

    #[test]
    fn finishing_merges_the_observed_conditions_and_keeps_only_what_the_reconcile_owns() {
        let mut sink: CassandraSink = serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "CassandraSink",
            "metadata": {"name": "s", "namespace": "n", "generation": 2},
            "spec": {"topic": "t", "table": "x", "columns": [{"name": "id", "type": "text"}], "partitionKey": ["id"]},
        }))
        .expect("a sink");
        let mapping = DesiredCondition::new("MappingValid", ConditionStatus::True, Reason::TableMatches, "ok");
        sink.status = Some(CassandraSinkStatus {
            conditions: vec![ready("False", "Pending", 1)],
            records_written: Some(7),
            ..Default::default()
        });
        let built = CassandraSinkStatus { table: Some("ks.x".into()), ..sink.status.clone().unwrap() };
        let at = Timestamp::from_second(100).unwrap();
        let done = finish(&sink, built, &[DesiredCondition::ready(Reason::Running, "up"), mapping], at);
        let types: Vec<_> = done.conditions.iter().map(|c| (c.type_.as_str(), c.status.as_str())).collect();
        assert_eq!(types, [("MappingValid", "True"), ("Ready", "True")]);
        assert!(done.conditions.iter().all(|c| c.observed_generation == Some(2)));
        assert_eq!(done.conditions[1].last_transition_time, Time(at), "False -> True moves the time");
        assert_eq!(done.records_written, None, "the pods' counts belong to the report writer");
        assert_eq!(done.table.as_deref(), Some("ks.x"));
    }
}
