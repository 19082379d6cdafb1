//! Tenant spec → [`ValidatedTenant`] (pure). Downstream code never reads the raw spec.

use kube::ResourceExt;

use crate::access::quotas::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, Quotas, REQUEST_PERCENTAGE};
use crate::api::DeletionPolicy;
use crate::api::tenant::{
    CassandraReplication, CredentialRotation, ExternalKafkaUser, KafkaQuotas, SaslMechanism, Tenant, TenantAdopt,
    TenantLimits,
};

/// Name of the Secret with the tenant's client credentials, in the tenant namespace.
pub const CREDENTIALS_SECRET: &str = "tributary-credentials";

/// The safe default set of topic configs a tenant may set when `allowedConfigs` is unset:
/// retention and compaction knobs, nothing that touches replication or the broker.
pub const DEFAULT_ALLOWED_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.type",
    "min.compaction.lag.ms",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
];

/// The most CassandraSinks a tenant may have when `limits.maxSinks` is unset (its
/// namespace's ResourceQuota, and the divisor of the sinks' quota share).
pub const DEFAULT_SINKS: i32 = 20;

#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedTenant {
    pub name: String,
    pub namespace: String,
    /// The tenant's Kafka user: the Tenant's name, or `spec.kafka.externalUser.name`.
    pub kafka_user: String,
    /// `Some`: the principal was issued outside the operator (`spec.kafka.externalUser`); the
    /// operator creates or deletes no Kafka user for the tenant or its sinks.
    pub external_user: Option<ExternalKafkaUser>,
    /// How the tenant's clients log in (`sasl.mechanism`).
    pub kafka_mechanism: SaslMechanism,
    pub topic_prefix: String,
    pub group_prefix: String,
    pub transactional_id_prefix: String,
    pub keyspace: String,
    pub cassandra_role: String,
    pub replication: CassandraReplication,
    /// The role may change the keyspace's schema (`spec.cassandra.schemaChanges`).
    pub schema_changes: bool,
    pub limits: TenantLimits,
    pub allowed_configs: Vec<String>,
    /// Client quotas of the tenant as a whole (`spec.kafka.quotas`), by Kafka's key names.
    /// `None`: the spec says nothing, the operator's default quotas apply; `Some` of an empty
    /// map: the admin said unthrottled (`quotas: {}`). See [`QuotaSplit`].
    pub quotas: Option<Quotas>,
    pub deletion_policy: DeletionPolicy,
    pub adopt: TenantAdopt,
    /// `spec.credentials`, defaults filled in.
    pub rotation: CredentialRotation,
}

/// [`validate`], remembered per Tenant (uid) and spec generation. The claims check of each
/// Tenant reconcile validates every other Tenant, and every Topic and sink reconcile its own
/// Tenant: at 500 tenants that was 250,000 validations per resync, for the same few hundred
/// answers. Objects without uid or generation (never from the API server) are validated anew.
/// One lives in the controllers' context ([`crate::tenancy::TenancyCache`]): nothing is shared
/// between two operators in one process, or two tests.
#[derive(Clone, Default)]
pub struct Validations(std::sync::Arc<std::sync::Mutex<Memo>>);

type Memo = std::collections::HashMap<String, (i64, Result<std::sync::Arc<ValidatedTenant>, String>)>;

impl Validations {
    /// Past this many entries (deleted Tenants linger) the memo starts over.
    const MAX: usize = 20_000;

    pub fn of(&self, tenant: &Tenant) -> Result<std::sync::Arc<ValidatedTenant>, String> {
        let (Some(uid), Some(generation)) = (tenant.metadata.uid.as_ref(), tenant.metadata.generation) else {
            return validate(tenant).map(std::sync::Arc::new);
        };
        if let Some((seen, result)) = self.0.lock().expect("memo lock").get(uid)
            && *seen == generation
        {
            return result.clone();
        }
        let result = validate(tenant).map(std::sync::Arc::new);
        let mut memo = self.0.lock().expect("memo lock");
        if memo.len() >= Self::MAX {
            memo.clear();
        }
        memo.insert(uid.clone(), (generation, result.clone()));
        result
    }
}

