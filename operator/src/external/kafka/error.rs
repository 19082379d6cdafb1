//! Failed Kafka calls and the one place that classifies them: worth retrying or not, and
//! whether Kafka answered at all (only silence opens the breaker).

use kafka_protocol::error::ResponseError;

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

/// The one place that decides which Kafka error codes are worth retrying: all but Kafka's
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
pub fn is_transient(code: i16) -> bool {
    use ResponseError::*;
    !matches!(
        ResponseError::try_from_code(code),
        Some(
            CorruptMessage
                | MessageTooLarge
                | OffsetMetadataTooLarge
                | InvalidTopicException
                | InvalidRequiredAcks
                | InvalidGroupId
                | InvalidCommitOffsetSize
                | TopicAuthorizationFailed
                | GroupAuthorizationFailed
                | ClusterAuthorizationFailed
                | InvalidTimestamp
                | UnsupportedSaslMechanism
                | UnsupportedVersion
                | TopicAlreadyExists
                | InvalidPartitions
                | InvalidReplicationFactor
                | InvalidReplicaAssignment
                | InvalidConfig
                | InvalidRequest
                | UnsupportedForMessageFormat
                | PolicyViolation
                | TransactionalIdAuthorizationFailed
                | SecurityDisabled
                | DelegationTokenAuthorizationFailed
                | InvalidPrincipalType
                | TopicDeletionDisabled
                | UnsupportedCompressionType
                | InvalidRecord
                | DuplicateResource
                | UnacceptableCredential
                | PrincipalDeserializationFailure
        )
    )
}

/// The codes with which a broker says it could not get an answer itself (the controller or
/// a leader did not answer it in time): as good as silence for the breaker.
fn unanswered(code: i16) -> bool {
    matches!(ResponseError::try_from_code(code), Some(ResponseError::RequestTimedOut))
}

/// Kafka refused `what` (a topic, a user, an ACL, a group) of `call` with `code`.
pub fn answer_error(call: &'static str, what: &str, code: i16, message: Option<String>) -> KafkaCallError {
    let name = ResponseError::try_from_code(code).map_or_else(|| "NONE".to_string(), |e| format!("{e:?}"));
    let message = match message.filter(|m| !m.is_empty()) {
        Some(detail) => format!("{what}: {name} ({detail})"),
        None => format!("{what}: {name}"),
    };
    KafkaCallError { call, message, transient: is_transient(code), answered: !unanswered(code) }
}

/// A refused partition increase. The operator asks for more partitions only after a describe
/// showed fewer, so `InvalidPartitions` (Kafka's answer when the topic already has that many
/// or more) means that describe was stale: a broker behind the controller's metadata, or an
/// earlier increase that took effect after its call timed out. Seen on the local stack: a
/// grow 3 → 6 refused, and the Topic refused for good while Kafka had its 6. Retried, it is
/// described afresh, and what Kafka has decides.
pub fn partitions_error(topic: &str, code: i16, message: Option<String>) -> KafkaCallError {
    let mut error = answer_error("CreatePartitions", &format!("topic {topic}"), code, message);
    if ResponseError::try_from_code(code) == Some(ResponseError::InvalidPartitions) {
        error.message.push_str(" (Kafka already has at least that many; the topic is described again)");
        error.transient = true;
    }
    error
}

/// One consumer group of a call refused. A group with members (its consumers still
/// running) is retried: they are stopping, and the group empties when they leave.
pub fn group_error(call: &'static str, group: &str, code: i16) -> KafkaCallError {
    let mut error = answer_error(call, &format!("consumer group {group}"), code, None);
    if ResponseError::try_from_code(code) == Some(ResponseError::NonEmptyGroup) {
        error.message.push_str(" (its consumers are still connected)");
    }
    error
}

/// The operator is shutting down: a batched call's worker is gone.
pub fn shut_down(call: &'static str) -> KafkaCallError {
    KafkaCallError { call, message: "the operator is shutting down".into(), transient: true, answered: false }
}

/// Kafka's answer left out something it was asked about.
pub fn no_answer(call: &'static str, what: &str) -> KafkaCallError {
    KafkaCallError { call, message: format!("no answer for {what}"), transient: true, answered: true }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::error::ResponseError::*;

    use super::{answer_error, is_transient, partitions_error};

    #[test]
    fn a_coordinator_that_is_not_ready_yet_is_retried_not_reported_as_a_spec_problem() {
        for code in [NotCoordinator, CoordinatorNotAvailable, CoordinatorLoadInProgress] {
            assert!(is_transient(code.code()), "{code:?}");
        }
        assert!(!is_transient(TopicAuthorizationFailed.code()));
    }

    #[test]
    fn kafkas_answers_keep_the_breaker_closed_and_the_operators_refused_login_is_retried() {
        let moved = answer_error("OffsetFetch", "group g", NotCoordinator.code(), None);
        assert!(moved.transient && moved.answered, "a coordinator moving is an answer: {moved:?}");
        let login = answer_error("SaslAuthenticate", "admin", SaslAuthenticationFailed.code(), None);
        assert!(login.transient, "no spec can fix the operator's own login: {login:?}");
        let fresh = answer_error("ListOffsets", "topic t", UnknownTopicOrPartition.code(), None);
        assert!(fresh.transient && fresh.answered, "a topic just created is not everywhere yet: {fresh:?}");
        // Met in CI after a broker restart: it left a sink waiting for a spec change.
        let moving = answer_error("ListOffsets", "topic t", NotLeaderOrFollower.code(), None);
        assert!(moving.transient && moving.answered, "a leader moving is retried: {moving:?}");
        // NOT_CONTROLLER on a quota change was once a refusal that waited for a spec change.
        let controller = answer_error("AlterClientQuotas", "user u", NotController.code(), None);
        assert!(controller.transient, "{controller:?}");
        let timed_out = answer_error("CreateTopics", "topic t", RequestTimedOut.code(), Some("controller".into()));
        assert!(timed_out.transient && !timed_out.answered, "{timed_out:?}");
        assert!(timed_out.message.contains("RequestTimedOut (controller)"), "{timed_out:?}");
        let stale = partitions_error("t.a", InvalidPartitions.code(), None);
        assert!(stale.transient && stale.answered && stale.message.contains("described again"), "{stale:?}");
        let refused = partitions_error("t.a", PolicyViolation.code(), None);
        assert!(!refused.transient, "{refused:?}");
        for refused in
            [InvalidPartitions, InvalidReplicationFactor, InvalidConfig, PolicyViolation, ClusterAuthorizationFailed]
        {
            assert!(!is_transient(refused.code()), "{refused:?} is Kafka's answer to the spec");
        }
    }
}
