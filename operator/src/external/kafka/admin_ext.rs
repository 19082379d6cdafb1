//! Admin calls that librdkafka implements but rdkafka 0.39 does not wrap: SCRAM credential
//! upserts and deletions (KIP-554), ACL create / describe / delete (KIP-140) and
//! IncrementalAlterConfigs (KIP-339; rdkafka's `alter_configs` is the old call that resets
//! every key it is not given).
//!
//! Written by hand because no maintained crate wraps them: each call builds librdkafka's
//! request objects from owned Rust values, submits them on a private result queue of the
//! shared [`AdminClient`]'s native handle, waits for the result event on a blocking thread
//! and copies the answer back into Rust values before the event is freed. Every native
//! object is owned by a guard that frees it, so no pointer outlives the call.

use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as sys;
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

/// Kafka's default PBKDF2 iteration count for SCRAM-SHA-512 (the CLI uses the same).
pub const DEFAULT_SCRAM_ITERATIONS: i32 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum AdminExtError {
    #[error("{op}: invalid argument: {message}")]
    InvalidArgument { op: &'static str, message: String },
    #[error("{op}: no answer from Kafka within {timeout:?}; check that the brokers are reachable")]
    Timeout { op: &'static str, timeout: Duration },
    #[error("{op} failed: {code:?}: {message}")]
    Kafka { op: &'static str, code: RDKafkaErrorCode, message: String },
    #[error("{op}: the admin task did not complete: {message}")]
    Task { op: &'static str, message: String },
}

/// The error Kafka returned for one item of a batched call (one user, one ACL, one filter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ItemError {
    pub code: RDKafkaErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
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

/// The extra admin calls, on the native handle of a shared [`AdminClient`].
#[derive(Clone)]
pub struct AdminExt {
    admin: Arc<AdminClient<DefaultClientContext>>,
    timeout: Duration,
}

impl AdminExt {
    /// `timeout` bounds each call: it is the broker-side request timeout, and the wait for
    /// the answer is that plus a small margin.
    pub fn new(admin: Arc<AdminClient<DefaultClientContext>>, timeout: Duration) -> Self {
        AdminExt { admin, timeout }
    }

    /// Applies SCRAM credential changes in one request; returns each user's outcome.
    pub async fn alter_scram_credentials(
        &self,
        changes: Vec<ScramChange>,
    ) -> Result<Vec<(String, Result<(), ItemError>)>, AdminExtError> {
        const OP: &str = "AlterUserScramCredentials";
        let native: Vec<Native<sys::rd_kafka_UserScramCredentialAlteration_t>> =
            changes.iter().map(|c| scram_to_native(OP, c)).collect::<Result<_, _>>()?;
        self.run(
            OP,
            sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERUSERSCRAMCREDENTIALS,
            sys::RD_KAFKA_EVENT_ALTERUSERSCRAMCREDENTIALS_RESULT,
            move |rk, options, queue| {
                let mut ptrs: Vec<_> = native.iter().map(Native::ptr).collect();
                // SAFETY: rk/options/queue are live for this call; librdkafka copies the
                // alterations, which `native` frees when the closure returns.
                unsafe { sys::rd_kafka_AlterUserScramCredentials(rk, ptrs.as_mut_ptr(), ptrs.len(), options, queue) }
            },
            |event| {
                // SAFETY: the event is an ALTERUSERSCRAMCREDENTIALS result (checked by run).
                unsafe {
                    let result = sys::rd_kafka_event_AlterUserScramCredentials_result(event);
                    let mut count = 0usize;
                    let responses = sys::rd_kafka_AlterUserScramCredentials_result_responses(result, &mut count);
                    Ok((0..count)
                        .map(|i| {
                            let response = *responses.add(i);
                            let user = cstr(sys::rd_kafka_AlterUserScramCredentials_result_response_user(response));
                            let error =
                                item_error(sys::rd_kafka_AlterUserScramCredentials_result_response_error(response));
                            (user, error)
                        })
                        .collect())
                }
            },
        )
        .await
    }

    /// Creates ACL entries in one request (creating an existing entry is a no-op in Kafka);
    /// returns one outcome per binding, in order.
    pub async fn create_acls(&self, bindings: Vec<AclBinding>) -> Result<Vec<Result<(), ItemError>>, AdminExtError> {
        const OP: &str = "CreateAcls";
        if bindings.is_empty() {
            return Ok(Vec::new());
        }
        let native: Vec<Native<sys::rd_kafka_AclBinding_t>> =
            bindings.iter().map(|b| acl_to_native(OP, &AclBindingFilter::exact(b), false)).collect::<Result<_, _>>()?;
        self.run(
            OP,
            sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS,
            sys::RD_KAFKA_EVENT_CREATEACLS_RESULT,
            move |rk, options, queue| {
                let mut ptrs: Vec<_> = native.iter().map(Native::ptr).collect();
                // SAFETY: as in alter_scram_credentials; librdkafka copies the bindings.
                unsafe { sys::rd_kafka_CreateAcls(rk, ptrs.as_mut_ptr(), ptrs.len(), options, queue) }
            },
            |event| {
                // SAFETY: the event is a CREATEACLS result (checked by run).
                unsafe {
                    let result = sys::rd_kafka_event_CreateAcls_result(event);
                    let mut count = 0usize;
                    let results = sys::rd_kafka_CreateAcls_result_acls(result, &mut count);
                    Ok((0..count).map(|i| item_error(sys::rd_kafka_acl_result_error(*results.add(i)))).collect())
                }
            },
        )
        .await
    }

    /// Lists the ACL entries that match `filter`.
    pub async fn describe_acls(&self, filter: AclBindingFilter) -> Result<Vec<AclBinding>, AdminExtError> {
        const OP: &str = "DescribeAcls";
        let native = acl_to_native(OP, &filter, true)?;
        self.run(
            OP,
            sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS,
            sys::RD_KAFKA_EVENT_DESCRIBEACLS_RESULT,
            move |rk, options, queue| {
                // SAFETY: the filter is copied by librdkafka; `native` frees it afterwards.
                unsafe { sys::rd_kafka_DescribeAcls(rk, native.ptr(), options, queue) }
            },
            |event| {
                // SAFETY: the event is a DESCRIBEACLS result (checked by run).
                unsafe {
                    let result = sys::rd_kafka_event_DescribeAcls_result(event);
                    let mut count = 0usize;
                    let acls = sys::rd_kafka_DescribeAcls_result_acls(result, &mut count);
                    Ok((0..count).filter_map(|i| acl_from_native(*acls.add(i))).collect())
                }
            },
        )
        .await
    }

    /// Deletes the ACL entries matching each filter; returns, per filter, the entries
    /// Kafka deleted or the error for that filter.
    pub async fn delete_acls(
        &self,
        filters: Vec<AclBindingFilter>,
    ) -> Result<Vec<Result<Vec<AclBinding>, ItemError>>, AdminExtError> {
        const OP: &str = "DeleteAcls";
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        let native: Vec<Native<sys::rd_kafka_AclBinding_t>> =
            filters.iter().map(|f| acl_to_native(OP, f, true)).collect::<Result<_, _>>()?;
        self.run(
            OP,
            sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEACLS,
            sys::RD_KAFKA_EVENT_DELETEACLS_RESULT,
            move |rk, options, queue| {
                let mut ptrs: Vec<_> = native.iter().map(Native::ptr).collect();
                // SAFETY: as in create_acls.
                unsafe { sys::rd_kafka_DeleteAcls(rk, ptrs.as_mut_ptr(), ptrs.len(), options, queue) }
            },
            |event| {
                // SAFETY: the event is a DELETEACLS result (checked by run).
                unsafe {
                    let result = sys::rd_kafka_event_DeleteAcls_result(event);
                    let mut count = 0usize;
                    let responses = sys::rd_kafka_DeleteAcls_result_responses(result, &mut count);
                    Ok((0..count)
                        .map(|i| {
                            let response = *responses.add(i);
                            item_error(sys::rd_kafka_DeleteAcls_result_response_error(response))?;
                            let mut matched = 0usize;
                            let acls = sys::rd_kafka_DeleteAcls_result_response_matching_acls(response, &mut matched);
                            Ok((0..matched).filter_map(|j| acl_from_native(*acls.add(j))).collect())
                        })
                        .collect())
                }
            },
        )
        .await
    }

    /// Changes only the given keys of one topic's config (IncrementalAlterConfigs); every
    /// other key keeps its value. Returns Kafka's answer for the topic.
    pub async fn incremental_alter_topic_config(
        &self,
        topic: &str,
        changes: Vec<(String, ConfigOp)>,
    ) -> Result<Result<(), ItemError>, AdminExtError> {
        const OP: &str = "IncrementalAlterConfigs";
        let resource = topic_config_to_native(OP, topic, &changes)?;
        self.run(
            OP,
            sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
            sys::RD_KAFKA_EVENT_INCREMENTALALTERCONFIGS_RESULT,
            move |rk, options, queue| {
                let mut ptrs = [resource.ptr()];
                // SAFETY: as in create_acls; librdkafka copies the resource.
                unsafe { sys::rd_kafka_IncrementalAlterConfigs(rk, ptrs.as_mut_ptr(), ptrs.len(), options, queue) }
            },
            |event| {
                // SAFETY: the event is an INCREMENTALALTERCONFIGS result (checked by run).
                unsafe {
                    let result = sys::rd_kafka_event_IncrementalAlterConfigs_result(event);
                    let mut count = 0usize;
                    let resources = sys::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
                    if count == 0 {
                        return Err(AdminExtError::Task { op: OP, message: "no result for the topic".into() });
                    }
                    let resource = *resources;
                    let code = sys::rd_kafka_ConfigResource_error(resource);
                    if code == sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                        return Ok(Ok(()));
                    }
                    Ok(Err(ItemError {
                        code: RDKafkaErrorCode::from(code),
                        message: cstr(sys::rd_kafka_ConfigResource_error_string(resource)),
                    }))
                }
            },
        )
        .await
    }

    /// The topic's id (base64, as the Kafka tools print it): a deleted and re-created topic
    /// gets a new one. `Ok(None)` when the topic does not exist.
    pub async fn describe_topic_id(&self, topic: &str) -> Result<Option<String>, AdminExtError> {
        const OP: &str = "DescribeTopics";
        let name = c_string(OP, "topic name", topic)?;
        self.run(
            OP,
            sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            sys::RD_KAFKA_EVENT_DESCRIBETOPICS_RESULT,
            move |rk, options, queue| {
                let mut names = [name.as_ptr()];
                // SAFETY: librdkafka copies the names into the collection, and the request
                // copies the collection, which the guard frees when the closure returns.
                unsafe {
                    let topics = Native::new(
                        sys::rd_kafka_TopicCollection_of_topic_names(names.as_mut_ptr(), names.len()),
                        sys::rd_kafka_TopicCollection_destroy,
                    );
                    sys::rd_kafka_DescribeTopics(rk, topics.ptr(), options, queue)
                }
            },
            |event| {
                // SAFETY: the event is a DESCRIBETOPICS result (checked by run); the id is
                // copied before the event is freed.
                unsafe {
                    let result = sys::rd_kafka_event_DescribeTopics_result(event);
                    let mut count = 0usize;
                    let topics = sys::rd_kafka_DescribeTopics_result_topics(result, &mut count);
                    if count == 0 {
                        return Err(AdminExtError::Task { op: OP, message: "no result for the topic".into() });
                    }
                    let description = *topics;
                    match item_error(sys::rd_kafka_TopicDescription_error(description)) {
                        Ok(()) => {}
                        Err(e) if e.code == RDKafkaErrorCode::UnknownTopicOrPartition => return Ok(None),
                        Err(e) => return Err(AdminExtError::Kafka { op: OP, code: e.code, message: e.message }),
                    }
                    let id = sys::rd_kafka_TopicDescription_topic_id(description);
                    Ok((!id.is_null()).then(|| cstr(sys::rd_kafka_Uuid_base64str(id))))
                }
            },
        )
        .await
    }

    /// Submits one admin request on a private queue and parses its result event, on a
    /// blocking thread (librdkafka's queue poll blocks).
    async fn run<T, S, P>(
        &self,
        op: &'static str,
        api: sys::rd_kafka_admin_op_t,
        expected_event: i32,
        submit: S,
        parse: P,
    ) -> Result<T, AdminExtError>
    where
        T: Send + 'static,
        S: FnOnce(*mut sys::rd_kafka_t, *const sys::rd_kafka_AdminOptions_t, *mut sys::rd_kafka_queue_t)
            + Send
            + 'static,
        P: FnOnce(*mut sys::rd_kafka_event_t) -> Result<T, AdminExtError> + Send + 'static,
    {
        let admin = self.admin.clone();
        let timeout = self.timeout;
        let wait = timeout + Duration::from_secs(2);
        tokio::task::spawn_blocking(move || {
            let rk = admin.inner().native_ptr();
            // SAFETY: `admin` (and so `rk`) lives until this closure returns; every object
            // created here is freed by its guard before that.
            unsafe {
                let queue = Native::new(sys::rd_kafka_queue_new(rk), sys::rd_kafka_queue_destroy);
                let options = Native::new(sys::rd_kafka_AdminOptions_new(rk, api), sys::rd_kafka_AdminOptions_destroy);
                let mut errstr = [0 as c_char; 512];
                let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
                let err = sys::rd_kafka_AdminOptions_set_request_timeout(
                    options.0,
                    millis,
                    errstr.as_mut_ptr(),
                    errstr.len(),
                );
                if err != sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    return Err(AdminExtError::InvalidArgument { op, message: cstr(errstr.as_ptr()) });
                }
                submit(rk, options.0, queue.0);
                let wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
                let event = sys::rd_kafka_queue_poll(queue.0, wait_ms);
                if event.is_null() {
                    return Err(AdminExtError::Timeout { op, timeout: wait });
                }
                let event = Native::new(event, sys::rd_kafka_event_destroy);
                let err = sys::rd_kafka_event_error(event.0);
                if err != sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    return Err(AdminExtError::Kafka {
                        op,
                        code: RDKafkaErrorCode::from(err),
                        message: cstr(sys::rd_kafka_event_error_string(event.0)),
                    });
                }
                let kind = sys::rd_kafka_event_type(event.0);
                if kind != expected_event {
                    return Err(AdminExtError::Task { op, message: format!("unexpected result event type {kind}") });
                }
                parse(event.0)
            }
        })
        .await
        .map_err(|e| AdminExtError::Task { op, message: e.to_string() })?
    }
}

/// Owns one librdkafka object and frees it on drop.
struct Native<T>(*mut T, unsafe extern "C" fn(*mut T));

impl<T> Native<T> {
    fn new(ptr: *mut T, free: unsafe extern "C" fn(*mut T)) -> Self {
        Native(ptr, free)
    }

    fn ptr(&self) -> *mut T {
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

fn c_string(op: &'static str, what: &str, value: &str) -> Result<CString, AdminExtError> {
    CString::new(value)
        .map_err(|_| AdminExtError::InvalidArgument { op, message: format!("{what} contains a NUL byte") })
}

/// Copies a C string (NULL → empty).
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string.
unsafe fn cstr(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
    }
}

/// # Safety
/// `error` must be NULL or a live `rd_kafka_error_t`.
unsafe fn item_error(error: *const sys::rd_kafka_error_t) -> Result<(), ItemError> {
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

fn scram_to_native(
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

fn topic_config_to_native(
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
fn acl_to_native(
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
unsafe fn acl_from_native(acl: *const sys::rd_kafka_AclBinding_t) -> Option<AclBinding> {
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
