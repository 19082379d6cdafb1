//! What a KafkaUser may be given (pure): its principal and Secret names, the ACLs on its own
//! tenant's resources (every name under the tenant's prefixes, never the sinks' groups), the
//! topics of other tenants it asks for (granted or not by their TopicGrants), and its quotas
//! (at most its share of the tenant's).

use std::collections::BTreeSet;

use crate::access::kafka::{AclBinding, AclOperation, PatternType, ResourceType, user_principal};
use crate::access::quotas::Quotas;
use crate::api::access::{AclPatternType, AclResourceType, GrantAccess, KafkaUser, TopicGrant, UserOperation};
use crate::tenant::ValidatedTenant;
use crate::tenant::validate::kafka_topic_collation;

/// A KafkaUser as the operator provisions it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredUser {
    /// The Kafka user name: `<tenant user>.app.<name>`.
    pub user: String,
    /// The Secret with its login.
    pub secret: String,
    /// ACL entries on its own tenant's resources.
    pub own: BTreeSet<AclBinding>,
    /// Topics of other tenants it names, each to be granted.
    pub shared: Vec<SharedTopic>,
    pub quotas: Quotas,
}

/// A topic (or prefix) of another tenant that a KafkaUser names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedTopic {
    pub tenant: String,
    pub name: String,
    pub pattern: AclPatternType,
    pub operations: Vec<UserOperation>,
}

pub fn user_name(tenant: &ValidatedTenant, name: &str) -> String {
    format!("{}.app.{name}", tenant.kafka_user)
}

pub fn secret_name(name: &str) -> String {
    format!("kafka-user-{name}")
}

fn pattern(p: AclPatternType) -> PatternType {
    match p {
        AclPatternType::Literal => PatternType::Literal,
        AclPatternType::Prefixed => PatternType::Prefixed,
    }
}

fn operation(o: UserOperation) -> AclOperation {
    match o {
        UserOperation::Read => AclOperation::Read,
        UserOperation::Write => AclOperation::Write,
        UserOperation::Describe => AclOperation::Describe,
    }
}

/// The ACL entries for `operations` on one resource of `principal`.
pub fn bindings(
    principal: &str,
    resource: ResourceType,
    name: &str,
    p: AclPatternType,
    operations: &[UserOperation],
) -> impl Iterator<Item = AclBinding> {
    operations.iter().map(move |o| AclBinding::allow(principal, resource, pattern(p), name, operation(*o)))
}

/// The KafkaUser as provisioned, or what to change in its spec. `share`: its share of the
/// tenant's quotas.
pub fn validate(user: &KafkaUser, tenant: &ValidatedTenant, share: &Quotas) -> Result<DesiredUser, String> {
    let name = user.metadata.name.clone().unwrap_or_default();
    if tenant.external_user.is_some() {
        return Err(format!(
            "Tenant {} runs as the external Kafka user {}: its applications use that login (tributary-credentials); \
             a KafkaUser needs a Tenant whose users the operator makes",
            tenant.name, tenant.kafka_user
        ));
    }
    let principal = user_principal(&user_name(tenant, &name));
    let mut own = BTreeSet::new();
    let mut shared = Vec::new();
    for (i, acl) in user.spec.acls.iter().enumerate() {
        let r = &acl.resource;
        let field = format!("spec.acls[{i}].resource.name {}", r.name);
        match (&r.tenant, r.type_) {
            (Some(other), AclResourceType::Topic) if other != &tenant.name => {
                shared.push(SharedTopic {
                    tenant: other.clone(),
                    name: r.name.clone(),
                    pattern: r.pattern_type,
                    operations: acl.operations.clone(),
                });
                continue;
            }
            (_, AclResourceType::Topic) => {
                let under = kafka_topic_collation(&r.name).starts_with(&kafka_topic_collation(&tenant.topic_prefix));
                if !under {
                    return Err(format!(
                        "{field} is outside tenant {}'s topic prefix {}: name one of its topics, or a topic another \
                         tenant shared (set resource.tenant to that tenant)",
                        tenant.name, tenant.topic_prefix
                    ));
                }
                own.extend(bindings(&principal, ResourceType::Topic, &r.name, r.pattern_type, &acl.operations));
            }
            (_, AclResourceType::Group) => {
                if !r.name.starts_with(&tenant.group_prefix) {
                    return Err(format!(
                        "{field} is outside tenant {}'s group prefix {}: use a group name under it",
                        tenant.name, tenant.group_prefix
                    ));
                }
                let sinks = format!("{}sink.", tenant.group_prefix);
                let covers_sinks = match r.pattern_type {
                    AclPatternType::Literal => r.name.starts_with(&sinks),
                    AclPatternType::Prefixed => r.name.starts_with(&sinks) || sinks.starts_with(&r.name),
                };
                if covers_sinks {
                    return Err(format!(
                        "{field} reaches the sinks' consumer groups ({sinks}*), whose offsets only the sinks may \
                         move: use a group name (or prefix) outside {sinks}"
                    ));
                }
                own.extend(bindings(&principal, ResourceType::Group, &r.name, r.pattern_type, &acl.operations));
            }
            (_, AclResourceType::TransactionalId) => {
                if !r.name.starts_with(&tenant.transactional_id_prefix) {
                    return Err(format!(
                        "{field} is outside tenant {}'s transactional id prefix {}",
                        tenant.name, tenant.transactional_id_prefix
                    ));
                }
                let resource = ResourceType::TransactionalId;
                own.extend(bindings(&principal, resource, &r.name, r.pattern_type, &acl.operations));
            }
        }
    }
    Ok(DesiredUser {
        user: user_name(tenant, &name),
        secret: secret_name(&name),
        own,
        shared,
        quotas: quotas(user, share)?,
    })
}

