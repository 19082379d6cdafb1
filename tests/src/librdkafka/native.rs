//! librdkafka's C objects for the hand-written admin calls: a guard that frees each one,
//! and the conversions between them and the plain values of [`super::acl`].

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use rdkafka::bindings as sys;
use rdkafka::types::RDKafkaErrorCode;

use tributary::external::kafka::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, ConfigOp, PatternType, ResourceType, ScramChange,
    ScramMechanism,
};

use super::{AdminExtError, ItemError};

/// Owns one librdkafka object and frees it on drop.
pub(super) struct Native<T>(*mut T, unsafe extern "C" fn(*mut T));

impl<T> Native<T> {
    pub(super) fn new(ptr: *mut T, free: unsafe extern "C" fn(*mut T)) -> Self {
        Native(ptr, free)
    }

    pub(super) fn ptr(&self) -> *mut T {
        self.0
    }
}

impl<T> Drop for Native<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from the matching librdkafka constructor and is freed once.
            unsafe { (self.1)(self.0) }
        }
    }
}

// SAFETY: the wrapped librdkafka request objects are plain heap data with no thread
// affinity; each guard is used by one thread at a time.
unsafe impl<T> Send for Native<T> {}

pub(super) fn c_string(op: &'static str, what: &str, value: &str) -> Result<CString, AdminExtError> {
    CString::new(value)
        .map_err(|_| AdminExtError::InvalidArgument { op, message: format!("{what} contains a NUL byte") })
}

/// Copies a C string (NULL → empty).
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string.
pub(super) unsafe fn cstr(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
    }
}

/// # Safety
/// `error` must be NULL or a live `rd_kafka_error_t`.
pub(super) unsafe fn item_error(error: *const sys::rd_kafka_error_t) -> Result<(), ItemError> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: guaranteed by the caller.
    unsafe {
        let code = sys::rd_kafka_error_code(error);
        if code == sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Ok(());
        }
        Err(ItemError { code: RDKafkaErrorCode::from(code), message: cstr(sys::rd_kafka_error_string(error)) })
    }
}

pub(super) fn scram_to_native(
    op: &'static str,
    change: &ScramChange,
) -> Result<Native<sys::rd_kafka_UserScramCredentialAlteration_t>, AdminExtError> {
    let user = c_string(op, "user name", change.user())?;
    // SAFETY: all pointers are valid for the call; librdkafka copies them.
    let ptr = unsafe {
        match change {
            ScramChange::Upsert { mechanism, iterations, password, .. } => {
                sys::rd_kafka_UserScramCredentialUpsertion_new(
                    user.as_ptr(),
                    scram_mechanism(*mechanism),
                    *iterations,
                    password.as_ptr(),
                    password.len(),
                    // NULL salt: librdkafka generates a random one.
                    ptr::null(),
                    0,
                )
            }
            ScramChange::Delete { mechanism, .. } => {
                sys::rd_kafka_UserScramCredentialDeletion_new(user.as_ptr(), scram_mechanism(*mechanism))
            }
        }
    };
    if ptr.is_null() {
        return Err(AdminExtError::InvalidArgument { op, message: format!("rejected change for {}", change.user()) });
    }
    Ok(Native::new(ptr, sys::rd_kafka_UserScramCredentialAlteration_destroy))
}

pub(super) fn topic_config_to_native(
    op: &'static str,
    topic: &str,
    changes: &[(String, ConfigOp)],
) -> Result<Native<sys::rd_kafka_ConfigResource_t>, AdminExtError> {
    let name = c_string(op, "topic name", topic)?;
    // SAFETY: `name` is a live CString; librdkafka copies it.
    let resource = unsafe {
        sys::rd_kafka_ConfigResource_new(sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC, name.as_ptr())
    };
    if resource.is_null() {
        return Err(AdminExtError::InvalidArgument { op, message: format!("rejected topic name {topic:?}") });
    }
    let resource = Native::new(resource, sys::rd_kafka_ConfigResource_destroy);
    for (key, change) in changes {
        let key_c = c_string(op, "config key", key)?;
        let (op_type, value) = match change {
            ConfigOp::Set(v) => (sys::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET, Some(v)),
            ConfigOp::Delete => (sys::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE, None),
        };
        let value_c = value.map(|v| c_string(op, "config value", v)).transpose()?;
        // SAFETY: every pointer is a live CString or NULL (a DELETE has no value).
        let error = unsafe {
            sys::rd_kafka_ConfigResource_add_incremental_config(
                resource.ptr(),
                key_c.as_ptr(),
                op_type,
                value_c.as_ref().map_or(ptr::null(), |v| v.as_ptr()),
            )
        };
        if !error.is_null() {
            let error = Native::new(error, sys::rd_kafka_error_destroy);
            // SAFETY: a live error object owned by the guard.
            let message = unsafe { cstr(sys::rd_kafka_error_string(error.ptr())) };
            return Err(AdminExtError::InvalidArgument { op, message: format!("{key}: {message}") });
        }
    }
    Ok(resource)
}

