//! What to do about a topic, from what is wanted and what Kafka has (pure).

use super::model::{DesiredTopic, LiveConfig, ObservedTopic};
use crate::access::kafka::ConfigOp;
use crate::api::conditions::DesiredCondition;
use crate::api::{DeletionPolicy, Reason, TopicStatus};

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
        reason: Reason,
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
            reason: Reason::AdoptionRefused,
            message: format!(
                "topic {} already exists in Kafka with another shape ({}); it was left untouched. Match the spec to it, or use another name",
                desired.name,
                differences.join("; ")
            ),
        };
    }
    if observed.replication_factor != desired.replication_factor {
        return Plan::Refuse {
            reason: Reason::ReplicationFactorMismatch,
            message: format!(
                "topic {} has replication factor {} in Kafka, the spec asks {}; the operator does not reassign replicas",
                desired.name, observed.replication_factor, desired.replication_factor
            ),
        };
    }
    if observed.partitions > desired.partitions {
        return Plan::Refuse {
            reason: Reason::PartitionsMismatch,
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

/// One config change to bring Kafka to the spec, and how to tell it (`retention.ms: 1000 →
/// 604800000`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChange {
    pub key: String,
    pub op: ConfigOp,
    pub description: String,
}

/// The changes that make the topic's owned config keys match the spec, and nothing else:
/// a key the spec sets gets its value; an override of an owned key the spec does not set is
/// removed (back to the broker default). Empty when Kafka already matches.
pub fn config_changes(
    desired: &DesiredTopic,
    live: &std::collections::BTreeMap<String, LiveConfig>,
) -> Vec<ConfigChange> {
    let shown = |v: Option<&LiveConfig>| match v.and_then(|c| c.value.as_deref()) {
        Some(value) => value.to_string(),
        None => "unset".to_string(),
    };
    let mut changes = Vec::new();
    for (key, value) in &desired.config {
        let current = live.get(key);
        if current.and_then(|c| c.value.as_ref()) != Some(value) {
            changes.push(ConfigChange {
                key: key.clone(),
                op: ConfigOp::Set(value.clone()),
                description: format!("{key}: {} → {value}", shown(current)),
            });
        }
    }
    for (key, current) in live {
        if current.dynamic && !desired.config.contains_key(key) && desired.owned_keys.contains(key) {
            changes.push(ConfigChange {
                key: key.clone(),
                op: ConfigOp::Delete,
                description: format!("{key}: {} → broker default", shown(Some(current))),
            });
        }
    }
    changes
}

/// What a Topic reconcile found: its Ready condition and the fields of its status.
pub struct Outcome {
    pub ready: DesiredCondition,
    pub tenant: Option<String>,
    pub kafka_name: Option<String>,
    pub observed: Option<ObservedTopic>,
    /// Drift set back in this reconcile (`None`: nothing new to report).
    pub reverted: Option<Vec<String>>,
    pub deletion_policy: Option<DeletionPolicy>,
}

impl Outcome {
    pub fn new(ready: DesiredCondition) -> Self {
        Outcome { ready, tenant: None, kafka_name: None, observed: None, reverted: None, deletion_policy: None }
    }
}

/// The Topic's status from the stored one and this reconcile's outcome, conditions as stored
/// (`status::publish` merges `outcome.ready`). The drift list is kept until the spec changes
/// or a reconcile reverts something new.
pub fn status(old: Option<&TopicStatus>, generation: Option<i64>, outcome: &Outcome) -> TopicStatus {
    let spec_changed = old.and_then(|s| s.observed_generation) != generation;
    let reverted_config = match &outcome.reverted {
        Some(reverted) => reverted.clone(),
        None if spec_changed => Vec::new(),
        None => old.map(|s| s.reverted_config.clone()).unwrap_or_default(),
    };
    TopicStatus {
        observed_generation: generation,
        conditions: old.map(|s| s.conditions.clone()).unwrap_or_default(),
        kafka_name: outcome.kafka_name.clone(),
        tenant: outcome.tenant.clone(),
        partitions: outcome.observed.as_ref().map(|o| o.partitions),
        replication_factor: outcome.observed.as_ref().map(|o| o.replication_factor),
        reverted_config,
        deletion_policy: outcome.deletion_policy,
        // Filled in by the reconcile from the namespace's grants.
        shared_with: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(p: i32, rf: i32) -> DesiredTopic {
        DesiredTopic {
            name: "water.data".into(),
            partitions: p,
            replication_factor: rf,
            config: Default::default(),
            owned_keys: Default::default(),
        }
    }
    fn observed(p: i32, rf: i32) -> ObservedTopic {
        ObservedTopic { partitions: p, replication_factor: rf, ..Default::default() }
    }

    #[test]
    fn only_owned_keys_that_differ_are_changed() {
        let live = |pairs: &[(&str, &str, bool)]| {
            pairs
                .iter()
                .map(|(k, v, dynamic)| (k.to_string(), LiveConfig { value: Some(v.to_string()), dynamic: *dynamic }))
                .collect()
        };
        let mut want = desired(3, 3);
        want.config = [("retention.ms".to_string(), "604800000".to_string())].into();
        want.owned_keys = ["retention.ms", "segment.ms", "cleanup.policy"].map(String::from).into();

        // Kafka already matches: nothing to do, so nothing is written on a resync.
        let same = live(&[("retention.ms", "604800000", true), ("cleanup.policy", "delete", false)]);
        assert_eq!(config_changes(&want, &same), vec![]);

        // A value changed by hand is set back; an owned override the spec lacks is removed;
        // an override of a key the tenant does not own (the admin's) is left alone.
        let drifted = live(&[
            ("retention.ms", "1000", true),
            ("segment.ms", "60000", true),
            ("min.insync.replicas", "1", true),
            ("cleanup.policy", "delete", false),
        ]);
        let changes = config_changes(&want, &drifted);
        let shown: Vec<_> = changes.iter().map(|c| (c.key.as_str(), &c.op, c.description.as_str())).collect();
        assert_eq!(
            shown,
            vec![
                ("retention.ms", &ConfigOp::Set("604800000".into()), "retention.ms: 1000 → 604800000"),
                ("segment.ms", &ConfigOp::Delete, "segment.ms: 60000 → broker default"),
            ]
        );
    }

    #[test]
    fn plans_follow_the_safe_rules() {
        assert_eq!(plan(&desired(3, 3), None, true), Plan::Create);
        assert_eq!(plan(&desired(3, 3), Some(&observed(3, 3)), true), Plan::Nothing);
        assert_eq!(plan(&desired(6, 3), Some(&observed(3, 3)), false), Plan::AddPartitions { from: 3, to: 6 });
        let Plan::Refuse { reason, message } = plan(&desired(6, 3), Some(&observed(3, 1)), true) else { panic!() };
        assert_eq!(reason, Reason::AdoptionRefused);
        assert!(
            message.contains("partitions: Kafka has 3, spec asks 6; replicationFactor: Kafka has 1, spec asks 3"),
            "{message}"
        );
        let Plan::Refuse { reason, .. } = plan(&desired(3, 3), Some(&observed(6, 3)), false) else { panic!() };
        assert_eq!(reason, Reason::PartitionsMismatch);
        let Plan::Refuse { reason, .. } = plan(&desired(3, 3), Some(&observed(3, 2)), false) else { panic!() };
        assert_eq!(reason, Reason::ReplicationFactorMismatch);
    }
}
