//! Topic spec + its tenant → a [`DesiredTopic`], or a refusal that names the rule (pure).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::model::DesiredTopic;
use crate::api::Reason;
use crate::api::{CassandraSink, Topic};
use crate::tenant::ValidatedTenant;

/// Kafka's limit on topic names.
pub const MAX_KAFKA_NAME: usize = 249;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `InvalidSpec` or `GuardrailViolated`.
    pub reason: Reason,
    pub message: String,
}

fn refuse(reason: Reason, message: String) -> Refusal {
    Refusal { reason, message }
}

/// What the tenant's older objects use, for the guardrails that count over all of them.
pub struct Siblings {
    pub topics: i32,
    pub partitions: i32,
}

/// Where an object stands in its tenant's creation order: the older keeps its place under
/// the limits, so a newcomer beyond them is refused and the Ready ones stay Ready.
pub fn age(meta: &ObjectMeta) -> (Timestamp, String) {
    (meta.creation_timestamp.as_ref().map_or(Timestamp::MAX, |t| t.0), meta.name.clone().unwrap_or_default())
}

/// What the tenant's Topics and CassandraSinks created before `me` use: each Topic, and
/// each sink's dead-letter topic (one topic, as many partitions as the sink's Topic).
/// Objects being deleted count no more.
pub fn usage_before(me: &(Timestamp, String), topics: &[&Topic], sinks: &[&CassandraSink]) -> Siblings {
    let live_and_older = |m: &ObjectMeta| m.deletion_timestamp.is_none() && age(m) < *me;
    let mut used = Siblings { topics: 0, partitions: 0 };
    for t in topics.iter().filter(|t| live_and_older(&t.metadata)) {
        used.topics += 1;
        used.partitions += t.spec.partitions;
    }
    for s in sinks.iter().filter(|s| live_and_older(&s.metadata)) {
        used.topics += 1;
        used.partitions += topics.iter().find(|t| t.name_any() == s.spec.topic).map_or(0, |t| t.spec.partitions);
    }
    used
}

/// The tenant's topic and partition limits for one more topic with `partitions`; `what`
/// names it in the message and says what to change.
pub fn beyond_limits(tenant: &ValidatedTenant, used: &Siblings, partitions: i32, what: &str) -> Option<Refusal> {
    let limits = &tenant.limits;
    if let Some(max) = limits.max_topics
        && used.topics + 1 > max
    {
        return Some(refuse(
            Reason::GuardrailViolated,
            format!(
                "Tenant {} may have {max} topics and already has {} (dead-letter topics included): delete a Topic or \
                 CassandraSink, or raise spec.kafka.limits.maxTopics",
                tenant.name, used.topics
            ),
        ));
    }
    if let Some(max) = limits.max_partitions
        && used.partitions + partitions > max
    {
        return Some(refuse(
            Reason::GuardrailViolated,
            format!(
                "Tenant {} may use {max} partitions; its other topics use {} and {what} asks for {partitions}: lower \
                 spec.partitions or raise spec.kafka.limits.maxPartitions",
                tenant.name, used.partitions
            ),
        ));
    }
    None
}

/// Default bounds of the config values a Topic may set, where Kafka allows harm.
pub const DEFAULT_MAX_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;
pub const DEFAULT_MAX_MESSAGE_BYTES: i64 = 8 * 1024 * 1024;

/// One bound of the defaults: key, smallest, largest, and why it exists (for the message).
pub struct DefaultBound {
    pub key: &'static str,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub why: &'static str,
}

const HOUR_MS: i64 = 3_600_000;

