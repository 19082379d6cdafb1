//! What to do about a topic, from what is wanted and what Kafka has (pure).

use crate::external::kafka::{DesiredTopic, ObservedTopic};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Create,
    AddPartitions {
        from: i32,
        to: i32,
    },
    Nothing,
    /// Kafka's topic differs in a way the operator will not change (it never deletes or
    /// shrinks a topic); the message says what differs and what to do.
    Refuse {
        reason: &'static str,
        message: String,
    },
}

/// `adopting`: the Topic has never been reconciled, so a topic that already exists in
/// Kafka was made by someone else; it is taken over only if its shape matches exactly.
pub fn plan(desired: &DesiredTopic, observed: Option<&ObservedTopic>, adopting: bool) -> Plan {
    let Some(observed) = observed else { return Plan::Create };
    let mut differences = Vec::new();
    if observed.partitions != desired.partitions {
        differences.push(format!("partitions: Kafka has {}, spec asks {}", observed.partitions, desired.partitions));
    }
    if observed.replication_factor != desired.replication_factor {
        differences.push(format!(
            "replicationFactor: Kafka has {}, spec asks {}",
            observed.replication_factor, desired.replication_factor
        ));
    }
    if adopting && !differences.is_empty() {
        return Plan::Refuse {
            reason: "AdoptionRefused",
            message: format!(
                "topic {} already exists in Kafka with another shape ({}); it was left untouched. Match the spec to it, or use another name",
                desired.name,
                differences.join("; ")
            ),
        };
    }
    if observed.replication_factor != desired.replication_factor {
        return Plan::Refuse {
            reason: "ReplicationFactorMismatch",
            message: format!(
                "topic {} has replication factor {} in Kafka, the spec asks {}; the operator does not reassign replicas",
                desired.name, observed.replication_factor, desired.replication_factor
            ),
        };
    }
    if observed.partitions > desired.partitions {
        return Plan::Refuse {
            reason: "PartitionsMismatch",
            message: format!(
                "topic {} has {} partitions in Kafka, more than the spec's {}; Kafka cannot remove partitions: set spec.partitions to {}",
                desired.name, observed.partitions, desired.partitions, observed.partitions
            ),
        };
    }
    if observed.partitions < desired.partitions {
        return Plan::AddPartitions { from: observed.partitions, to: desired.partitions };
    }
    Plan::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(p: i32, rf: i32) -> DesiredTopic {
        DesiredTopic { name: "water.data".into(), partitions: p, replication_factor: rf, config: Default::default() }
    }
    fn observed(p: i32, rf: i32) -> ObservedTopic {
        ObservedTopic { partitions: p, replication_factor: rf }
    }

    #[test]
    fn plans_follow_the_safe_rules() {
        assert_eq!(plan(&desired(3, 3), None, true), Plan::Create);
        assert_eq!(plan(&desired(3, 3), Some(&observed(3, 3)), true), Plan::Nothing);
        assert_eq!(plan(&desired(6, 3), Some(&observed(3, 3)), false), Plan::AddPartitions { from: 3, to: 6 });
        let Plan::Refuse { reason, message } = plan(&desired(6, 3), Some(&observed(3, 1)), true) else { panic!() };
        assert_eq!(reason, "AdoptionRefused");
        assert!(
            message.contains("partitions: Kafka has 3, spec asks 6; replicationFactor: Kafka has 1, spec asks 3"),
            "{message}"
        );
        let Plan::Refuse { reason, .. } = plan(&desired(3, 3), Some(&observed(6, 3)), false) else { panic!() };
        assert_eq!(reason, "PartitionsMismatch");
        let Plan::Refuse { reason, .. } = plan(&desired(3, 3), Some(&observed(3, 2)), false) else { panic!() };
        assert_eq!(reason, "ReplicationFactorMismatch");
    }
}
