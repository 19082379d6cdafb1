//! The requests about access, each on the [`Wire`]: ACL entries, SCRAM credentials and client
//! quotas, built from the access model's values (`crate::access`) and read back into them.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest,
    DescribeAclsRequest, DescribeClientQuotasRequest, DescribeUserScramCredentialsRequest,
    alter_client_quotas_request as alter_quotas, alter_user_scram_credentials_request as alter_scram,
    create_acls_request::AclCreation, delete_acls_request::DeleteAclsFilter,
    describe_client_quotas_request as describe_quotas, describe_user_scram_credentials_request::UserName,
};
use kafka_protocol::protocol::StrBytes;

use super::calls::{ACLS, QUOTAS, SCRAM, check, text};
use super::error::KafkaCallError;
use super::wire::{Broker, Wire};
use crate::access::kafka::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType, ScramChange, ScramMechanism,
};
use crate::access::quotas::Quotas;

// ---- ACLs ------------------------------------------------------------------------------

// Kafka's wire codes (org.apache.kafka.common.acl / resource).
fn resource_code(r: ResourceType) -> i8 {
    match r {
        ResourceType::Topic => 2,
        ResourceType::Group => 3,
        ResourceType::Cluster => 4,
        ResourceType::TransactionalId => 5,
    }
}

fn pattern_code(p: PatternType) -> i8 {
    match p {
        PatternType::Literal => 3,
        PatternType::Prefixed => 4,
    }
}

const OPERATIONS: [(AclOperation, i8); 11] = [
    (AclOperation::All, 2),
    (AclOperation::Read, 3),
    (AclOperation::Write, 4),
    (AclOperation::Create, 5),
    (AclOperation::Delete, 6),
    (AclOperation::Alter, 7),
    (AclOperation::Describe, 8),
    (AclOperation::ClusterAction, 9),
    (AclOperation::DescribeConfigs, 10),
    (AclOperation::AlterConfigs, 11),
    (AclOperation::IdempotentWrite, 12),
];

fn operation_code(o: AclOperation) -> i8 {
    OPERATIONS.iter().find(|(op, _)| *op == o).map_or(0, |(_, code)| *code)
}

fn permission_code(p: AclPermission) -> i8 {
    match p {
        AclPermission::Deny => 2,
        AclPermission::Allow => 3,
    }
}

/// An ACL entry Kafka described, or `None` for kinds the operator does not model (it never
/// writes them, so it never needs to remove them).
fn binding(resource: (i8, &str, i8), principal: &str, host: &str, operation: i8, permission: i8) -> Option<AclBinding> {
    let (resource_type, resource_name, pattern_type) = resource;
    let resource_type =
        [ResourceType::Topic, ResourceType::Group, ResourceType::Cluster, ResourceType::TransactionalId]
            .into_iter()
            .find(|r| resource_code(*r) == resource_type)?;
    let pattern_type =
        [PatternType::Literal, PatternType::Prefixed].into_iter().find(|p| pattern_code(*p) == pattern_type)?;
    let operation = OPERATIONS.iter().find(|(_, code)| *code == operation)?.0;
    let permission =
        [AclPermission::Allow, AclPermission::Deny].into_iter().find(|p| permission_code(*p) == permission)?;
    Some(AclBinding {
        resource_type,
        resource_name: resource_name.to_string(),
        pattern_type,
        principal: principal.to_string(),
        host: host.to_string(),
        operation,
        permission,
    })
}

/// A filter's codes: `None` is ANY (1), a name or principal `None` matches any.
struct FilterCodes {
    resource_type: i8,
    resource_name: Option<StrBytes>,
    pattern_type: i8,
    principal: Option<StrBytes>,
    host: Option<StrBytes>,
    operation: i8,
    permission: i8,
}

