//! Status conditions (`metav1.Condition`), stored as a list-map keyed on `type`, and the pure
//! function that merges newly observed conditions into the previous ones.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use schemars::Schema;
use schemars::generate::SchemaGenerator;

pub const READY: &str = "Ready";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// Declares [`Reason`] and its text in one list, so a reason cannot be spelled two ways.
macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Every reason a condition of Tributary's kinds carries (CamelCase; also the reason
        /// of the event that reports a change, and a metric label, so the set is fixed).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$doc])* $name),*
        }

        impl Reason {
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name)),*
                }
            }
        }
    };
}

reasons! {
    // Ready=True.
    /// A Tenant with all it owns, or a Topic as specified in Kafka.
    Provisioned,
    /// A CassandraSink with all its replicas ready.
    Running,
    // Ready=False, the object's own spec or ownership.
    InvalidSpec,
    OwnershipConflict,
    NamespaceTaken,
    AdoptionRefused,
    Conflict,
    GuardrailViolated,
    PartitionsMismatch,
    ReplicationFactorMismatch,
    MappingInvalid,
    // Ready=False, waiting for something else.
    Pending,
    NoTenant,
    TenantNotReady,
    TopicNotFound,
    TopicNotReady,
    ChildrenNotReady,
    ReplicasNotReady,
    /// A CassandraSink whose pods are stopped while its group's offsets move.
    Replaying,
    /// A CassandraSink stopped by `spec.suspend`: no pod runs, its offsets are kept.
    Suspended,
    /// A KafkaUser or CassandraSink names another tenant's topic that is not granted to
    /// its tenant now (no TopicGrant, or a Tenant not Ready).
    NotGranted,
    // Ready=False, Kafka or Cassandra.
    KafkaUnavailable,
    KafkaDegraded,
    KafkaRejected,
    CassandraUnavailable,
    CassandraRejected,
    // MappingValid.
    TableMatches,
    ColumnMismatch,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition as a reconcile observes it, before it is merged into the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: &'static str,
    pub status: ConditionStatus,
    pub reason: Reason,
    /// For a person: what is wrong and what to change.
    pub message: String,
}

impl DesiredCondition {
    pub fn new(type_: &'static str, status: ConditionStatus, reason: Reason, message: impl Into<String>) -> Self {
        DesiredCondition { type_, status, reason, message: message.into() }
    }

    pub fn ready(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(READY, ConditionStatus::True, reason, message)
    }

    pub fn not_ready(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(READY, ConditionStatus::False, reason, message)
    }
}

/// Merges `desired` into `previous`: a condition whose status did not change keeps its
/// `lastTransitionTime`; conditions of other types are kept; the result is sorted by type so
/// that an unchanged status serializes identically (no needless status writes).
pub fn merge(
    previous: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> =
        previous.iter().filter(|c| !desired.iter().any(|d| d.type_ == c.type_)).cloned().collect();
    for d in desired {
        let old = previous.iter().find(|c| c.type_ == d.type_);
        let last_transition_time = match old {
            Some(old) if old.status == d.status.as_str() => old.last_transition_time.clone(),
            _ => Time(now),
        };
        out.push(Condition {
            type_: d.type_.to_string(),
            status: d.status.as_str().to_string(),
            reason: d.reason.as_str().to_string(),
            message: d.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// The status of condition `type_`, if present.
pub fn status_of<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| c.status.as_str())
}

/// Schema for a `conditions` field: metav1.Condition items in a list-map keyed on `type`,
/// so server-side apply merges conditions by type.
pub fn schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn unchanged_status_keeps_its_transition_time_and_a_change_moves_it() {
        let first = merge(&[], &[DesiredCondition::not_ready(Reason::Pending, "creating")], Some(1), at(100));
        assert_eq!(first[0].last_transition_time, Time(at(100)));

        let same =
            merge(&first, &[DesiredCondition::not_ready(Reason::TopicNotReady, "still creating")], Some(2), at(200));
        assert_eq!(same[0].last_transition_time, Time(at(100)), "status False -> False keeps the time");
        assert_eq!(same[0].reason, "TopicNotReady");
        assert_eq!(same[0].observed_generation, Some(2));

        let flipped = merge(&same, &[DesiredCondition::ready(Reason::Provisioned, "done")], Some(2), at(300));
        assert_eq!(flipped[0].last_transition_time, Time(at(300)));
        assert_eq!(flipped[0].status, "True");
    }

    #[test]
    fn other_condition_types_are_kept_and_the_list_is_sorted() {
        let start = merge(
            &[],
            &[
                DesiredCondition::ready(Reason::Running, ""),
                DesiredCondition::new("KafkaReady", ConditionStatus::True, Reason::Running, ""),
            ],
            None,
            at(1),
        );
        let next = merge(&start, &[DesiredCondition::not_ready(Reason::KafkaRejected, "x")], None, at(2));
        let types: Vec<&str> = next.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["KafkaReady", "Ready"]);
        assert_eq!(status_of(&next, "Ready"), Some("False"));
        assert_eq!(status_of(&next, "KafkaReady"), Some("True"));
    }
}
