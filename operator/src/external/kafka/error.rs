//! Failed Kafka calls and the one place that classifies them: worth retrying or not, and
//! whether Kafka answered at all (only silence opens the breaker).

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::acl::{AdminExtError, ItemError};
use super::quotas::QuotaError;

/// A failed Kafka call. `transient` errors (timeouts, brokers down) are retried with backoff.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Kafka {call} failed: {message}")]
pub struct KafkaCallError {
    pub call: &'static str,
    pub message: String,
    pub transient: bool,
    /// Kafka answered (one topic/ACL of the call failed, or a coordinator or leader is
    /// moving): it is reachable, so the breaker stays closed.
    pub answered: bool,
}

impl KafkaCallError {
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// The one place that decides which Kafka errors are worth retrying: all but Kafka's
/// refusal of what was asked (an invalid or forbidden request, which only a change of the
/// spec or of the platform's settings can fix, so the object waits for that change).
///
/// Retrying is the default because a list of what is transient is never complete: brokers,
/// the controller, a group coordinator or a partition leader unreachable, moving or busy
/// answer in many ways (NOT_COORDINATOR while a fresh cluster creates `__consumer_offsets`,
/// NOT_LEADER_OR_FOLLOWER while leadership moves after a broker restart, an unknown topic
/// that was created a moment ago), and each one that was missing from the earlier list of
/// transient codes left a sink waiting for a spec change that nothing needed. The
/// operator's own login refused is retried too: no object's spec can fix it.
pub(super) fn is_transient(code: RDKafkaErrorCode) -> bool {
    !matches!(
        code,
        RDKafkaErrorCode::InvalidArgument
            | RDKafkaErrorCode::NotImplemented
            | RDKafkaErrorCode::UnsupportedFeature
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::OffsetMetadataTooLarge
            | RDKafkaErrorCode::InvalidTopic
            | RDKafkaErrorCode::InvalidRequiredAcks
            | RDKafkaErrorCode::InvalidGroupId
            | RDKafkaErrorCode::InvalidCommitOffsetSize
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::InvalidTimestamp
            | RDKafkaErrorCode::UnsupportedSASLMechanism
            | RDKafkaErrorCode::UnsupportedVersion
            | RDKafkaErrorCode::TopicAlreadyExists
            | RDKafkaErrorCode::InvalidPartitions
            | RDKafkaErrorCode::InvalidReplicationFactor
            | RDKafkaErrorCode::InvalidReplicaAssignment
            | RDKafkaErrorCode::InvalidConfig
            | RDKafkaErrorCode::InvalidRequest
            | RDKafkaErrorCode::PolicyViolation
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            | RDKafkaErrorCode::SecurityDisabled
            | RDKafkaErrorCode::DelegationTokenAuthorizationFailed
            | RDKafkaErrorCode::InvalidPrincipalType
            | RDKafkaErrorCode::TopicDeletionDisabled
            | RDKafkaErrorCode::UnsupportedCompressionType
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::DuplicateResource
            | RDKafkaErrorCode::UnacceptableCredential
            | RDKafkaErrorCode::PrincipalDeserializationFailure
    )
}

pub(super) fn call_error(call: &'static str, err: &KafkaError) -> KafkaCallError {
    // No code at all means the client itself failed (e.g. a cancelled request): retry.
    // rdkafka gives no code for a failed admin operation, though it carries one.
    let code = match err {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    let transient = code.is_none_or(is_transient);
    // NOT_COORDINATOR and the like after a broker restart are answers: only a timeout or a
    // transport failure says Kafka is unreachable (and opens the breaker for every call).
    let answered = code.is_some_and(|c| !unreachable(c));
    KafkaCallError { call, message: err.to_string(), transient, answered }
}

/// The codes librdkafka gives when no broker answered.
fn unreachable(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Resolve
    )
}

pub(super) fn code_error(call: &'static str, topic: &str, code: RDKafkaErrorCode) -> KafkaCallError {
    KafkaCallError { call, message: format!("topic {topic}: {code}"), transient: is_transient(code), answered: true }
}

/// A refused partition increase. The operator asks for more partitions only after a describe
/// showed fewer, so `InvalidPartitions` (Kafka's answer when the topic already has that many
/// or more) means that describe was stale: a broker behind the controller's metadata, or an
/// earlier increase that took effect after its call timed out. Seen on the local stack: a
/// grow 3 → 6 refused, and the Topic refused for good while Kafka had its 6. Retried, it is
/// described afresh, and what Kafka has decides.
pub(super) fn partitions_error(topic: &str, code: RDKafkaErrorCode) -> KafkaCallError {
    let mut error = code_error("CreatePartitions", topic, code);
    if code == RDKafkaErrorCode::InvalidPartitions {
        error.message.push_str(" (Kafka already has at least that many; the topic is described again)");
        error.transient = true;
    }
    error
}

pub(super) fn ext_error(call: &'static str, err: AdminExtError) -> KafkaCallError {
    let transient = match &err {
        AdminExtError::Timeout { .. } | AdminExtError::Task { .. } => true,
        AdminExtError::Kafka { code, .. } => is_transient(*code),
        AdminExtError::InvalidArgument { .. } => false,
    };
    let answered = matches!(&err, AdminExtError::Kafka { code, .. } if !unreachable(*code));
    KafkaCallError { call, message: err.to_string(), transient, answered }
}

pub(super) fn quota_error(call: &'static str, err: QuotaError) -> KafkaCallError {
    // Kafka's error codes are answers; only silence or a broken connection opens the breaker.
    let answered = matches!(err, QuotaError::Kafka { .. });
    KafkaCallError { call, message: err.to_string(), transient: err.transient(), answered }
}

/// One consumer group of a DeleteGroups call refused. A group with members (its consumers
/// still running) is retried: they are stopping, and the group empties when they leave.
pub(super) fn group_error(call: &'static str, group: &str, code: RDKafkaErrorCode) -> KafkaCallError {
    let mut message = format!("consumer group {group}: {code}");
    if code == RDKafkaErrorCode::NonEmptyGroup {
        message.push_str(" (its consumers are still connected)");
    }
    KafkaCallError { call, message, transient: is_transient(code), answered: true }
}

pub(super) fn item_failure(call: &'static str, what: &str, err: ItemError) -> KafkaCallError {
    KafkaCallError { call, message: format!("{what}: {err}"), transient: is_transient(err.code), answered: true }
}

#[cfg(test)]
mod tests {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;

