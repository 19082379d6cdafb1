//! The tests' own Kafka admin client for what rdkafka 0.39 does not wrap: SCRAM credential
//! upserts and deletions (KIP-554), ACL create / describe / delete (KIP-140) and
//! IncrementalAlterConfigs (KIP-339; rdkafka's `alter_configs` is the old call that resets
//! every key it is not given).
//!
//! Written by hand because no maintained crate wraps them: each call builds librdkafka's
//! request objects from owned Rust values, submits them on a private result queue of the
//! shared [`AdminClient`]'s native handle, waits for the result event on a blocking thread
//! and copies the answer back into Rust values before the event is freed. Every native
//! object is owned by a guard that frees it, so no pointer outlives the call.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as sys;
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use tributary::external::kafka::{AclBinding, AclBindingFilter, ConfigOp, ScramChange};

use super::native::{
    Native, acl_from_native, acl_to_native, c_string, cstr, item_error, scram_to_native, topic_config_to_native,
};
use super::{AdminExtError, ItemError};

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

    /// DescribeTopics for several topics in one request (names distinct): each one's shape,
    /// `None` for a topic that does not exist. Unlike a Metadata call for one topic, it
    /// leaves no topic object behind in the shared client (librdkafka keeps one per topic a
    /// Metadata call named, and scans them all every second).
    pub async fn describe_topics(
        &self,
        names: Vec<String>,
    ) -> Result<Vec<(String, Result<Option<TopicShape>, ItemError>)>, AdminExtError> {
        const OP: &str = "DescribeTopics";
        let native: Vec<std::ffi::CString> =
            names.iter().map(|n| c_string(OP, "topic name", n)).collect::<Result<_, _>>()?;
        self.run(
            OP,
            sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            sys::RD_KAFKA_EVENT_DESCRIBETOPICS_RESULT,
            move |rk, options, queue| {
                let mut ptrs: Vec<*const c_char> = native.iter().map(|n| n.as_ptr()).collect();
                // SAFETY: librdkafka copies the names into the collection, and the request
                // copies the collection, which the guard frees when the closure returns.
                unsafe {
                    let topics = Native::new(
                        sys::rd_kafka_TopicCollection_of_topic_names(ptrs.as_mut_ptr(), ptrs.len()),
                        sys::rd_kafka_TopicCollection_destroy,
                    );
                    sys::rd_kafka_DescribeTopics(rk, topics.ptr(), options, queue)
                }
            },
            |event| {
                // SAFETY: the event is a DESCRIBETOPICS result (checked by run); everything is
                // copied before the event is freed.
                unsafe {
                    let result = sys::rd_kafka_event_DescribeTopics_result(event);
                    let mut count = 0usize;
                    let topics = sys::rd_kafka_DescribeTopics_result_topics(result, &mut count);
                    Ok((0..count).map(|i| topic_shape(*topics.add(i))).collect())
                }
            },
        )
        .await
    }

    /// ListOffsets for several partitions in one call (librdkafka asks each partition's
    /// leader once for all of its partitions): each partition's first offset (`Earliest`) or
    /// the offset after its last record (`Latest`, the high watermark). Unlike the consumer
    /// API's watermark query, it leaves no topic or partition object behind in the shared
    /// client. The partitions must be distinct.
    pub async fn list_offsets(
        &self,
        partitions: Vec<(String, i32)>,
        at: OffsetAt,
    ) -> Result<Vec<((String, i32), Result<i64, ItemError>)>, AdminExtError> {
        const OP: &str = "ListOffsets";
        let native: Vec<(std::ffi::CString, i32)> = partitions
            .iter()
            .map(|(topic, p)| Ok((c_string(OP, "topic name", topic)?, *p)))
            .collect::<Result<_, AdminExtError>>()?;
        let spec = match at {
            OffsetAt::Earliest => sys::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_EARLIEST,
            OffsetAt::Latest => sys::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_LATEST,
        } as i64;
        self.run(
            OP,
            sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTOFFSETS,
            sys::RD_KAFKA_EVENT_LISTOFFSETS_RESULT,
            move |rk, options, queue| {
                // SAFETY: librdkafka copies the names into the list and the request copies the
                // list, which the guard frees when the closure returns.
                unsafe {
                    let size = i32::try_from(native.len()).unwrap_or(i32::MAX);
                    let list = Native::new(
                        sys::rd_kafka_topic_partition_list_new(size),
                        sys::rd_kafka_topic_partition_list_destroy,
                    );
                    for (topic, partition) in &native {
                        let added = sys::rd_kafka_topic_partition_list_add(list.ptr(), topic.as_ptr(), *partition);
                        (*added).offset = spec;
                    }
                    sys::rd_kafka_ListOffsets(rk, list.ptr(), options, queue)
                }
            },
            |event| {
                // SAFETY: the event is a LISTOFFSETS result (checked by run); everything is
                // copied before the event is freed.
                unsafe {
                    let result = sys::rd_kafka_event_ListOffsets_result(event);
                    let mut count = 0usize;
                    let infos = sys::rd_kafka_ListOffsets_result_infos(result, &mut count);
                    Ok((0..count)
                        .map(|i| {
                            let partition = &*sys::rd_kafka_ListOffsetsResultInfo_topic_partition(*infos.add(i));
                            let key = (cstr(partition.topic), partition.partition);
                            if partition.err == sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                                (key, Ok(partition.offset))
                            } else {
                                let code = RDKafkaErrorCode::from(partition.err);
                                (key, Err(ItemError { code, message: code.to_string() }))
                            }
                        })
                        .collect())
                }
            },
        )
        .await
    }

    /// How many brokers the cluster reports alive (DescribeCluster).
    pub async fn live_brokers(&self) -> Result<usize, AdminExtError> {
        self.run(
            "DescribeCluster",
            sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER,
            sys::RD_KAFKA_EVENT_DESCRIBECLUSTER_RESULT,
            // SAFETY: rk/options/queue are live for this call.
            |rk, options, queue| unsafe { sys::rd_kafka_DescribeCluster(rk, options, queue) },
            |event| {
                // SAFETY: the event is a DESCRIBECLUSTER result (checked by run).
                unsafe {
                    let result = sys::rd_kafka_event_DescribeCluster_result(event);
                    let mut count = 0usize;
                    sys::rd_kafka_DescribeCluster_result_nodes(result, &mut count);
                    Ok(count)
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
                    options.ptr(),
                    millis,
                    errstr.as_mut_ptr(),
                    errstr.len(),
                );
                if err != sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    return Err(AdminExtError::InvalidArgument { op, message: cstr(errstr.as_ptr()) });
                }
                submit(rk, options.ptr(), queue.ptr());
                let wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
                let event = sys::rd_kafka_queue_poll(queue.ptr(), wait_ms);
                if event.is_null() {
                    return Err(AdminExtError::Timeout { op, timeout: wait });
                }
                let event = Native::new(event, sys::rd_kafka_event_destroy);
                let err = sys::rd_kafka_event_error(event.ptr());
                if err != sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    return Err(AdminExtError::Kafka {
                        op,
                        code: RDKafkaErrorCode::from(err),
                        message: cstr(sys::rd_kafka_event_error_string(event.ptr())),
                    });
                }
                let kind = sys::rd_kafka_event_type(event.ptr());
                if kind != expected_event {
                    return Err(AdminExtError::Task { op, message: format!("unexpected result event type {kind}") });
                }
                parse(event.ptr())
            }
        })
        .await
        .map_err(|e| AdminExtError::Task { op, message: e.to_string() })?
    }
}

