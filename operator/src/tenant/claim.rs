//! Exclusive ownership: what a Tenant names (namespace, Kafka user, prefixes, keyspace,
//! role) is its own alone, checked before anything is written.
//!
//! The model (README, "The resources"):
//! - Between Tenants the older claim wins: a Tenant that has already claimed its names, or
//!   else the older one (creationTimestamp, then name), holds them; a newer Tenant whose
//!   namespace or keyspace is the same, or whose topic, group or transactional-id prefix
//!   overlaps (either is a prefix of the other), is refused and touches nothing.
//! - Against what exists already: before its first write a Tenant checks that its Kafka
//!   user, topics and consumer groups under its prefixes, Cassandra role and keyspace do not exist, and that its
//!   namespace either does not exist or was created by it. Taking any of them over is an
//!   explicit `spec.adopt` field. System namespaces are never a tenant's.
//! - "Its own" is remembered in the annotation [`CLAIM_ANNOTATION`] (the Tenant's UID) on the
//!   Tenant, written by the operator once the checks passed and before the first external
//!   write. Only who may write Tenants (the platform admin, who may also set `spec.adopt`)
//!   can set it; status is never read for it. The Secret's passwords are used only when their
//!   digest matches [`CREDENTIALS_ANNOTATION`], so a Secret planted in the namespace is never
//!   adopted.

use crate::external::ExternalFailure;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use super::build::Passwords;
use super::validate::{ValidatedTenant, overlap};
use crate::access::kafka::ScramMechanism;
use crate::api::Reason;
use crate::api::TENANT_LABEL;
use crate::api::Tenant;
use crate::controller::Context;

/// On a Tenant: the UID of the Tenant that claimed its names (itself, once the checks passed).
pub const CLAIM_ANNOTATION: &str = "tributary.dev/claimed-by";
/// On a Tenant: SHA-256 of the passwords the operator wrote into its Secret.
pub const CREDENTIALS_ANNOTATION: &str = "tributary.dev/credentials-sha256";

/// Why a Tenant may not have what it names: `Ready=False` with this reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `NamespaceTaken` or `OwnershipConflict`.
    pub reason: Reason,
    pub message: String,
}

fn refuse(reason: Reason, message: String) -> Option<Refusal> {
    Some(Refusal { reason, message })
}

/// Whether the operator has claimed this Tenant's names for it (see the module doc).
pub fn is_claimed(tenant: &Tenant) -> bool {
    let uid = tenant.metadata.uid.as_deref();
    uid.is_some()
        && tenant.metadata.annotations.as_ref().and_then(|a| a.get(CLAIM_ANNOTATION)).map(String::as_str) == uid
}

/// A Tenant provisioned before claims were recorded: it created its namespace (owner
/// reference) and wrote its Secret there. Counted as claimed, then annotated.
pub fn provisioned_before_claims(tenant: &Tenant, namespace: Option<&Namespace>, secret: Option<&Secret>) -> bool {
    let owned_by = |refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]| {
        tenant.uid().is_some_and(|uid| refs.iter().any(|o| o.uid == uid))
    };
    namespace.is_some_and(|ns| owned_by(ns.owner_references()))
        && secret.is_some_and(|s| owned_by(s.owner_references()))
}

/// The Tenant whose claim `tenant` overlaps: among the other Tenants, one that has claimed
/// its names already, or else an older one (creationTimestamp, then name). Pure.
pub fn holder<'a>(
    tenant: &Tenant,
    v: &ValidatedTenant,
    all: impl IntoIterator<Item = &'a Tenant>,
    validations: &crate::tenant::Validations,
) -> Option<Refusal> {
    fn age(t: &Tenant) -> (Timestamp, &str) {
        let created = t.metadata.creation_timestamp.as_ref().map_or(Timestamp::MAX, |c| c.0);
        (created, t.metadata.name.as_deref().unwrap_or_default())
    }
    let mine = age(tenant);
    all.into_iter()
        .filter(|t| t.metadata.uid != tenant.metadata.uid)
        .filter(|t| is_claimed(t) || age(t) < mine)
        .filter_map(|t| Some((age(t), overlap(v, &*validations.of(t).ok()?)?)))
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, message)| Refusal { reason: Reason::OwnershipConflict, message })
}