    use super::{call_error, is_transient, partitions_error};

    #[test]
    fn a_coordinator_that_is_not_ready_yet_is_retried_not_reported_as_a_spec_problem() {
        for code in [
            RDKafkaErrorCode::NotCoordinator,
            RDKafkaErrorCode::CoordinatorNotAvailable,
            RDKafkaErrorCode::CoordinatorLoadInProgress,
        ] {
            assert!(is_transient(code), "{code:?}");
        }
        assert!(!is_transient(RDKafkaErrorCode::TopicAuthorizationFailed));
    }

    #[test]
    fn only_silence_opens_the_breaker_and_the_operators_refused_login_is_retried() {
        let moved = call_error("OffsetFetch", &KafkaError::MetadataFetch(RDKafkaErrorCode::NotCoordinator));
        assert!(moved.transient && moved.answered, "a coordinator moving is an answer: {moved:?}");
        let silent = call_error("Metadata", &KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown));
        assert!(silent.transient && !silent.answered, "{silent:?}");
        let login = call_error("ListGroups", &KafkaError::GroupListFetch(RDKafkaErrorCode::Authentication));
        assert!(login.transient, "no spec can fix the operator's own login: {login:?}");
        let fresh = call_error("ListOffsets", &KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition));
        assert!(fresh.transient && fresh.answered, "a topic just created is not everywhere yet: {fresh:?}");
        // Met in CI after a broker restart: it left a sink waiting for a spec change.
        let moving = call_error("ListOffsets", &KafkaError::MetadataFetch(RDKafkaErrorCode::NotLeaderForPartition));
        assert!(moving.transient && moving.answered, "a leader moving is retried: {moving:?}");
        // rdkafka gives admin-op errors no code; one answer that cannot be parsed must not
        // shut every tenant out of Kafka (seen: a DescribeConfigs naming a topic twice).
        let garbled = call_error("DescribeConfigs", &KafkaError::AdminOp(RDKafkaErrorCode::BadMessage));
        assert!(garbled.answered, "{garbled:?}");
        let timed_out = call_error("CreateTopics", &KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut));
        assert!(timed_out.transient && !timed_out.answered, "{timed_out:?}");
        let stale = partitions_error("t.a", RDKafkaErrorCode::InvalidPartitions);
        assert!(stale.transient && stale.answered && stale.message.contains("described again"), "{stale:?}");
        let refused = partitions_error("t.a", RDKafkaErrorCode::PolicyViolation);
        assert!(!refused.transient, "{refused:?}");
        for refused in [
            RDKafkaErrorCode::InvalidPartitions,
            RDKafkaErrorCode::InvalidReplicationFactor,
            RDKafkaErrorCode::InvalidConfig,
            RDKafkaErrorCode::PolicyViolation,
            RDKafkaErrorCode::ClusterAuthorizationFailed,
        ] {
            assert!(!is_transient(refused), "{refused:?} is Kafka's answer to the spec");
        }
    }
}
