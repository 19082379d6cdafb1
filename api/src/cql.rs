//! CQL text shared by the operator (DDL, grants) and the sink (its INSERT).

/// A quoted CQL identifier: case and any character kept, so a name is never read as
/// another (a team's `"Foo"` table is not `foo`) and never breaks a statement.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether a failed CQL request is worth retrying, for the operator's calls and the sink's
/// writes alike: no connection, a timeout, too few replicas, an overloaded or starting node,
/// a broken connection. A refusal of the statement or of its values (syntax, invalid,
/// unauthorized, a value that does not serialize as the column's type) is not: retrying
/// would give the same answer.
#[cfg(feature = "cql-errors")]
pub fn transient(e: &scylla::errors::ExecutionError) -> bool {
    use scylla::errors::{ExecutionError, PrepareError};
    match e {
        ExecutionError::LastAttemptError(attempt) => attempt_transient(attempt),
        ExecutionError::PrepareError(PrepareError::AllAttemptsFailed { first_attempt }) => {
            attempt_transient(first_attempt)
        }
        ExecutionError::BadQuery(_) | ExecutionError::PrepareError(PrepareError::PreparedStatementIdsMismatch) => false,
        // No connection, timeouts, empty plan, schema agreement, metadata.
        _ => true,
    }
}

#[cfg(feature = "cql-errors")]
fn attempt_transient(e: &scylla::errors::RequestAttemptError) -> bool {
    use scylla::errors::{DbError, RequestAttemptError};
    match e {
        RequestAttemptError::DbError(db, _) => matches!(
            db,
            DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::ReadTimeout { .. }
                | DbError::WriteTimeout { .. }
                | DbError::ServerError
                | DbError::TruncateError
        ),
        RequestAttemptError::SerializationError(_) | RequestAttemptError::CqlRequestSerialization(_) => false,
        _ => true,
    }
}

#[cfg(all(test, feature = "cql-errors"))]
mod tests {
    use scylla::errors::{BadQuery, DbError, ExecutionError, RequestAttemptError};

    use super::transient;

    #[test]
    fn timeouts_and_missing_replicas_are_retried_and_refusals_are_not() {
        let db = |e: DbError| ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, String::new()));
        assert!(transient(&db(DbError::Overloaded)));
        assert!(transient(&db(DbError::TruncateError)));
        assert!(transient(&ExecutionError::RequestTimeout(std::time::Duration::from_secs(1))));
        assert!(!transient(&db(DbError::Invalid)));
        assert!(!transient(&db(DbError::Unauthorized)));
        assert!(!transient(&ExecutionError::BadQuery(BadQuery::TooManyQueriesInBatchStatement(70_000))));
    }
}