/// Whether `namespace` may be this Tenant's: never a system namespace; an existing one only
/// if this Tenant created it, or with `spec.adopt.namespace` when no other Tenant has it. Pure.
pub fn namespace_refusal(
    tenant: &Tenant,
    v: &ValidatedTenant,
    existing: Option<&Namespace>,
    operator_namespace: &str,
) -> Option<Refusal> {
    let ns = &v.namespace;
    if ns.starts_with("kube-") || ns == "default" || ns == operator_namespace {
        return refuse(
            Reason::NamespaceTaken,
            format!("namespace {ns} is a system namespace (kube-*, default, the operator's own): set spec.namespace"),
        );
    }
    let existing = existing?;
    if let Some(other) = existing.labels().get(TENANT_LABEL).filter(|t| **t != v.name) {
        return refuse(
            Reason::NamespaceTaken,
            format!("namespace {ns} belongs to Tenant {other}: set spec.namespace to a namespace of its own"),
        );
    }
    let created_by_me = tenant.uid().is_some_and(|uid| existing.owner_references().iter().any(|o| o.uid == uid));
    if created_by_me || v.adopt.namespace {
        return None;
    }
    refuse(
        Reason::NamespaceTaken,
        format!(
            "namespace {ns} already exists and was not created by Tenant {}: set spec.namespace to a new namespace, \
             or set spec.adopt.namespace: true to use it (a tributary-credentials Secret already in it is never trusted)",
            v.name
        ),
    )
}

/// What already exists in Kafka and Cassandra under this Tenant's names and is not
/// adopted by its spec; checked before the Tenant's first external write. An error is the
/// failed call (`Kafka` or `Cassandra`, message, transient).
pub async fn existing_elsewhere(ctx: &Context, v: &ValidatedTenant) -> Result<Option<Refusal>, ExternalFailure> {
    // The five lookups at once: each is a round trip to Kafka or Cassandra.
    let (user, topics, groups, role, keyspace) = futures::try_join!(
        principal_held(ctx, v),
        topics_held(ctx, v),
        groups_held(ctx, v),
        roles_held(ctx, v),
        keyspace_held(ctx, v)
    )?;
    let found: Vec<String> = [user, topics, groups, role, keyspace].into_iter().flatten().collect();
    if found.is_empty() {
        return Ok(None);
    }
    Ok(refuse(
        Reason::OwnershipConflict,
        format!(
            "not this Tenant's, nothing was written: {}. Rename the Tenant or set the names in its spec to new ones, \
             or adopt explicitly",
            found.join("; ")
        ),
    ))
}

/// Names found under a prefix, as "Kafka <what> under prefix <p> exist (first five; ...)".
fn under_prefix(what: &str, prefix: &str, mut names: Vec<String>, adopt: &str) -> Option<String> {
    names.sort();
    names.truncate(5);
    (!names.is_empty()).then(|| {
        format!(
            "Kafka {what} under prefix {prefix} exist ({}; adopt with spec.adopt.{adopt}: true, or choose another \
             prefix)",
            names.join(", ")
        )
    })
}