/// Which offset of a partition [`AdminExt::list_offsets`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetAt {
    Earliest,
    Latest,
}

/// What DescribeTopics tells of one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicShape {
    /// The topic's id (base64, as the Kafka tools print it): a deleted and re-created topic
    /// gets a new one.
    pub id: Option<String>,
    /// Each partition's replicas and in-sync replicas (counts).
    pub partitions: Vec<(usize, usize)>,
}

/// One topic of a DescribeTopics result: its name and shape, or `None` when it does not exist.
///
/// # Safety
/// `description` must be a live topic description of a result event.
unsafe fn topic_shape(
    description: *const sys::rd_kafka_TopicDescription_t,
) -> (String, Result<Option<TopicShape>, ItemError>) {
    // SAFETY: the caller's contract; each array is read within the count librdkafka gives.
    unsafe {
        let name = cstr(sys::rd_kafka_TopicDescription_name(description));
        match item_error(sys::rd_kafka_TopicDescription_error(description)) {
            Ok(()) => {}
            Err(e) if e.code == RDKafkaErrorCode::UnknownTopicOrPartition => return (name, Ok(None)),
            Err(e) => return (name, Err(e)),
        }
        let id = sys::rd_kafka_TopicDescription_topic_id(description);
        let id = (!id.is_null()).then(|| cstr(sys::rd_kafka_Uuid_base64str(id)));
        let mut count = 0usize;
        let partitions = sys::rd_kafka_TopicDescription_partitions(description, &mut count);
        let partitions = (0..count)
            .map(|i| {
                let partition = *partitions.add(i);
                let (mut replicas, mut isr) = (0usize, 0usize);
                sys::rd_kafka_TopicPartitionInfo_replicas(partition, &mut replicas);
                sys::rd_kafka_TopicPartitionInfo_isr(partition, &mut isr);
                (replicas, isr)
            })
            .collect();
        (name, Ok(Some(TopicShape { id, partitions })))
    }
}