/// Builds a native ACL binding (`filter == false`: every field must be set) or filter.
pub(super) fn acl_to_native(
    op: &'static str,
    f: &AclBindingFilter,
    filter: bool,
) -> Result<Native<sys::rd_kafka_AclBinding_t>, AdminExtError> {
    let opt = |what: &str, v: &Option<String>| -> Result<Option<CString>, AdminExtError> {
        v.as_deref().map(|s| c_string(op, what, s)).transpose()
    };
    let name = opt("resource name", &f.resource_name)?;
    let principal = opt("principal", &f.principal)?;
    let host = opt("host", &f.host)?;
    let as_ptr = |c: &Option<CString>| c.as_ref().map_or(ptr::null(), |c| c.as_ptr());
    let restype = f.resource_type.map_or(sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_ANY, resource_type);
    let pattern =
        f.pattern_type.map_or(sys::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_ANY, pattern_type);
    let operation = f.operation.map_or(sys::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY, acl_operation);
    let permission =
        f.permission.map_or(sys::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ANY, acl_permission);
    let mut errstr = [0 as c_char; 512];
    // SAFETY: every pointer is NULL or a live CString; librdkafka copies them.
    let ptr = unsafe {
        let new = if filter { sys::rd_kafka_AclBindingFilter_new } else { sys::rd_kafka_AclBinding_new };
        new(
            restype,
            as_ptr(&name),
            pattern,
            as_ptr(&principal),
            as_ptr(&host),
            operation,
            permission,
            errstr.as_mut_ptr(),
            errstr.len(),
        )
    };
    if ptr.is_null() {
        // SAFETY: librdkafka wrote a NUL-terminated message into errstr.
        return Err(AdminExtError::InvalidArgument { op, message: unsafe { cstr(errstr.as_ptr()) } });
    }
    Ok(Native::new(ptr, sys::rd_kafka_AclBinding_destroy))
}

/// Copies a native binding; `None` for kinds this module does not model (e.g. delegation tokens).
///
/// # Safety
/// `acl` must be a live `rd_kafka_AclBinding_t`.
pub(super) unsafe fn acl_from_native(acl: *const sys::rd_kafka_AclBinding_t) -> Option<AclBinding> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        Some(AclBinding {
            resource_type: match sys::rd_kafka_AclBinding_restype(acl) {
                sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC => ResourceType::Topic,
                sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_GROUP => ResourceType::Group,
                sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_BROKER => ResourceType::Cluster,
                sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID => ResourceType::TransactionalId,
                _ => return None,
            },
            resource_name: cstr(sys::rd_kafka_AclBinding_name(acl)),
            pattern_type: match sys::rd_kafka_AclBinding_resource_pattern_type(acl) {
                sys::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL => PatternType::Literal,
                sys::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED => PatternType::Prefixed,
                _ => return None,
            },
            principal: cstr(sys::rd_kafka_AclBinding_principal(acl)),
            host: cstr(sys::rd_kafka_AclBinding_host(acl)),
            operation: ALL_OPERATIONS
                .into_iter()
                .find(|o| acl_operation(*o) == sys::rd_kafka_AclBinding_operation(acl))?,
            permission: match sys::rd_kafka_AclBinding_permission_type(acl) {
                sys::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW => AclPermission::Allow,
                sys::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_DENY => AclPermission::Deny,
                _ => return None,
            },
        })
    }
}

const ALL_OPERATIONS: [AclOperation; 11] = [
    AclOperation::All,
    AclOperation::Read,
    AclOperation::Write,
    AclOperation::Create,
    AclOperation::Delete,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::ClusterAction,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
    AclOperation::IdempotentWrite,
];

fn scram_mechanism(m: ScramMechanism) -> sys::rd_kafka_ScramMechanism_t {
    match m {
        ScramMechanism::Sha256 => sys::rd_kafka_ScramMechanism_t::RD_KAFKA_SCRAM_MECHANISM_SHA_256,
        ScramMechanism::Sha512 => sys::rd_kafka_ScramMechanism_t::RD_KAFKA_SCRAM_MECHANISM_SHA_512,
    }
}