fn filter_codes(f: &AclBindingFilter) -> FilterCodes {
    const ANY: i8 = 1;
    FilterCodes {
        resource_type: f.resource_type.map_or(ANY, resource_code),
        resource_name: f.resource_name.as_deref().map(text),
        pattern_type: f.pattern_type.map_or(ANY, pattern_code),
        principal: f.principal.as_deref().map(text),
        host: f.host.as_deref().map(text),
        operation: f.operation.map_or(ANY, operation_code),
        permission: f.permission.map_or(ANY, permission_code),
    }
}

/// Creates ACL entries in one request (creating an existing entry is a no-op in Kafka).
pub async fn create_acls(wire: &Wire, acls: &[AclBinding]) -> Result<(), KafkaCallError> {
    const CALL: &str = "CreateAcls";
    let creations = acls
        .iter()
        .map(|a| {
            AclCreation::default()
                .with_resource_type(resource_code(a.resource_type))
                .with_resource_name(text(&a.resource_name))
                .with_resource_pattern_type(pattern_code(a.pattern_type))
                .with_principal(text(&a.principal))
                .with_host(text(&a.host))
                .with_operation(operation_code(a.operation))
                .with_permission_type(permission_code(a.permission))
        })
        .collect();
    let response = wire.call(Broker::Any, CALL, &CreateAclsRequest::default().with_creations(creations), ACLS).await?;
    for (acl, result) in acls.iter().zip(response.results) {
        check(CALL, &format!("{acl:?}"), result.error_code, result.error_message)?;
    }
    Ok(())
}

/// The ACL entries that match `filter`.
pub async fn describe_acls(wire: &Wire, filter: &AclBindingFilter) -> Result<Vec<AclBinding>, KafkaCallError> {
    const CALL: &str = "DescribeAcls";
    let f = filter_codes(filter);
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(f.resource_type)
        .with_resource_name_filter(f.resource_name)
        .with_pattern_type_filter(f.pattern_type)
        .with_principal_filter(f.principal)
        .with_host_filter(f.host)
        .with_operation(f.operation)
        .with_permission_type(f.permission);
    let response = wire.call(Broker::Any, CALL, &request, ACLS).await?;
    check(CALL, "the filter", response.error_code, response.error_message)?;
    Ok(response
        .resources
        .iter()
        .flat_map(|r| {
            let resource = (r.resource_type, r.resource_name.as_str(), r.pattern_type);
            r.acls.iter().filter_map(move |a| {
                binding(resource, a.principal.as_str(), a.host.as_str(), a.operation, a.permission_type)
            })
        })
        .collect())
}

/// Deletes exactly these ACL entries; one that does not exist is not an error.
pub async fn delete_acls(wire: &Wire, acls: &[AclBinding]) -> Result<(), KafkaCallError> {
    const CALL: &str = "DeleteAcls";
    let filters = acls
        .iter()
        .map(|a| {
            let f = filter_codes(&AclBindingFilter::exact(a));
            DeleteAclsFilter::default()
                .with_resource_type_filter(f.resource_type)
                .with_resource_name_filter(f.resource_name)
                .with_pattern_type_filter(f.pattern_type)
                .with_principal_filter(f.principal)
                .with_host_filter(f.host)
                .with_operation(f.operation)
                .with_permission_type(f.permission)
        })
        .collect();
    let response = wire.call(Broker::Any, CALL, &DeleteAclsRequest::default().with_filters(filters), ACLS).await?;
    for (acl, result) in acls.iter().zip(response.filter_results) {
        check(CALL, &format!("{acl:?}"), result.error_code, result.error_message)?;
    }
    Ok(())
}

// ---- SCRAM credentials -----------------------------------------------------------------