/// Checks what the API server's schema cannot (derived names) and fills in defaults.
/// The error is a message for the Tenant's status: what is wrong and what to change.
pub fn validate(tenant: &Tenant) -> Result<ValidatedTenant, String> {
    let name = tenant.name_any();
    if !is_tenant_name(&name) {
        return Err(format!(
            "tenant name {name:?} cannot be used as Kafka prefix, namespace and keyspace: \
             use 1-40 lowercase letters, digits and '-', starting with a letter"
        ));
    }
    let spec = &tenant.spec;
    let default_prefix = format!("{name}.");
    let keyspace = spec.cassandra.keyspace.clone().unwrap_or_else(|| name.replace('-', "_"));
    if !is_cql_identifier(&keyspace) {
        return Err(format!(
            "keyspace {keyspace:?} is not a Cassandra identifier: set spec.cassandra.keyspace to up to 48 \
             lowercase letters, digits and '_', starting with a letter"
        ));
    }
    let topic_prefix = spec.kafka.topic_prefix.clone().unwrap_or_else(|| default_prefix.clone());
    let group_prefix = spec.kafka.group_prefix.clone().unwrap_or_else(|| default_prefix.clone());
    let transactional_id_prefix = spec.kafka.transactional_id_prefix.clone().unwrap_or(default_prefix);
    for (field, prefix) in [
        ("topicPrefix", &topic_prefix),
        ("groupPrefix", &group_prefix),
        ("transactionalIdPrefix", &transactional_id_prefix),
    ] {
        if !is_prefix(prefix) {
            return Err(format!(
                "spec.kafka.{field} {prefix:?} is not allowed: use letters, digits, '.', '_' and '-', starting with a \
                 letter or digit (a leading '_' reaches Kafka's internal topics and groups)"
            ));
        }
    }
    let limits = spec.kafka.limits.clone();
    if limits.min_replication_factor > limits.max_replication_factor {
        return Err("spec.kafka.limits.minReplicationFactor is larger than maxReplicationFactor: lower the minimum or raise the maximum".into());
    }
    let allowed_configs = match &limits.allowed_configs {
        Some(keys) => keys.clone(),
        None => DEFAULT_ALLOWED_CONFIGS.iter().map(|k| k.to_string()).collect(),
    };
    let external_user = spec.kafka.external_user.clone();
    if let Some(external) = &external_user
        && external.name.contains(".sink.")
    {
        return Err(format!(
            "spec.kafka.externalUser.name {:?} contains \".sink.\", the form of the operator's own sink users: \
             name the principal the brokers know",
            external.name
        ));
    }
    Ok(ValidatedTenant {
        namespace: spec.namespace.clone().unwrap_or_else(|| name.clone()),
        kafka_user: external_user.as_ref().map_or_else(|| name.clone(), |e| e.name.clone()),
        kafka_mechanism: external_user.as_ref().map_or(SaslMechanism::ScramSha512, |e| e.mechanism),
        external_user,
        topic_prefix,
        group_prefix,
        transactional_id_prefix,
        cassandra_role: keyspace.clone(),
        keyspace,
        replication: spec.cassandra.replication.clone(),
        schema_changes: spec.cassandra.schema_changes,
        limits,
        allowed_configs,
        quotas: spec.kafka.quotas.as_ref().map(quotas),
        deletion_policy: spec.deletion_policy,
        adopt: spec.adopt.clone(),
        rotation: spec.credentials.clone().unwrap_or_default(),
        name,
    })
}

