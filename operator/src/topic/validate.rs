//! Topic spec + its tenant → a [`DesiredTopic`], or a refusal that names the rule (pure).

use kube::ResourceExt;

use crate::api::Topic;
use crate::external::kafka::DesiredTopic;
use crate::tenant::ValidatedTenant;

/// Kafka's limit on topic names.
pub const MAX_KAFKA_NAME: usize = 249;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `InvalidSpec` or `GuardrailViolated`.
    pub reason: &'static str,
    pub message: String,
}

fn refuse(reason: &'static str, message: String) -> Refusal {
    Refusal { reason, message }
}

/// The tenant's other Topics, for the guardrails that count over all of them.
pub struct Siblings {
    pub topics: i32,
    pub partitions: i32,
}

pub fn kafka_name(topic: &Topic, tenant: &ValidatedTenant) -> String {
    format!("{}{}", tenant.topic_prefix, topic.spec.topic_name.clone().unwrap_or_else(|| topic.name_any()))
}

pub fn validate(topic: &Topic, tenant: &ValidatedTenant, siblings: &Siblings) -> Result<DesiredTopic, Refusal> {
    let name = kafka_name(topic, tenant);
    let spec = &topic.spec;
    if name.len() > MAX_KAFKA_NAME {
        return Err(refuse(
            "InvalidSpec",
            format!(
                "Kafka name {name:?} has {} characters; Kafka allows {MAX_KAFKA_NAME}: shorten spec.topicName (or the object name)",
                name.len()
            ),
        ));
    }
    if name.chars().any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(refuse(
            "InvalidSpec",
            format!("Kafka name {name:?} may only use letters, digits, '.', '_' and '-'"),
        ));
    }
    let limits = &tenant.limits;
    let rf = spec.replication_factor;
    if rf < limits.min_replication_factor || rf > limits.max_replication_factor {
        return Err(refuse(
            "GuardrailViolated",
            format!(
                "replicationFactor {rf} is outside Tenant {}'s range {}-{}: use a value in that range",
                tenant.name, limits.min_replication_factor, limits.max_replication_factor
            ),
        ));
    }
    let refused_keys: Vec<&str> =
        spec.config.keys().filter(|k| !tenant.allowed_configs.contains(k)).map(String::as_str).collect();
    if !refused_keys.is_empty() {
        return Err(refuse(
            "GuardrailViolated",
            format!(
                "config keys not allowed for Tenant {}: {}; allowed: {}",
                tenant.name,
                refused_keys.join(", "),
                if tenant.allowed_configs.is_empty() { "none".to_string() } else { tenant.allowed_configs.join(", ") }
            ),
        ));
    }
    if let Some(max) = limits.max_topics
        && siblings.topics + 1 > max
    {
        return Err(refuse(
            "GuardrailViolated",
            format!(
                "Tenant {} may have {max} topics and already has {}: delete a Topic or raise spec.kafka.limits.maxTopics",
                tenant.name, siblings.topics
            ),
        ));
    }
    if let Some(max) = limits.max_partitions
        && siblings.partitions + spec.partitions > max
    {
        return Err(refuse(
            "GuardrailViolated",
            format!(
                "Tenant {} may use {max} partitions; its other topics use {} and this one asks for {}: lower spec.partitions or raise spec.kafka.limits.maxPartitions",
                tenant.name, siblings.partitions, spec.partitions
            ),
        ));
    }
    let owned_keys = tenant.allowed_configs.iter().chain(spec.config.keys()).cloned().collect();
    Ok(DesiredTopic {
        name,
        partitions: spec.partitions,
        replication_factor: rf,
        config: spec.config.clone(),
        owned_keys,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::{Tenant, TenantSpec, TopicSpec};
    use crate::tenant::validate as validate_tenant;

    fn tenant(f: impl FnOnce(&mut TenantSpec)) -> ValidatedTenant {
        let mut spec = TenantSpec::default();
        f(&mut spec);
        validate_tenant(&Tenant::new("water", spec)).unwrap()
    }

    fn topic(name: &str, partitions: i32, rf: i32, config: &[(&str, &str)]) -> Topic {
        Topic::new(
            name,
            TopicSpec {
                topic_name: None,
                partitions,
                replication_factor: rf,
                config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
                deletion_policy: None,
            },
        )
    }

    const NONE: Siblings = Siblings { topics: 0, partitions: 0 };

    #[test]
    fn the_kafka_name_is_the_tenant_prefix_plus_the_topic_name() {
        let desired = validate(&topic("data", 3, 3, &[("retention.ms", "1000")]), &tenant(|_| {}), &NONE).unwrap();
        assert_eq!(desired.name, "water.data");
        assert_eq!((desired.partitions, desired.replication_factor), (3, 3));
        assert_eq!(desired.config["retention.ms"], "1000");
    }

    #[test]
    fn guardrails_refuse_with_the_numbers() {
        let t = tenant(|s| {
            s.kafka.limits.max_topics = Some(2);
            s.kafka.limits.max_partitions = Some(10);
        });
        let err = validate(&topic("a", 3, 1, &[]), &t, &NONE).unwrap_err();
        assert_eq!(err.reason, "GuardrailViolated");
        assert!(err.message.contains("replicationFactor 1 is outside Tenant water's range 3-3"), "{}", err.message);

        let err = validate(&topic("a", 3, 3, &[("min.insync.replicas", "1")]), &t, &NONE).unwrap_err();
        assert!(
            err.message.contains("config keys not allowed for Tenant water: min.insync.replicas"),
            "{}",
            err.message
        );

        let err = validate(&topic("a", 3, 3, &[]), &t, &Siblings { topics: 2, partitions: 6 }).unwrap_err();
        assert!(err.message.contains("may have 2 topics and already has 2"), "{}", err.message);

        let err = validate(&topic("a", 6, 3, &[]), &t, &Siblings { topics: 1, partitions: 6 }).unwrap_err();
        assert!(
            err.message.contains("may use 10 partitions; its other topics use 6 and this one asks for 6"),
            "{}",
            err.message
        );
        assert!(validate(&topic("a", 4, 3, &[]), &t, &Siblings { topics: 1, partitions: 6 }).is_ok());
    }

    #[test]
    fn a_name_too_long_for_kafka_is_refused() {
        let t = tenant(|s| s.kafka.topic_prefix = Some("p".repeat(100)));
        let err = validate(&topic(&"n".repeat(150), 3, 3, &[]), &t, &NONE).unwrap_err();
        assert_eq!(err.reason, "InvalidSpec");
        assert!(err.message.contains("has 250 characters; Kafka allows 249"), "{}", err.message);
    }
}