fn resource_type(r: ResourceType) -> sys::rd_kafka_ResourceType_t {
    use sys::rd_kafka_ResourceType_t::*;
    match r {
        ResourceType::Topic => RD_KAFKA_RESOURCE_TOPIC,
        ResourceType::Group => RD_KAFKA_RESOURCE_GROUP,
        ResourceType::Cluster => RD_KAFKA_RESOURCE_BROKER,
        ResourceType::TransactionalId => RD_KAFKA_RESOURCE_TRANSACTIONAL_ID,
    }
}

fn pattern_type(p: PatternType) -> sys::rd_kafka_ResourcePatternType_t {
    match p {
        PatternType::Literal => sys::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL,
        PatternType::Prefixed => sys::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED,
    }
}

fn acl_operation(o: AclOperation) -> sys::rd_kafka_AclOperation_t {
    use sys::rd_kafka_AclOperation_t::*;
    match o {
        AclOperation::All => RD_KAFKA_ACL_OPERATION_ALL,
        AclOperation::Read => RD_KAFKA_ACL_OPERATION_READ,
        AclOperation::Write => RD_KAFKA_ACL_OPERATION_WRITE,
        AclOperation::Create => RD_KAFKA_ACL_OPERATION_CREATE,
        AclOperation::Delete => RD_KAFKA_ACL_OPERATION_DELETE,
        AclOperation::Alter => RD_KAFKA_ACL_OPERATION_ALTER,
        AclOperation::Describe => RD_KAFKA_ACL_OPERATION_DESCRIBE,
        AclOperation::ClusterAction => RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION,
        AclOperation::DescribeConfigs => RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
        AclOperation::AlterConfigs => RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS,
        AclOperation::IdempotentWrite => RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE,
    }
}

fn acl_permission(p: AclPermission) -> sys::rd_kafka_AclPermissionType_t {
    match p {
        AclPermission::Allow => sys::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
        AclPermission::Deny => sys::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_DENY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary::external::kafka::DEFAULT_SCRAM_ITERATIONS;

    #[test]
    fn every_operation_maps_to_a_distinct_native_value() {
        let mut seen = std::collections::HashSet::new();
        for op in ALL_OPERATIONS {
            assert!(seen.insert(acl_operation(op) as u32), "{op:?} maps to a value already used");
        }
    }

    #[test]
    fn a_binding_with_a_nul_byte_is_refused_before_reaching_librdkafka() {
        let binding =
            AclBinding::allow("User:a\0b", ResourceType::Topic, PatternType::Literal, "t", AclOperation::Read);
        let err = acl_to_native("CreateAcls", &AclBindingFilter::exact(&binding), false).err().expect("must fail");
        assert!(err.to_string().contains("principal contains a NUL byte"), "{err}");
    }

    #[test]
    fn librdkafka_rejects_an_incomplete_binding_with_its_own_message() {
        // A binding (not a filter) needs every field; librdkafka says which one is missing.
        let filter = AclBindingFilter::for_principal("User:x");
        let err = acl_to_native("CreateAcls", &filter, false).err().expect("must fail");
        assert!(matches!(err, AdminExtError::InvalidArgument { .. }), "{err}");
        assert!(!err.to_string().ends_with("invalid argument: "), "librdkafka gave no reason: {err}");
    }

    #[test]
    fn a_native_binding_reads_back_as_the_same_value() {
        let binding =
            AclBinding::allow("User:water", ResourceType::Group, PatternType::Prefixed, "water.", AclOperation::Read);
        let native = acl_to_native("CreateAcls", &AclBindingFilter::exact(&binding), false).expect("valid binding");
        // SAFETY: native.0 is a live binding owned by `native`.
        let back = unsafe { acl_from_native(native.0) };
        assert_eq!(back, Some(binding));
    }

    #[test]
    fn a_config_change_is_checked_by_librdkafka_before_it_is_sent() {
        let ok = vec![("retention.ms".to_string(), ConfigOp::Set("1000".into())), ("x".into(), ConfigOp::Delete)];
        assert!(topic_config_to_native("IncrementalAlterConfigs", "water.data", &ok).is_ok());
        // librdkafka refuses an empty key with its own message, before any request is sent.
        let empty = vec![(String::new(), ConfigOp::Set("1".into()))];
        let err = topic_config_to_native("IncrementalAlterConfigs", "water.data", &empty).err().expect("must fail");
        assert!(err.to_string().contains("invalid argument: : Config name mustn't be empty"), "{err}");
    }

    #[test]
    fn scram_change_debug_output_hides_the_password() {
        let change = ScramChange::Upsert {
            user: "water".into(),
            mechanism: ScramMechanism::Sha512,
            iterations: DEFAULT_SCRAM_ITERATIONS,
            password: "hunter2".into(),
        };
        let shown = format!("{change:?}");
        assert!(shown.contains("water") && !shown.contains("hunter2"), "{shown}");
    }
}
