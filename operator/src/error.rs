//! The error of a reconcile, shared by the controllers and what they call.

/// Errors of a reconcile, classified: permanent ones wait for a change of the object,
/// transient ones are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Kafka(String),
    #[error("{0}")]
    Cassandra(String),
    #[error("the object is missing {0}; it was probably deleted while being reconciled")]
    Missing(&'static str),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// A fixed string for metric labels and event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Kafka(_) => "kafka",
            Error::Cassandra(_) => "cassandra",
            Error::Missing(_) => "missing",
            Error::Finalizer(_) => "finalizer",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    /// The reconcile's own error when apply or cleanup failed; otherwise the finalizer's.
    fn from(e: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match e {
            F::ApplyFailed(e) | F::CleanupFailed(e) => e,
            other => Error::Finalizer(other.to_string()),
        }
    }
}