/// The bounds of the topic configs the default policy allows, where a value harms the
/// shared brokers rather than the tenant alone (README, "Topic config bounds"). The compaction
/// lag and tombstone retention are bounded by the tenant's retention bound instead (`max:
/// None` here): beyond it, a compacted topic keeps every record, as infinite retention would.
/// A Tenant's `spec.kafka.limits.configBounds` replaces a row.
pub const DEFAULT_CONFIG_BOUNDS: &[DefaultBound] = &[
    DefaultBound {
        key: "segment.ms",
        min: Some(HOUR_MS),
        max: None,
        why: "every segment is a set of files and open handles on each broker holding a replica",
    },
    DefaultBound {
        key: "segment.bytes",
        min: Some(16 * 1024 * 1024),
        max: None,
        why: "every segment is a set of files and open handles on each broker holding a replica",
    },
    DefaultBound {
        key: "max.compaction.lag.ms",
        min: Some(HOUR_MS),
        max: None,
        why: "a short lag makes the brokers' log cleaner compact the partitions over and over",
    },
    DefaultBound {
        key: "min.compaction.lag.ms",
        min: None,
        max: None,
        why: "records younger than the lag are never compacted away",
    },
    DefaultBound { key: "delete.retention.ms", min: None, max: None, why: "tombstones are kept this long" },
];

/// The bound of `key` for `tenant`: its own `configBounds` entry, else the default row (the
/// compaction lag and tombstone retention at the tenant's retention bound).
fn bound_of(tenant: &ValidatedTenant, row: &DefaultBound, max_retention: i64) -> (Option<i64>, Option<i64>) {
    if let Some(own) = tenant.limits.config_bounds.iter().find(|b| b.key == row.key) {
        return (own.min, own.max);
    }
    let retention_bounded = matches!(row.key, "min.compaction.lag.ms" | "delete.retention.ms");
    let max = if retention_bounded && max_retention != -1 { Some(max_retention) } else { row.max };
    (row.min, max)
}

/// The config values within the Tenant's bounds. A value that is no number is left to Kafka,
/// which refuses it (`KafkaRejected`).
fn config_beyond_bounds(tenant: &ValidatedTenant, config: &BTreeMap<String, String>) -> Option<Refusal> {
    let limits = &tenant.limits;
    let number = |key: &str| config.get(key).and_then(|v| v.trim().parse::<i64>().ok());
    let max_retention = limits.max_retention_ms.unwrap_or(DEFAULT_MAX_RETENTION_MS);
    let infinite = |what: String, change: &str| {
        Some(refuse(
            Reason::GuardrailViolated,
            format!(
                "{what} is beyond Tenant {}'s bound of {max_retention} ms (infinite retention needs \
                 spec.kafka.limits.maxRetentionMs: -1): {change} or raise the Tenant's maxRetentionMs",
                tenant.name
            ),
        ))
    };
    if let Some(retention) = number("retention.ms")
        && max_retention != -1
        && (retention == -1 || retention > max_retention)
    {
        return infinite(format!("retention.ms {retention}"), "lower config retention.ms");
    }
    // Compaction alone keeps the newest record of every key for ever: with unique keys, all.
    if let Some(policy) = config.get("cleanup.policy")
        && max_retention != -1
        && policy.split(',').any(|p| p.trim() == "compact")
        && !policy.split(',').any(|p| p.trim() == "delete")
    {
        return infinite(
            format!("cleanup.policy {policy:?} keeps the newest record of every key for ever, which"),
            "use \"compact,delete\" (compaction within retention.ms)",
        );
    }
    let max_bytes = limits.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    if let Some(bytes) = number("max.message.bytes")
        && bytes > max_bytes
    {
        return Some(refuse(
            Reason::GuardrailViolated,
            format!(
                "max.message.bytes {bytes} is beyond Tenant {}'s bound of {max_bytes}: lower config max.message.bytes \
                 or raise the Tenant's spec.kafka.limits.maxMessageBytes",
                tenant.name
            ),
        ));
    }
    for row in DEFAULT_CONFIG_BOUNDS {
        let Some(value) = number(row.key) else { continue };
        let (min, max) = bound_of(tenant, row, max_retention);
        let (beyond, bound) = match (min, max) {
            (Some(min), _) if value < min => ("below", format!("at least {min}")),
            // -1 is Kafka's "no limit" for these keys.
            (_, Some(max)) if value > max || value < 0 => ("beyond", format!("at most {max}")),
            _ => continue,
        };
        return Some(refuse(
            Reason::GuardrailViolated,
            format!(
                "{} {value} is {beyond} Tenant {}'s bound ({bound}: {}): change config {} or ask the platform admin \
                 to set spec.kafka.limits.configBounds for {}",
                row.key, tenant.name, row.why, row.key, row.key
            ),
        ));
    }
    None
}