/// The share, with the spec's lower figures; a figure above the share is refused.
fn quotas(user: &KafkaUser, share: &Quotas) -> Result<Quotas, String> {
    use crate::access::quotas::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE};
    let mut quotas = share.clone();
    let Some(asked) = &user.spec.quotas else { return Ok(quotas) };
    let figures = [
        (PRODUCER_BYTE_RATE, "producerByteRate", asked.producer_byte_rate.map(|v| v as f64)),
        (CONSUMER_BYTE_RATE, "consumerByteRate", asked.consumer_byte_rate.map(|v| v as f64)),
        (REQUEST_PERCENTAGE, "requestPercentage", asked.request_percentage.map(f64::from)),
    ];
    for (key, field, value) in figures {
        let Some(value) = value else { continue };
        if let Some(most) = share.get(key).filter(|most| value > **most) {
            return Err(format!(
                "spec.quotas.{field} {value} is above this login's share of the tenant's quota ({most}): ask for at \
                 most {most}, or ask the platform admin for a larger tenant quota or fewer maxKafkaUsers"
            ));
        }
        quotas.insert(key.to_string(), value);
    }
    Ok(quotas)
}

/// Whether `grant` (a TopicGrant of `owner`'s namespace) gives `receiver` what `asked`
/// needs: the same tenant, a topic under the owner's prefix, a name it covers, and write
/// access when asked to write. `Err` says why not.
pub fn grants(grant: &TopicGrant, owner: &ValidatedTenant, receiver: &str, asked: &SharedTopic) -> Result<(), String> {
    let g = &grant.spec;
    let grant_name = grant.metadata.name.as_deref().unwrap_or_default();
    if g.tenant != receiver {
        return Err(format!("TopicGrant {grant_name} grants tenant {}", g.tenant));
    }
    if let Err(why) = grant_is_valid(grant, owner) {
        return Err(format!("TopicGrant {grant_name} is invalid ({why})"));
    }
    let covers = match (g.pattern_type, asked.pattern) {
        (AclPatternType::Literal, AclPatternType::Literal) => g.topic == asked.name,
        (AclPatternType::Prefixed, _) => asked.name.starts_with(&g.topic),
        (AclPatternType::Literal, AclPatternType::Prefixed) => false,
    };
    if !covers {
        return Err(format!("TopicGrant {grant_name} covers {} ({:?}), not {}", g.topic, g.pattern_type, asked.name));
    }
    if asked.operations.contains(&UserOperation::Write) && g.access != GrantAccess::ReadWrite {
        return Err(format!("TopicGrant {grant_name} grants Read, and Write is asked"));
    }
    Ok(())
}