/// The SCRAM credentials of `users` (`None`: every user's), as user → mechanism codes;
/// users without any are left out.
pub async fn describe_scram(
    wire: &Wire,
    users: Option<&[&str]>,
) -> Result<BTreeMap<String, BTreeSet<ScramMechanism>>, KafkaCallError> {
    const CALL: &str = "DescribeUserScramCredentials";
    let users = users.map(|names| names.iter().map(|n| UserName::default().with_name(text(n))).collect());
    let request = DescribeUserScramCredentialsRequest::default().with_users(users);
    let response = wire.call(Broker::Any, CALL, &request, SCRAM).await?;
    check(CALL, "the users", response.error_code, response.error_message)?;
    let all = [ScramMechanism::Sha256, ScramMechanism::Sha512];
    Ok(response
        .results
        .into_iter()
        // RESOURCE_NOT_FOUND (91) for a user without credentials.
        .filter(|r| r.error_code == 0)
        .map(|r| {
            let codes: Vec<i8> = r.credential_infos.iter().map(|c| c.mechanism).collect();
            (r.user.to_string(), all.into_iter().filter(|m| codes.contains(&m.code())).collect())
        })
        .collect())
}

/// The salted password Kafka stores for a SCRAM credential (RFC 5802 `Hi`: PBKDF2 with the
/// mechanism's HMAC), with a new random salt. Kafka's own tools compute it the same way,
/// client side: the password never travels.
fn salted(password: &str, mechanism: ScramMechanism, iterations: i32) -> Result<(Bytes, Bytes), String> {
    let (digest, length) = match mechanism {
        ScramMechanism::Sha256 => (openssl::hash::MessageDigest::sha256(), 32),
        ScramMechanism::Sha512 => (openssl::hash::MessageDigest::sha512(), 64),
    };
    let mut salt = [0u8; 32];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| e.to_string())?;
    let mut key = vec![0u8; length];
    let rounds = usize::try_from(iterations).map_err(|e| e.to_string())?;
    openssl::pkcs5::pbkdf2_hmac(password.as_bytes(), &salt, rounds, digest, &mut key).map_err(|e| e.to_string())?;
    Ok((Bytes::copy_from_slice(&salt), Bytes::from(key)))
}

/// Applies one SCRAM credential change; deleting a credential that does not exist counts
/// as done.
pub async fn alter_scram(wire: &Wire, change: &ScramChange) -> Result<(), KafkaCallError> {
    const CALL: &str = "AlterUserScramCredentials";
    let mut request = AlterUserScramCredentialsRequest::default();
    match change {
        ScramChange::Upsert { user, mechanism, iterations, password } => {
            let (salt, salted_password) =
                salted(password, *mechanism, *iterations).map_err(|message| KafkaCallError {
                    call: CALL,
                    message: format!("salting {user}'s password: {message}"),
                    transient: true,
                    answered: false,
                })?;
            request.upsertions.push(
                alter_scram::ScramCredentialUpsertion::default()
                    .with_name(text(user))
                    .with_mechanism(mechanism.code())
                    .with_iterations(*iterations)
                    .with_salt(salt)
                    .with_salted_password(salted_password),
            );
        }
        ScramChange::Delete { user, mechanism } => request.deletions.push(
            alter_scram::ScramCredentialDeletion::default().with_name(text(user)).with_mechanism(mechanism.code()),
        ),
    }
    let deleting = matches!(change, ScramChange::Delete { .. });
    let response = wire.call(Broker::Any, CALL, &request, SCRAM).await?;
    for result in response.results {
        // RESOURCE_NOT_FOUND (91): no such credential.
        if !(deleting && result.error_code == 91) {
            check(CALL, &format!("user {}", result.user.as_str()), result.error_code, result.error_message)?;
        }
    }
    Ok(())
}

// ---- Client quotas ---------------------------------------------------------------------

/// The quotas set on exactly this user (not defaults).
pub async fn describe_user_quotas(wire: &Wire, user: &str) -> Result<Quotas, KafkaCallError> {
    const CALL: &str = "DescribeClientQuotas";
    let request = DescribeClientQuotasRequest::default().with_strict(true).with_components(vec![
        describe_quotas::ComponentData::default()
            .with_entity_type(StrBytes::from_static_str("user"))
            .with_match_type(0) // exact name
            .with_match(Some(text(user))),
    ]);
    let response = wire.call(Broker::Any, CALL, &request, QUOTAS).await?;
    check(CALL, &format!("user {user}"), response.error_code, response.error_message)?;
    Ok(response
        .entries
        .unwrap_or_default()
        .into_iter()
        .flat_map(|entry| entry.values)
        .map(|v| (v.key.to_string(), v.value))
        .collect())
}

