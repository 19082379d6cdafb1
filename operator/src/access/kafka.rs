//! Kafka's access model as the operator writes it: ACL bindings and filters and the changes
//! that converge a principal's ACLs, SCRAM mechanisms and credential changes, config
//! operations. Plain values: the adapter (`external::kafka`) sends them.

use std::collections::BTreeSet;

/// Kafka's default PBKDF2 iteration count for SCRAM-SHA-512 (the CLI uses the same).
pub const DEFAULT_SCRAM_ITERATIONS: i32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// The name clients use (`sasl.mechanism`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [ScramMechanism::Sha512, ScramMechanism::Sha256].into_iter().find(|m| m.as_str() == name)
    }

    /// The other credential a SCRAM user can hold: a rotation's new slot.
    pub const fn other(self) -> Self {
        match self {
            ScramMechanism::Sha256 => ScramMechanism::Sha512,
            ScramMechanism::Sha512 => ScramMechanism::Sha256,
        }
    }

    /// Kafka's wire code (DescribeUserScramCredentials).
    pub const fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    Literal,
    Prefixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclPermission {
    Allow,
    Deny,
}

/// One ACL entry: `principal` (e.g. `User:water`) may (or may not) do `operation` on the
/// resources that `resource_name` names under `pattern_type`, from `host` (`*` for any).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

/// The ACL principal of a SCRAM user: the one place its `User:` form is spelled.
pub fn user_principal(user: &str) -> String {
    format!("User:{user}")
}

/// The ACLs the operator's own principal needs where it is not a super user (a managed Kafka
/// that does not let you set `super.users`), for `user`'s principal. Cluster: `Alter`
/// (SCRAM credentials, ACLs), `Describe` (users, ACLs, groups), `AlterConfigs` and
/// `DescribeConfigs` (client quotas). Every topic: create, delete, grow and configure them,
/// read their offsets, and `Read` for offset resets (OffsetCommit checks the topic too).
/// Every group: `Describe` and `Read` (lag, replays). `Alter` on the cluster lets a principal
/// grant itself more, so this is trust in the operator, not confinement of it.
pub fn operator_acls(user: &str) -> Vec<AclBinding> {
    use AclOperation::*;
    let principal = user_principal(user);
    let allow = |resource, name: &str, operation| {
        AclBinding::allow(principal.clone(), resource, PatternType::Literal, name, operation)
    };
    let mut acls = Vec::new();
    for operation in [Alter, Describe, AlterConfigs, DescribeConfigs] {
        acls.push(allow(ResourceType::Cluster, "kafka-cluster", operation));
    }
    for operation in [Create, Delete, Alter, Describe, AlterConfigs, DescribeConfigs, Read] {
        acls.push(allow(ResourceType::Topic, "*", operation));
    }
    for operation in [Describe, Read] {
        acls.push(allow(ResourceType::Group, "*", operation));
    }
    acls
}

impl AclBinding {
    /// An `Allow` entry from any host — the only kind Tributary writes.
    pub fn allow(
        principal: impl Into<String>,
        resource_type: ResourceType,
        pattern_type: PatternType,
        resource_name: impl Into<String>,
        operation: AclOperation,
    ) -> Self {
        AclBinding {
            resource_type,
            resource_name: resource_name.into(),
            pattern_type,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission: AclPermission::Allow,
        }
    }
}

/// Matches ACL entries; `None` matches anything. `pattern_type: None` means ANY pattern type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern_type: Option<PatternType>,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<AclOperation>,
    pub permission: Option<AclPermission>,
}

impl AclBindingFilter {
    /// Every ACL entry of one principal.
    pub fn for_principal(principal: impl Into<String>) -> Self {
        AclBindingFilter { principal: Some(principal.into()), ..Default::default() }
    }

    /// The filter that matches exactly this binding (to delete it).
    pub fn exact(binding: &AclBinding) -> Self {
        AclBindingFilter {
            resource_type: Some(binding.resource_type),
            resource_name: Some(binding.resource_name.clone()),
            pattern_type: Some(binding.pattern_type),
            principal: Some(binding.principal.clone()),
            host: Some(binding.host.clone()),
            operation: Some(binding.operation),
            permission: Some(binding.permission),
        }
    }
}

/// A change to one user's SCRAM credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum ScramChange {
    Upsert { user: String, mechanism: ScramMechanism, iterations: i32, password: String },
    Delete { user: String, mechanism: ScramMechanism },
}

impl ScramChange {
    pub fn user(&self) -> &str {
        match self {
            ScramChange::Upsert { user, .. } | ScramChange::Delete { user, .. } => user,
        }
    }
}

impl std::fmt::Debug for ScramChange {
    // Never print a password, even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScramChange::Upsert { user, mechanism, iterations, .. } => f
                .debug_struct("Upsert")
                .field("user", user)
                .field("mechanism", mechanism)
                .field("iterations", iterations)
                .finish_non_exhaustive(),
            ScramChange::Delete { user, mechanism } => {
                f.debug_struct("Delete").field("user", user).field("mechanism", mechanism).finish()
            }
        }
    }
}

/// One change of IncrementalAlterConfigs: set a key, or delete its override (back to the
/// broker's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String),
    Delete,
}

/// What to add and what to remove so that the principal's `Allow` entries become `desired`.
/// Only the principal's own entries are ever passed in, so nobody else's ACLs are touched;
/// `Deny` entries only take access away and are the platform admin's (the operator never
/// writes one), so they are left alone.
pub fn acl_changes(desired: &BTreeSet<AclBinding>, current: &[AclBinding]) -> (Vec<AclBinding>, Vec<AclBinding>) {
    let current: BTreeSet<AclBinding> =
        current.iter().filter(|a| a.permission == AclPermission::Allow).cloned().collect();
    (desired.difference(&current).cloned().collect(), current.difference(desired).cloned().collect())
}