/// A grant names only topics its tenant owns: under its topic prefix (as Kafka compares names).
pub fn grant_is_valid(grant: &TopicGrant, owner: &ValidatedTenant) -> Result<(), String> {
    let prefix = kafka_topic_collation(&owner.topic_prefix);
    let topic = kafka_topic_collation(&grant.spec.topic);
    if !topic.starts_with(&prefix) {
        return Err(format!(
            "spec.topic {} is not under tenant {}'s topic prefix {}: a tenant can grant only its own topics",
            grant.spec.topic, owner.name, owner.topic_prefix
        ));
    }
    if grant.spec.tenant == owner.name {
        return Err("spec.tenant names this tenant itself: its own logins need no grant".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::access::{AclResource, KafkaUserSpec, TopicGrantSpec, UserAcl};
    use crate::api::{Tenant, TenantSpec};

    fn water() -> ValidatedTenant {
        crate::tenant::validate(&Tenant::new("water", TenantSpec::default())).unwrap()
    }

    fn acl(type_: AclResourceType, name: &str, p: AclPatternType, ops: &[UserOperation]) -> UserAcl {
        UserAcl {
            resource: AclResource { type_, name: name.into(), pattern_type: p, tenant: None },
            operations: ops.to_vec(),
        }
    }

    fn user(acls: Vec<UserAcl>) -> KafkaUser {
        KafkaUser::new("ingest", KafkaUserSpec { acls, quotas: None })
    }

    #[test]
    fn an_application_gets_exactly_its_declared_acls_under_its_tenants_prefixes() {
        use AclPatternType::*;
        use UserOperation::*;
        let u = user(vec![
            acl(AclResourceType::Topic, "water.data", Literal, &[Write, Describe]),
            acl(AclResourceType::Group, "water.dashboard", Prefixed, &[Read]),
        ]);
        let d = validate(&u, &water(), &Quotas::new()).unwrap();
        assert_eq!((d.user.as_str(), d.secret.as_str()), ("water.app.ingest", "kafka-user-ingest"));
        assert_eq!(d.own.len(), 3);
        assert!(d.own.iter().all(|a| a.principal == "User:water.app.ingest"));
        let write = AclBinding::allow(
            "User:water.app.ingest",
            ResourceType::Topic,
            PatternType::Literal,
            "water.data",
            AclOperation::Write,
        );
        assert!(d.own.contains(&write));

        for (bad, says) in [
            (acl(AclResourceType::Topic, "bts.data", Literal, &[Read]), "outside tenant water's topic prefix"),
            (acl(AclResourceType::Topic, "water", Prefixed, &[Read]), "outside tenant water's topic prefix"),
            (acl(AclResourceType::Group, "bts.g", Literal, &[Read]), "outside tenant water's group prefix"),
            (acl(AclResourceType::Group, "water.sink.readings", Literal, &[Read]), "sinks' consumer groups"),
            (acl(AclResourceType::Group, "water.", Prefixed, &[Read]), "sinks' consumer groups"),
            (acl(AclResourceType::TransactionalId, "bts.tx", Literal, &[Write]), "transactional id prefix"),
        ] {
            let err = validate(&user(vec![bad]), &water(), &Quotas::new()).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
        // `water_data` is the same topic name as `water.data` to Kafka: it is under the prefix.
        let collated = user(vec![acl(AclResourceType::Topic, "water_data", Literal, &[Read])]);
        assert!(validate(&collated, &water(), &Quotas::new()).is_ok());
    }

    #[test]
    fn quotas_are_the_share_or_less_never_more() {
        let share: Quotas = [("producer_byte_rate".to_string(), 65_536.0)].into();
        let mut u = user(vec![]);
        assert_eq!(validate(&u, &water(), &share).unwrap().quotas, share);
        u.spec.quotas = Some(crate::api::tenant::KafkaQuotas { producer_byte_rate: Some(4096), ..Default::default() });
        assert_eq!(validate(&u, &water(), &share).unwrap().quotas["producer_byte_rate"], 4096.0);
        u.spec.quotas =
            Some(crate::api::tenant::KafkaQuotas { producer_byte_rate: Some(1 << 20), ..Default::default() });
        let err = validate(&u, &water(), &share).unwrap_err();
        assert!(err.contains("above this login's share"), "{err}");
    }

    #[test]
    fn a_grant_covers_only_its_owners_topics_its_tenant_and_its_access() {
        let owner = water();
        let grant = |topic: &str, p: AclPatternType, access: GrantAccess| {
            TopicGrant::new(
                "to-bts",
                TopicGrantSpec { tenant: "bts".into(), topic: topic.into(), pattern_type: p, access },
            )
        };
        let asked = |name: &str, ops: &[UserOperation]| SharedTopic {
            tenant: "water".into(),
            name: name.into(),
            pattern: AclPatternType::Literal,
            operations: ops.to_vec(),
        };
        let read = grant("water.data", AclPatternType::Literal, GrantAccess::Read);
        assert!(grants(&read, &owner, "bts", &asked("water.data", &[UserOperation::Read])).is_ok());
        assert!(grants(&read, &owner, "other", &asked("water.data", &[UserOperation::Read])).is_err());
        let err = grants(&read, &owner, "bts", &asked("water.data", &[UserOperation::Write])).unwrap_err();
        assert!(err.contains("grants Read"), "{err}");
        assert!(grants(&read, &owner, "bts", &asked("water.other", &[UserOperation::Read])).is_err());
        let prefix = grant("water.", AclPatternType::Prefixed, GrantAccess::ReadWrite);
        assert!(grants(&prefix, &owner, "bts", &asked("water.other", &[UserOperation::Write])).is_ok());
        // A grant for a topic the granter does not own is refused, whatever it says.
        let theirs = grant("bts.data", AclPatternType::Literal, GrantAccess::Read);
        let err = grant_is_valid(&theirs, &owner).unwrap_err();
        assert!(err.contains("can grant only its own topics"), "{err}");
        assert!(grants(&theirs, &owner, "bts", &asked("bts.data", &[UserOperation::Read])).is_err());
    }
}