/// Sets `set` and removes `remove` on the user's quotas, in one request.
pub async fn alter_user_quotas(wire: &Wire, user: &str, set: &Quotas, remove: &[String]) -> Result<(), KafkaCallError> {
    const CALL: &str = "AlterClientQuotas";
    let mut ops: Vec<alter_quotas::OpData> =
        set.iter().map(|(k, v)| alter_quotas::OpData::default().with_key(text(k)).with_value(*v)).collect();
    ops.extend(remove.iter().map(|k| alter_quotas::OpData::default().with_key(text(k)).with_remove(true)));
    let entity = alter_quotas::EntityData::default()
        .with_entity_type(StrBytes::from_static_str("user"))
        .with_entity_name(Some(text(user)));
    let request = AlterClientQuotasRequest::default()
        .with_entries(vec![alter_quotas::EntryData::default().with_entity(vec![entity]).with_ops(ops)]);
    let response = wire.call(Broker::Any, CALL, &request, QUOTAS).await?;
    for entry in response.entries {
        check(CALL, &format!("user {user}"), entry.error_code, entry.error_message)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::*;

    #[test]
    fn requests_encode_in_the_versions_the_client_sends() {
        let request = DescribeClientQuotasRequest::default().with_strict(true);
        let mut buf = BytesMut::new();
        request.encode(&mut buf, QUOTAS).expect("DescribeClientQuotas v1 encodes");
        let decoded = DescribeClientQuotasRequest::decode(&mut buf.freeze(), QUOTAS).unwrap();
        assert_eq!(decoded, request);
    }

    #[test]
    fn acl_entries_round_trip_through_kafkas_codes() {
        let acl =
            AclBinding::allow("User:water", ResourceType::Topic, PatternType::Prefixed, "water.", AclOperation::Write);
        let f = filter_codes(&AclBindingFilter::exact(&acl));
        let back = binding((f.resource_type, "water.", f.pattern_type), "User:water", "*", f.operation, f.permission);
        assert_eq!(back, Some(acl));
        for (op, code) in OPERATIONS {
            assert_eq!(operation_code(op), code);
        }
        // Kafka's codes (AclOperation.java): READ 3, WRITE 4, IDEMPOTENT_WRITE 12.
        assert_eq!((operation_code(AclOperation::Read), operation_code(AclOperation::IdempotentWrite)), (3, 12));
        let any = filter_codes(&AclBindingFilter::for_principal("User:water"));
        assert_eq!((any.resource_type, any.pattern_type, any.operation, any.permission), (1, 1, 1, 1));
        // A kind the operator never writes (DELEGATION_TOKEN, 6) is left out, not mistaken.
        assert_eq!(binding((6, "t", 3), "User:x", "*", 3, 3), None);
    }

    #[test]
    fn a_salted_password_is_rfc_5802_hi_with_a_fresh_salt() {
        let (salt, key) = salted("pencil", ScramMechanism::Sha256, 4096).unwrap();
        let mut expected = [0u8; 32];
        openssl::pkcs5::pbkdf2_hmac(b"pencil", &salt, 4096, openssl::hash::MessageDigest::sha256(), &mut expected)
            .unwrap();
        assert_eq!(&key[..], &expected[..]);
        let (other_salt, other_key) = salted("pencil", ScramMechanism::Sha256, 4096).unwrap();
        assert_ne!((salt, key), (other_salt, other_key), "each credential gets its own salt");
        assert_eq!(salted("x", ScramMechanism::Sha512, 4096).unwrap().1.len(), 64);
    }
}
