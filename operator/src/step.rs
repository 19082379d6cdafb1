//! How a reconcile's steps stop short, in one type: a step returns `Step<T>` and `?` carries
//! a halt to the reconcile, which turns it into the object's Ready condition and what the
//! controller does next in one place ([`Halt::settle`]). No step returns a `Result` inside a
//! `Result`.

use kube::runtime::controller::Action;

use crate::api::conditions::DesiredCondition;
use crate::error::Error;
use crate::external::ExternalFailure;
use crate::external::cassandra::CassandraCallError;
use crate::external::kafka::KafkaCallError;

/// Why a reconcile stopped before its object was Ready.
#[derive(Debug)]
pub enum Halt {
    /// Not ready for a reason the condition tells (a missing Topic, a conflict), and when to
    /// look again.
    Wait(DesiredCondition, Action),
    /// Kafka or Cassandra failed or refused.
    External(ExternalFailure),
    /// A Kubernetes call failed: retried with backoff, the status left as it was.
    Api(Error),
}

pub type Step<T> = std::result::Result<T, Halt>;

impl From<KafkaCallError> for Halt {
    fn from(e: KafkaCallError) -> Self {
        Halt::External(e.into())
    }
}

impl From<CassandraCallError> for Halt {
    fn from(e: CassandraCallError) -> Self {
        Halt::External(e.into())
    }
}

impl From<ExternalFailure> for Halt {
    fn from(e: ExternalFailure) -> Self {
        Halt::External(e)
    }
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Halt::Api(e)
    }
}

impl From<kube::Error> for Halt {
    fn from(e: kube::Error) -> Self {
        Halt::Api(e.into())
    }
}

/// What a halted reconcile publishes and returns: its Ready condition, its next look, and
/// the error that makes the controller retry with backoff (a transient external failure).
pub struct Settled {
    pub ready: DesiredCondition,
    pub action: Action,
    pub retry: Option<Error>,
}

impl Halt {
    /// The condition and next step of a halt of `kind`'s reconcile; `Err` for a Kubernetes
    /// failure, which publishes nothing.
    pub fn settle(self, kind: &str) -> Result<Settled, Error> {
        match self {
            Halt::Wait(ready, action) => Ok(Settled { ready, action, retry: None }),
            Halt::External(failure) => {
                let (ready, retry) = failure.outcome(kind);
                Ok(Settled { ready, action: Action::await_change(), retry })
            }
            Halt::Api(e) => Err(e),
        }
    }
}