/// What `mine` claims that `other` claims too, as a message for `mine`'s status naming the
/// holder and what to change; `None` when they share nothing. Two prefixes overlap when
/// either is a prefix of the other: a prefixed ACL on the shorter covers the longer's names.
pub fn overlap(mine: &ValidatedTenant, other: &ValidatedTenant) -> Option<String> {
    let holder = &other.name;
    if mine.kafka_user == other.kafka_user {
        return Some(format!(
            "Kafka user {} belongs to Tenant {holder}: name another principal in spec.kafka.externalUser",
            mine.kafka_user
        ));
    }
    if mine.namespace == other.namespace {
        return Some(format!(
            "namespace {} belongs to Tenant {holder}: set spec.namespace to a namespace of its own",
            mine.namespace
        ));
    }
    if mine.keyspace == other.keyspace {
        return Some(format!(
            "keyspace and role {} belong to Tenant {holder}: set spec.cassandra.keyspace to a name of its own",
            mine.keyspace
        ));
    }
    // Topic names are compared as Kafka compares them: it refuses a topic whose name differs
    // from an existing one only by '.' against '_' (their metric names would collide), so
    // `water_` takes `water.`'s names away as surely as `water.` itself.
    let (mine_topics, other_topics) =
        (kafka_topic_collation(&mine.topic_prefix), kafka_topic_collation(&other.topic_prefix));
    let prefixes = [
        ("topicPrefix", &mine.topic_prefix, &other.topic_prefix, &mine_topics, &other_topics),
        ("groupPrefix", &mine.group_prefix, &other.group_prefix, &mine.group_prefix, &other.group_prefix),
        (
            "transactionalIdPrefix",
            &mine.transactional_id_prefix,
            &other.transactional_id_prefix,
            &mine.transactional_id_prefix,
            &other.transactional_id_prefix,
        ),
    ];
    prefixes.into_iter().find(|(_, _, _, a, b)| a.starts_with(b.as_str()) || b.starts_with(a.as_str())).map(
        |(field, a, b, _, _)| {
            let how = if field == "topicPrefix" && !(a.starts_with(b.as_str()) || b.starts_with(a.as_str())) {
                "Kafka treats '.' and '_' in topic names as the same, so one is a prefix of the other"
            } else {
                "one is a prefix of the other"
            };
            format!(
                "Kafka {field} {a:?} overlaps Tenant {holder}'s {b:?} ({how}, so each would reach the other's names): \
                 set spec.kafka.{field} to a prefix that neither starts nor is started by another Tenant's"
            )
        },
    )
}

/// A topic name as Kafka compares names for collisions (`Topic.hasCollision`): '.' and '_'
/// are the same character.
pub fn kafka_topic_collation(name: &str) -> String {
    name.replace('.', "_")
}

/// A Kafka prefix a tenant may hold: not empty, Kafka's name characters, and not starting
/// with `_` or `.` (internal topics such as `__consumer_offsets` and `_schemas` start with `_`).
fn is_prefix(prefix: &str) -> bool {
    prefix.as_bytes().first().is_some_and(|b| b.is_ascii_alphanumeric())
        && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// How a tenant's quotas are split between its principals, so that together they never use
/// more than the tenant's quota (Kafka sets quotas per principal, never for a group of them):
/// the tenant's own user gets a quarter of each figure, each sink user half divided by the
/// most sinks the tenant may have (`limits.maxSinks`), and each application login
/// (KafkaUser) a quarter divided by the most KafkaUsers it may have (`limits.maxKafkaUsers`);
/// the namespace's ResourceQuota enforces both counts. An external principal is the
/// tenant's only one: it gets the whole quota.
#[derive(Clone, Debug, PartialEq)]
pub struct QuotaSplit {
    pub tenant: Quotas,
    pub each_sink: Quotas,
    pub each_user: Quotas,
}

/// KafkaUsers a tenant may have unless its limits say otherwise.
pub const DEFAULT_KAFKA_USERS: i32 = 20;
/// TopicGrants a tenant's namespace may hold.
pub const TOPIC_GRANTS: i32 = 50;

impl ValidatedTenant {
    /// The quotas of the tenant's principals: its spec's, else the operator's `defaults`.
    pub fn quota_split(&self, defaults: &Quotas) -> QuotaSplit {
        let whole = self.quotas.as_ref().unwrap_or(defaults);
        if self.external_user.is_some() {
            return QuotaSplit { tenant: whole.clone(), each_sink: whole.clone(), each_user: whole.clone() };
        }
        let sinks = f64::from(self.limits.max_sinks.unwrap_or(DEFAULT_SINKS).max(1));
        let users = f64::from(self.limits.max_kafka_users.unwrap_or(DEFAULT_KAFKA_USERS).max(1));
        let share = |divisor: f64| whole.iter().map(|(k, v)| (k.clone(), (v / divisor).floor().max(1.0))).collect();
        QuotaSplit { tenant: share(4.0), each_sink: share(2.0 * sinks), each_user: share(4.0 * users) }
    }
}

/// The spec's quotas under Kafka's names (`producer_byte_rate`, ...).
fn quotas(q: &KafkaQuotas) -> Quotas {
    [
        (PRODUCER_BYTE_RATE, q.producer_byte_rate.map(|v| v as f64)),
        (CONSUMER_BYTE_RATE, q.consumer_byte_rate.map(|v| v as f64)),
        (REQUEST_PERCENTAGE, q.request_percentage.map(f64::from)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), v?)))
    .collect()
}