pub fn kafka_name(topic: &Topic, tenant: &ValidatedTenant) -> String {
    format!("{}{}", tenant.topic_prefix, topic.spec.topic_name.clone().unwrap_or_else(|| topic.name_any()))
}

pub fn validate(topic: &Topic, tenant: &ValidatedTenant, siblings: &Siblings) -> Result<DesiredTopic, Refusal> {
    let name = kafka_name(topic, tenant);
    let spec = &topic.spec;
    if name.len() > MAX_KAFKA_NAME {
        return Err(refuse(
            Reason::InvalidSpec,
            format!(
                "Kafka name {name:?} has {} characters; Kafka allows {MAX_KAFKA_NAME}: shorten spec.topicName (or the object name)",
                name.len()
            ),
        ));
    }
    if name.chars().any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(refuse(
            Reason::InvalidSpec,
            format!("Kafka name {name:?} may only use letters, digits, '.', '_' and '-'"),
        ));
    }
    let limits = &tenant.limits;
    let rf = spec.replication_factor;
    if rf < limits.min_replication_factor || rf > limits.max_replication_factor {
        return Err(refuse(
            Reason::GuardrailViolated,
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
            Reason::GuardrailViolated,
            format!(
                "config keys not allowed for Tenant {}: {}; allowed: {}",
                tenant.name,
                refused_keys.join(", "),
                if tenant.allowed_configs.is_empty() { "none".to_string() } else { tenant.allowed_configs.join(", ") }
            ),
        ));
    }
    if let Some(refusal) = config_beyond_bounds(tenant, &spec.config)
        .or_else(|| beyond_limits(tenant, siblings, spec.partitions, "this one"))
    {
        return Err(refusal);
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
        assert_eq!(err.reason, Reason::GuardrailViolated);
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
    fn harmful_config_values_are_bounded_unless_the_tenant_allows_them() {
        let t = tenant(|_| {});
        for (key, value, says) in [
            ("retention.ms", "-1", "retention.ms -1 is beyond"),
            ("retention.ms", "9999999999999", "retention.ms 9999999999999 is beyond"),
            ("max.message.bytes", "1000000000", "max.message.bytes 1000000000 is beyond"),
        ] {
            let err = validate(&topic("a", 3, 3, &[(key, value)]), &t, &NONE).unwrap_err();
            assert_eq!(err.reason, Reason::GuardrailViolated);
            assert!(err.message.contains(says), "{}", err.message);
        }
        assert!(validate(&topic("a", 3, 3, &[("retention.ms", "604800000")]), &t, &NONE).is_ok());
        assert!(validate(&topic("a", 3, 3, &[("retention.ms", "not-a-number")]), &t, &NONE).is_ok(), "left to Kafka");
        let generous = tenant(|s| {
            s.kafka.limits.max_retention_ms = Some(-1);
            s.kafka.limits.max_message_bytes = Some(1_000_000_000);
        });
        assert!(validate(&topic("a", 3, 3, &[("retention.ms", "-1")]), &generous, &NONE).is_ok());
        assert!(validate(&topic("a", 3, 3, &[("max.message.bytes", "1000000000")]), &generous, &NONE).is_ok());
        assert!(validate(&topic("a", 3, 3, &[("cleanup.policy", "compact")]), &generous, &NONE).is_ok());
    }

    #[test]
    fn configs_that_load_the_shared_brokers_are_bounded_and_only_the_tenant_widens_them() {
        let t = tenant(|_| {});
        for (key, value, says) in [
            ("segment.ms", "1", "segment.ms 1 is below Tenant water's bound (at least 3600000"),
            ("segment.bytes", "1024", "segment.bytes 1024 is below"),
            ("max.compaction.lag.ms", "1", "max.compaction.lag.ms 1 is below"),
            ("min.compaction.lag.ms", "9223372036854775807", "min.compaction.lag.ms 9223372036854775807 is beyond"),
            ("delete.retention.ms", "9223372036854775807", "delete.retention.ms 9223372036854775807 is beyond"),
            ("cleanup.policy", "compact", "cleanup.policy \"compact\" keeps the newest record of every key for ever"),
        ] {
            let err = validate(&topic("a", 3, 3, &[(key, value)]), &t, &NONE).unwrap_err();
            assert_eq!(err.reason, Reason::GuardrailViolated, "{key}");
            assert!(err.message.contains(says), "{key}: {}", err.message);
        }
        for (key, value) in [
            ("segment.ms", "3600000"),
            ("segment.bytes", "1073741824"),
            ("cleanup.policy", "compact,delete"),
            ("min.compaction.lag.ms", "86400000"),
            ("max.compaction.lag.ms", "604800000"),
        ] {
            assert!(validate(&topic("a", 3, 3, &[(key, value)]), &t, &NONE).is_ok(), "{key}: {value}");
        }
        let widened = tenant(|s| {
            s.kafka.limits.config_bounds =
                vec![crate::api::tenant::ConfigBound { key: "segment.ms".into(), min: Some(60_000), max: None }]
        });
        assert!(validate(&topic("a", 3, 3, &[("segment.ms", "600000")]), &widened, &NONE).is_ok());
        assert!(validate(&topic("a", 3, 3, &[("segment.ms", "1000")]), &widened, &NONE).is_err());
    }

    #[test]
    fn only_older_objects_count_and_dead_letter_topics_count_too() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let at = |mut t: Topic, second: i64| {
            t.metadata.creation_timestamp = Some(Time(Timestamp::from_second(second).unwrap()));
            t
        };
        let (first, second, third) =
            (at(topic("a", 3, 3, &[]), 10), at(topic("b", 6, 3, &[]), 20), at(topic("c", 1, 3, &[]), 30));
        let mut sink: CassandraSink = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "creationTimestamp": "1970-01-01T00:00:15Z"},
            "spec": {"topic": "a", "table": "t", "columns": [{"name": "k", "type": "text"}], "partitionKey": ["k"]}
        }))
        .unwrap();
        let topics = [&first, &second, &third];
        let used = usage_before(&age(&first.metadata), &topics, &[&sink]);
        assert_eq!((used.topics, used.partitions), (0, 0), "the oldest counts nobody");
        let used = usage_before(&age(&second.metadata), &topics, &[&sink]);
        assert_eq!((used.topics, used.partitions), (2, 6), "topic a and the sink's dead-letter topic (3 partitions)");
        let used = usage_before(&age(&third.metadata), &topics, &[&sink]);
        assert_eq!((used.topics, used.partitions), (3, 12));
        sink.metadata.deletion_timestamp = sink.metadata.creation_timestamp.clone();
        assert_eq!(usage_before(&age(&third.metadata), &topics, &[&sink]).topics, 2, "a deleted sink counts no more");
    }

    #[test]
    fn a_name_too_long_for_kafka_is_refused() {
        let t = tenant(|s| s.kafka.topic_prefix = Some("p".repeat(100)));
        let err = validate(&topic(&"n".repeat(150), 3, 3, &[]), &t, &NONE).unwrap_err();
        assert_eq!(err.reason, Reason::InvalidSpec);
        assert!(err.message.contains("has 250 characters; Kafka allows 249"), "{}", err.message);
    }
}