/// A principal is the same principal whatever mechanism logs it in (a SASL/PLAIN user of
/// the brokers' JAAS config, a certificate's name): any credential, ACL or quota already
/// held under its name is someone else's. An external principal exists by definition (and
/// may not be a SCRAM user at all).
async fn principal_held(ctx: &Context, v: &ValidatedTenant) -> Result<Option<String>, ExternalFailure> {
    if v.external_user.is_some() || v.adopt.kafka_user {
        return Ok(None);
    }
    let principal = crate::access::kafka::user_principal(&v.kafka_user);
    let (scram, acls, quotas) = futures::try_join!(
        ctx.kafka.scram_users(),
        ctx.kafka.describe_acls(&principal),
        ctx.kafka.describe_user_quotas(&v.kafka_user)
    )?;
    let held: Vec<String> = [
        scram.contains(&v.kafka_user).then(|| "a SCRAM credential".to_string()),
        (!acls.is_empty()).then(|| format!("{} ACLs", acls.len())),
        (!quotas.is_empty()).then(|| "client quotas".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok((!held.is_empty()).then(|| {
        format!(
            "Kafka principal {principal} exists with {} (adopt with spec.adopt.kafkaUser: true)",
            held.join(" and ")
        )
    }))
}

/// Topics under the prefix, listed from the prefix up to its first '.' or '_' and compared
/// as Kafka compares names: `water_data` takes `water.data` away too.
async fn topics_held(ctx: &Context, v: &ValidatedTenant) -> Result<Option<String>, ExternalFailure> {
    if v.adopt.kafka_topics {
        return Ok(None);
    }
    let stem = v.topic_prefix.split(['.', '_']).next().unwrap_or_default();
    let collated = crate::tenant::validate::kafka_topic_collation(&v.topic_prefix);
    let mut topics = ctx.kafka.topics_with_prefix(stem).await?;
    topics.retain(|t| crate::tenant::validate::kafka_topic_collation(t).starts_with(&collated));
    Ok(under_prefix("topics", &v.topic_prefix, topics, "kafkaTopics"))
}

async fn groups_held(ctx: &Context, v: &ValidatedTenant) -> Result<Option<String>, ExternalFailure> {
    if v.adopt.kafka_groups {
        return Ok(None);
    }
    let groups = ctx.kafka.groups_with_prefix(&v.group_prefix).await?;
    Ok(under_prefix("consumer groups", &v.group_prefix, groups, "kafkaGroups"))
}

/// The role and the second login a rotation uses: both become the Tenant's.
async fn roles_held(ctx: &Context, v: &ValidatedTenant) -> Result<Option<String>, ExternalFailure> {
    if v.adopt.cassandra_role {
        return Ok(None);
    }
    let second = crate::tenant::rotation::second_login(&v.cassandra_role);
    let (role, login) = futures::try_join!(ctx.cassandra.role(&v.cassandra_role), ctx.cassandra.role(&second))?;
    let found: Vec<&str> = [(role.is_some(), v.cassandra_role.as_str()), (login.is_some(), second.as_str())]
        .into_iter()
        .filter_map(|(exists, name)| exists.then_some(name))
        .collect();
    Ok((!found.is_empty())
        .then(|| format!("Cassandra role {} exists (adopt with spec.adopt.cassandraRole: true)", found.join(" and "))))
}

async fn keyspace_held(ctx: &Context, v: &ValidatedTenant) -> Result<Option<String>, ExternalFailure> {
    if v.adopt.keyspace || ctx.cassandra.keyspace_replication(&v.keyspace).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(format!("Cassandra keyspace {} exists (adopt with spec.adopt.keyspace: true)", v.keyspace)))
}

/// Digest of the passwords and their slots, recorded on the Tenant so only the Secret the
/// operator wrote is ever read back. The first slots add nothing, so Secrets written before
/// rotations existed keep their digest.
pub fn credentials_digest(passwords: &Passwords) -> String {
    let mut hasher = Sha256::new();
    hasher.update(passwords.kafka.as_bytes());
    hasher.update(b"\n");
    hasher.update(passwords.cassandra.as_bytes());
    if passwords.kafka_slot != ScramMechanism::Sha512 || passwords.cassandra_second {
        hasher.update(format!("\n{}\n{}", passwords.kafka_slot.as_str(), passwords.cassandra_second).as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// What the digest covers: both passwords, or with an external Kafka user (whose password
/// its issuer may change at any time and is read from the admin's Secret anyway) only the
/// Cassandra one, so a new Kafka password never makes the Secret's Cassandra one untrusted.
pub fn digest_basis(passwords: &Passwords, external_kafka: bool) -> Passwords {
    if external_kafka {
        Passwords { kafka: String::new(), kafka_slot: ScramMechanism::Sha512, ..passwords.clone() }
    } else {
        passwords.clone()
    }
}

/// The Secret's passwords when they are the ones the operator wrote for this Tenant.
pub fn trusted_passwords(
    tenant: &Tenant,
    v: &ValidatedTenant,
    secret: Option<&Secret>,
    legacy: bool,
) -> Option<Passwords> {
    let passwords = Passwords::from_secret(secret?, v)?;
    let external_kafka = v.external_user.is_some();
    match tenant.annotations().get(CREDENTIALS_ANNOTATION) {
        Some(digest) => (*digest == credentials_digest(&digest_basis(&passwords, external_kafka))).then_some(passwords),
        None => legacy.then_some(passwords),
    }
}

/// Names a tenant may not take: the operator's own admin principals (a tenant must never
/// receive their credentials) and Cassandra's system keyspaces.
pub fn reserved_name(ctx: &Context, v: &ValidatedTenant) -> Option<String> {
    reserved(&ctx.config, v)
}

/// [`reserved_name`] against the operator's settings: its own principals, and the brokers'
/// other super users (`TRIBUTARY_KAFKA_SUPER_USERS`, the chart's `kafka.superUsers`), which
/// no login mechanism may hand to a tenant.
pub fn reserved(config: &crate::config::Config, v: &ValidatedTenant) -> Option<String> {
    if v.kafka_user == config.kafka.username {
        return Some(format!("Kafka user {} is the operator's admin principal: rename the Tenant", v.kafka_user));
    }
    if config.kafka_super_users.contains(&v.kafka_user) {
        return Some(format!(
            "Kafka user {} is a super user of the brokers (super.users): rename the Tenant or name another \
             principal",
            v.kafka_user
        ));
    }
    if v.cassandra_role == config.cassandra.username || v.keyspace.starts_with("system") {
        return Some(format!(
            "keyspace/role {} is reserved for Cassandra or the operator: set spec.cassandra.keyspace to another name",
            v.keyspace
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

    use super::*;
    use crate::api::TenantSpec;
    use crate::tenant::validate;

    #[test]
    fn the_operators_principals_and_the_brokers_super_users_are_never_a_tenants() {
        let env = |k: &str| {
            [
                ("KAFKA_BOOTSTRAP", "k:9092"),
                ("KAFKA_ADMIN_USER", "admin"),
                ("KAFKA_ADMIN_PASSWORD", "x"),
                ("CASSANDRA_CONTACT", "c:9042"),
                ("CASSANDRA_ADMIN_USER", "cassandra"),
                ("CASSANDRA_ADMIN_PASSWORD", "x"),
                ("TRIBUTARY_KAFKA_SUPER_USERS", "admin, ops-root"),
            ]
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
        };
        let config = crate::config::Config::from_lookup(env).unwrap();
        let named = |name: &str| validate::validate(&Tenant::new(name, TenantSpec::default())).unwrap();
        assert!(reserved(&config, &named("admin")).unwrap().contains("the operator's admin principal"));
        assert!(reserved(&config, &named("ops-root")).unwrap().contains("super user of the brokers"));
        assert!(reserved(&config, &named("cassandra")).unwrap().contains("reserved for Cassandra"));
        assert_eq!(reserved(&config, &named("water")), None);
    }

    fn tenant(name: &str, uid: &str, created: i64, f: impl FnOnce(&mut TenantSpec)) -> Tenant {
        let mut spec = TenantSpec::default();
        f(&mut spec);
        let mut t = Tenant::new(name, spec);
        t.metadata.uid = Some(uid.into());
        t.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        t
    }

    fn check(t: &Tenant, all: &[Tenant]) -> Option<Refusal> {
        holder(t, &validate(t).unwrap(), all, &Default::default())
    }

    #[test]
    fn the_older_claim_wins_and_a_claimed_one_wins_whatever_its_age() {
        let water = tenant("water", "u1", 100, |_| {});
        let wat = tenant("wat", "u2", 200, |s| s.kafka.topic_prefix = Some("water".into()));
        let all = [water.clone(), wat.clone()];
        let refused = check(&wat, &all).expect("the newer one is refused");
        assert_eq!(refused.reason, Reason::OwnershipConflict);
        assert!(refused.message.contains("Tenant water"), "{}", refused.message);
        assert_eq!(check(&water, &all), None, "the older one keeps its names");

        // Same second: the name decides, unless the other has claimed its names already.
        let a = tenant("a", "u3", 300, |s| s.cassandra.keyspace = Some("shared".into()));
        let mut b = tenant("b", "u4", 300, |s| s.cassandra.keyspace = Some("shared".into()));
        assert!(check(&b, &[a.clone(), b.clone()]).is_some());
        b.annotations_mut().insert(CLAIM_ANNOTATION.into(), "u4".into());
        assert!(check(&a, &[a.clone(), b.clone()]).unwrap().message.contains("Tenant b"));
        assert!(is_claimed(&b) && !is_claimed(&a));
    }

    #[test]
    fn a_copied_claim_annotation_does_not_count() {
        let mut t = tenant("water", "new-uid", 1, |_| {});
        t.annotations_mut().insert(CLAIM_ANNOTATION.into(), "old-uid".into());
        assert!(!is_claimed(&t));
    }

    fn ns(owner_uid: Option<&str>, label: Option<&str>) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("water".into()),
                labels: label.map(|l| [(TENANT_LABEL.to_string(), l.to_string())].into()),
                owner_references: owner_uid
                    .map(|uid| vec![OwnerReference { uid: uid.into(), name: "water".into(), ..Default::default() }]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn namespaces_are_refused_unless_new_created_by_the_tenant_or_adopted() {
        let water = tenant("water", "u1", 1, |_| {});
        let v = validate(&water).unwrap();
        assert_eq!(namespace_refusal(&water, &v, None, "tributary-system"), None, "a new namespace");
        assert_eq!(namespace_refusal(&water, &v, Some(&ns(Some("u1"), Some("water"))), "tributary-system"), None);
        let squat = namespace_refusal(&water, &v, Some(&ns(None, None)), "tributary-system").unwrap();
        assert_eq!(squat.reason, Reason::NamespaceTaken);
        assert!(squat.message.contains("spec.adopt.namespace: true"), "{}", squat.message);
        let stale = namespace_refusal(&water, &v, Some(&ns(Some("old"), Some("water"))), "tributary-system");
        assert!(stale.is_some(), "a namespace of a deleted Tenant of the same name is not inherited");
        let other = namespace_refusal(&water, &v, Some(&ns(None, Some("bts"))), "tributary-system").unwrap();
        assert!(other.message.contains("belongs to Tenant bts"));

        let adopting = tenant("water", "u1", 1, |s| s.adopt.namespace = true);
        let va = validate(&adopting).unwrap();
        assert_eq!(namespace_refusal(&adopting, &va, Some(&ns(None, None)), "tributary-system"), None);
        for system in ["kube-system", "kube-public", "default", "tributary-system"] {
            let t = tenant("sys", "u9", 1, |s| {
                s.namespace = Some(system.into());
                s.adopt.namespace = true;
            });
            let refused = namespace_refusal(&t, &validate(&t).unwrap(), None, "tributary-system").unwrap();
            assert!(refused.message.contains("system namespace"), "{system}: {}", refused.message);
        }
    }

    #[test]
    fn a_tenant_provisioned_before_claims_counts_only_with_its_own_namespace_and_secret() {
        let water = tenant("water", "u1", 1, |_| {});
        let v = validate(&water).unwrap();
        let owner = OwnerReference { uid: "u1".into(), ..Default::default() };
        let ours = super::super::build::credentials_secret(&v, owner, &Default::default(), &Passwords::generate());
        assert!(provisioned_before_claims(&water, Some(&ns(Some("u1"), Some("water"))), Some(&ours)));
        assert!(
            !provisioned_before_claims(&water, Some(&ns(None, None)), Some(&ours)),
            "a namespace it did not create"
        );
        let mut planted = ours.clone();
        planted.metadata.owner_references = None;
        assert!(!provisioned_before_claims(&water, Some(&ns(Some("u1"), None)), Some(&planted)));
        assert!(!provisioned_before_claims(&water, None, None));
    }

    #[test]
    fn only_the_secret_the_operator_wrote_is_trusted() {
        let ours = Passwords { kafka: "k".into(), cassandra: "c".into(), ..Passwords::generate() };
        let v = validate(&tenant("water", "u1", 1, |_| {})).unwrap();
        let secret =
            |p: &Passwords| super::super::build::credentials_secret(&v, Default::default(), &Default::default(), p);
        let mut t = tenant("water", "u1", 1, |_| {});
        assert_eq!(trusted_passwords(&t, &v, Some(&secret(&ours)), false), None, "no record: not trusted");
        assert_eq!(
            trusted_passwords(&t, &v, Some(&secret(&ours)), true),
            Some(ours.clone()),
            "provisioned before claims"
        );
        t.annotations_mut().insert(CREDENTIALS_ANNOTATION.into(), credentials_digest(&ours));
        assert_eq!(trusted_passwords(&t, &v, Some(&secret(&ours)), false), Some(ours.clone()));
        let planted = Passwords { kafka: "planted".into(), cassandra: "c".into(), ..Passwords::generate() };
        assert_eq!(trusted_passwords(&t, &v, Some(&secret(&planted)), true), None, "a planted Secret is never adopted");
        // The slots are covered: a Secret switched to the other slots by hand is not trusted.
        let mut switched = ours.clone();
        switched.kafka_slot = ScramMechanism::Sha256;
        assert_eq!(trusted_passwords(&t, &v, Some(&secret(&switched)), false), None);
        t.annotations_mut().insert(CREDENTIALS_ANNOTATION.into(), credentials_digest(&switched));
        assert_eq!(trusted_passwords(&t, &v, Some(&secret(&switched)), false), Some(switched));
    }
}