fn is_tenant_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=40).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.ends_with('-')
}

pub fn is_cql_identifier(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=48).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TenantSpec;

    fn tenant(name: &str, spec: TenantSpec) -> Tenant {
        Tenant::new(name, spec)
    }

    #[test]
    fn defaults_derive_everything_from_the_tenant_name() {
        let v = validate(&tenant("water-eu", TenantSpec::default())).unwrap();
        assert_eq!(v.namespace, "water-eu");
        assert_eq!(v.kafka_user, "water-eu");
        assert_eq!(v.topic_prefix, "water-eu.");
        assert_eq!(v.group_prefix, "water-eu.");
        assert_eq!(v.transactional_id_prefix, "water-eu.");
        assert_eq!(v.keyspace, "water_eu");
        assert_eq!(v.deletion_policy, DeletionPolicy::Retain);
        assert!(v.allowed_configs.contains(&"retention.ms".to_string()));
        assert!(!v.allowed_configs.contains(&"min.insync.replicas".to_string()));
    }

    #[test]
    fn explicit_settings_win_over_defaults() {
        let mut spec = TenantSpec { namespace: Some("team-water".into()), ..Default::default() };
        spec.kafka.topic_prefix = Some("iot.water.".into());
        spec.kafka.limits.allowed_configs = Some(vec![]);
        spec.cassandra.keyspace = Some("water_ks".into());
        spec.kafka.quotas = Some(crate::api::tenant::KafkaQuotas {
            producer_byte_rate: Some(1_048_576),
            request_percentage: Some(25),
            ..Default::default()
        });
        let v = validate(&tenant("water", spec)).unwrap();
        assert_eq!(
            v.quotas.clone().unwrap().into_iter().collect::<Vec<_>>(),
            [("producer_byte_rate".to_string(), 1_048_576.0), ("request_percentage".to_string(), 25.0)]
        );
        // A quarter for the tenant's own user, half over its 20 possible sinks, a quarter over
        // its 20 possible KafkaUsers: together never more than the tenant's quota.
        let split = v.quota_split(&Quotas::new());
        assert_eq!(split.tenant["producer_byte_rate"], 262_144.0);
        assert_eq!(split.each_sink["producer_byte_rate"], 26_214.0);
        assert_eq!(split.each_user["producer_byte_rate"], 13_107.0);
        assert_eq!(split.each_sink["request_percentage"], 1.0, "never below 1");
        let rate = |q: &Quotas| q["producer_byte_rate"];
        assert!(rate(&split.tenant) + 20.0 * rate(&split.each_sink) + 20.0 * rate(&split.each_user) <= 1_048_576.0);
        assert_eq!(
            (v.namespace.as_str(), v.topic_prefix.as_str(), v.keyspace.as_str()),
            ("team-water", "iot.water.", "water_ks")
        );
        assert!(v.allowed_configs.is_empty());
    }

    #[test]
    fn without_quotas_in_the_spec_the_defaults_apply_and_an_empty_map_means_unthrottled() {
        let defaults: Quotas = [("consumer_byte_rate".to_string(), 4_000_000.0)].into();
        let unset = validate(&tenant("water", TenantSpec::default())).unwrap();
        assert_eq!(unset.quota_split(&defaults).tenant["consumer_byte_rate"], 1_000_000.0);
        let mut spec = TenantSpec::default();
        spec.kafka.quotas = Some(Default::default());
        let unthrottled = validate(&tenant("water", spec)).unwrap();
        assert!(unthrottled.quota_split(&defaults).tenant.is_empty());
    }

    #[test]
    fn bad_names_are_refused_with_what_to_change() {
        let err = validate(&tenant("Water", TenantSpec::default())).unwrap_err();
        assert!(err.contains("use 1-40 lowercase letters"), "{err}");
        let mut spec = TenantSpec::default();
        spec.cassandra.keyspace = Some("1data".into());
        let err = validate(&tenant("water", spec)).unwrap_err();
        assert!(err.contains("set spec.cassandra.keyspace"), "{err}");
        for internal in ["_", "__consumer_offsets", ".x", "a b"] {
            let mut spec = TenantSpec::default();
            spec.kafka.group_prefix = Some(internal.into());
            let err = validate(&tenant("water", spec)).unwrap_err();
            assert!(err.contains("spec.kafka.groupPrefix") && err.contains("leading '_'"), "{err}");
        }
    }

    fn with(name: &str, f: impl FnOnce(&mut TenantSpec)) -> ValidatedTenant {
        let mut spec = TenantSpec::default();
        f(&mut spec);
        validate(&tenant(name, spec)).unwrap()
    }

    #[test]
    fn overlapping_claims_are_named_with_their_holder() {
        let water = with("water", |_| {});
        assert_eq!(overlap(&with("bts", |_| {}), &water), None, "disjoint tenants share nothing");
        assert_eq!(overlap(&with("waterworks", |_| {}), &water), None, "\"waterworks.\" is not under \"water.\"");
        let shorter = overlap(&with("wat", |s| s.kafka.topic_prefix = Some("water".into())), &water).unwrap();
        assert!(shorter.contains("topicPrefix \"water\" overlaps Tenant water's \"water.\""), "{shorter}");
        let longer = overlap(&with("sub", |s| s.kafka.topic_prefix = Some("water.sub.".into())), &water).unwrap();
        assert!(longer.contains("Tenant water"), "{longer}");
        let group = overlap(&with("g", |s| s.kafka.group_prefix = Some("water.sink".into())), &water).unwrap();
        assert!(group.contains("groupPrefix"), "{group}");
        let txn = overlap(&with("t", |s| s.kafka.transactional_id_prefix = Some("w".into())), &water).unwrap();
        assert!(txn.contains("transactionalIdPrefix"), "{txn}");
        let keyspace = overlap(&with("evil1", |s| s.cassandra.keyspace = Some("water".into())), &water).unwrap();
        assert!(keyspace.contains("keyspace and role water belong to Tenant water"), "{keyspace}");
        let ns = overlap(&with("evil2", |s| s.namespace = Some("water".into())), &water).unwrap();
        assert!(ns.contains("namespace water belongs to Tenant water"), "{ns}");
        // Kafka refuses `water.data` once `water_data` exists: the prefixes collide.
        let underscore = overlap(&with("evil3", |s| s.kafka.topic_prefix = Some("water_".into())), &water).unwrap();
        assert!(underscore.contains("topicPrefix \"water_\" overlaps Tenant water's \"water.\""), "{underscore}");
        assert!(underscore.contains("'.' and '_'"), "{underscore}");
        // Groups and transactional ids do not collide that way.
        assert_eq!(overlap(&with("evil4", |s| s.kafka.group_prefix = Some("water_".into())), &water), None);
    }
}
