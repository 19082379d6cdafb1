//! The sink's write path: a record's row into Cassandra with its write timestamp, or the
//! record into the dead-letter topic, and nothing returns before one of the two is
//! acknowledged.
//!
//! - Rows of one Cassandra partition go as one unlogged batch, retried while the error is
//!   transient; when Cassandra refuses the batch, each row on its own, so only a bad row is
//!   dead-lettered.
//! - A row Cassandra refuses [`REFUSALS_BEFORE_DLQ`] times for a non-transient reason, and a
//!   record that cannot be mapped, go to the dead-letter topic with headers naming the error
//!   and where the record came from.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use scylla::client::session::Session;
use scylla::errors::ExecutionError;
use scylla::statement::Consistency as CqlConsistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, MaybeUnset};
use tributary_api::contract::SinkConfig;
use tributary_api::sink::Consistency;

use crate::mapping::Mapping;
use crate::metrics::SinkMetrics;
use crate::offsets::Outcome;

/// Header names on dead-lettered records.
pub const DLQ_ERROR: &str = "tributary.error";
pub const DLQ_TOPIC: &str = "tributary.original.topic";
pub const DLQ_PARTITION: &str = "tributary.original.partition";
pub const DLQ_OFFSET: &str = "tributary.original.offset";
/// On a dead letter sent without its payload (more than the dead-letter topic takes): why.
pub const DLQ_PAYLOAD_DROPPED: &str = "tributary.payload.dropped";

/// Rows of one partition per unlogged batch (well under Cassandra's batch size warning).
pub(crate) const MAX_BATCH: usize = 16;

/// What the dead-letter producer sends at most (Kafka's own limit is the topic's).
pub(crate) const DLQ_MAX_MESSAGE_BYTES: u32 = 256 << 20;

pub const REFUSALS_BEFORE_DLQ: u32 = 3;

pub(crate) struct Record {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Vec<u8>,
    /// Copied only when a column maps a header (empty otherwise).
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    /// The Kafka timestamp, epoch milliseconds.
    pub(crate) timestamp: Option<i64>,
}

impl Record {
    /// What a mapping reads besides the value.
    pub(crate) fn meta(&self) -> crate::mapping::RecordMeta<'_> {
        crate::mapping::RecordMeta {
            key: self.key.as_deref(),
            headers: &self.headers,
            timestamp: self.timestamp,
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// A record and its row (or why it has none), with its write timestamp.
pub(crate) struct Item {
    pub(crate) record: Record,
    pub(crate) row: Result<Row, String>,
    pub(crate) write_time: Option<CqlValue>,
}

pub(crate) type Row = Vec<crate::mapping::Cell>;

pub(crate) fn chunked<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some(last) if last.len() < size => last.push(item),
            _ => out.push(vec![item]),
        }
    }
    out
}

/// A row's values as the INSERT binds them (absent fields unset: the column is left alone),
/// then its write timestamp when the INSERT has one.
fn bound<'a>(row: &'a Row, write_time: Option<&'a CqlValue>) -> Vec<MaybeUnset<Option<&'a CqlValue>>> {
    let mut values: Vec<_> = row.iter().map(crate::mapping::Cell::bind).collect();
    values.extend(write_time.map(|t| MaybeUnset::Set(Some(t))));
    values
}

/// The INSERT for the mapped columns, with the spec's TTL and consistency.
pub(crate) async fn prepare(
    session: &Session,
    config: &SinkConfig,
    mapping: &Mapping,
) -> Result<PreparedStatement, String> {
    use tributary_api::cql::ident;
    let columns: Vec<String> = mapping.column_names().iter().map(|c| ident(c)).collect();
    let markers = vec!["?"; columns.len()].join(", ");
    let (keyspace, table) = (ident(&config.keyspace), ident(&config.spec.table));
    let mut cql = format!("INSERT INTO {keyspace}.{table} ({}) VALUES ({markers})", columns.join(", "));
    let using: Vec<String> = [
        config.spec.ttl_seconds.map(|ttl| format!("TTL {ttl}")),
        config.write_time.as_ref().map(|_| "TIMESTAMP ?".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !using.is_empty() {
        cql.push_str(&format!(" USING {}", using.join(" AND ")));
    }
    let mut prepared = session.prepare(cql.clone()).await.map_err(|e| format!("cannot prepare {cql:?}: {e}"))?;
    prepared.set_consistency(consistency(config.spec.consistency));
    Ok(prepared)
}

fn consistency(c: Consistency) -> CqlConsistency {
    match c {
        Consistency::Any => CqlConsistency::Any,
        Consistency::One => CqlConsistency::One,
        Consistency::Two => CqlConsistency::Two,
        Consistency::Three => CqlConsistency::Three,
        Consistency::Quorum => CqlConsistency::Quorum,
        Consistency::All => CqlConsistency::All,
        Consistency::LocalQuorum => CqlConsistency::LocalQuorum,
        Consistency::EachQuorum => CqlConsistency::EachQuorum,
        Consistency::LocalOne => CqlConsistency::LocalOne,
    }
}

/// Backoff of a retried write: from 100 ms, doubling up to `max`, for as long as it takes
/// (a record is never dropped).
fn until_done(max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default().with_min_delay(Duration::from_millis(100)).with_max_delay(max).without_max_times()
}

/// The longest wait between two tries of a Cassandra write, and of a dead-letter write.
const CASSANDRA_MAX_BACKOFF: Duration = Duration::from_secs(5);
const KAFKA_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Writes rows of one partition: one unlogged batch when there are several (retried while
/// the error is transient); when Cassandra refuses the batch, each row on its own, so only a
/// bad row is dead-lettered. Returns when every record is written or dead-lettered, with
/// what became of each, in order.
pub(crate) async fn deliver_all(
    session: &Session,
    insert: &PreparedStatement,
    dlq: &FutureProducer,
    dlq_topic: &str,
    metrics: &SinkMetrics,
    items: &[Item],
) -> Vec<Outcome> {
    let rows: Vec<_> = items.iter().filter_map(|i| Some(bound(i.row.as_ref().ok()?, i.write_time.as_ref()))).collect();
    if items.len() > 1 && rows.len() == items.len() {
        let mut batch = Batch::new(BatchType::Unlogged);
        for _ in &rows {
            batch.append_statement(insert.clone());
        }
        batch.set_consistency(insert.get_consistency().unwrap_or(CqlConsistency::LocalQuorum));
        let written = (|| async {
            let started = Instant::now();
            let done = session.batch(&batch, &rows).await?;
            metrics.write_seconds.observe(started.elapsed().as_secs_f64());
            Ok::<_, ExecutionError>(done)
        })
        .retry(until_done(CASSANDRA_MAX_BACKOFF))
        .when(tributary_api::cql::transient)
        .notify(|e, _| {
            metrics.retries.inc();
            metrics.error(format!("Cassandra write failed, retrying: {e}"));
        })
        .await;
        match written {
            Ok(_) => {
                metrics.batch_rows.observe(rows.len() as f64);
                metrics.written.inc_by(rows.len() as u64);
                return vec![Outcome::Written; items.len()];
            }
            Err(e) => tracing::debug!(error = %e, "batch refused; writing its rows one by one"),
        }
    }
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        outcomes.push(deliver(session, insert, dlq, dlq_topic, metrics, item).await);
    }
    outcomes
}

/// Writes one record, or dead-letters it; returns only when one of the two is acknowledged.
/// Transient errors are retried for as long as it takes, refusals [`REFUSALS_BEFORE_DLQ`] times.
async fn deliver(
    session: &Session,
    insert: &PreparedStatement,
    dlq: &FutureProducer,
    dlq_topic: &str,
    metrics: &SinkMetrics,
    item: &Item,
) -> Outcome {
    let record = &item.record;
    let row = match &item.row {
        Ok(row) => row,
        Err(e) => {
            dead_letter(dlq, dlq_topic, metrics, record, e).await;
            return Outcome::DeadLettered;
        }
    };
    let refusals = AtomicU32::new(0);
    let written = (|| async {
        let started = Instant::now();
        let done = session.execute_unpaged(insert, bound(row, item.write_time.as_ref())).await?;
        metrics.write_seconds.observe(started.elapsed().as_secs_f64());
        Ok::<_, ExecutionError>(done)
    })
    .retry(until_done(CASSANDRA_MAX_BACKOFF))
    .when(|e| tributary_api::cql::transient(e) || refusals.fetch_add(1, Ordering::Relaxed) + 1 < REFUSALS_BEFORE_DLQ)
    .notify(|e, _| {
        metrics.retries.inc();
        let refused = refusals.load(Ordering::Relaxed);
        if refused == 0 {
            metrics.error(format!("Cassandra write failed, retrying: {e}"));
        } else {
            metrics.error(format!("Cassandra refused the row ({refused} of {REFUSALS_BEFORE_DLQ} tries): {e}"));
        }
    })
    .await;
    match written {
        Ok(_) => {
            metrics.batch_rows.observe(1.0);
            metrics.written.inc();
            Outcome::Written
        }
        Err(e) => {
            dead_letter(dlq, dlq_topic, metrics, record, &format!("Cassandra refused the row: {e}")).await;
            Outcome::DeadLettered
        }
    }
}

/// Sends the record to the dead-letter topic, retrying until Kafka acknowledges it: a
/// record is never dropped. One that Kafka finds too large goes without its payload, with
/// [`DLQ_PAYLOAD_DROPPED`] saying so (the headers still say where it is in its topic).
async fn dead_letter(dlq: &FutureProducer, topic: &str, metrics: &SinkMetrics, record: &Record, error: &str) {
    let partition = record.partition.to_string();
    let offset = record.offset.to_string();
    let mut dropped: Option<String> = None;
    let mut delays = until_done(KAFKA_MAX_BACKOFF).build();
    loop {
        let mut headers = OwnedHeaders::new()
            .insert(Header { key: DLQ_ERROR, value: Some(error) })
            .insert(Header { key: DLQ_TOPIC, value: Some(&record.topic) })
            .insert(Header { key: DLQ_PARTITION, value: Some(&partition) })
            .insert(Header { key: DLQ_OFFSET, value: Some(&offset) });
        if let Some(why) = &dropped {
            headers = headers.insert(Header { key: DLQ_PAYLOAD_DROPPED, value: Some(why) });
        }
        let payload: &[u8] = if dropped.is_some() { &[] } else { &record.payload };
        let mut out = FutureRecord::to(topic).payload(payload).headers(headers);
        if let Some(key) = &record.key {
            out = out.key(key);
        }
        match dlq.send(out, Duration::from_secs(30)).await {
            Ok(_) => {
                metrics.dead_lettered.inc();
                metrics.error(format!(
                    "record {}/{}@{} dead-lettered to {topic}: {error}",
                    record.topic, record.partition, record.offset
                ));
                tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, %error, "record dead-lettered");
                return;
            }
            Err((e, _))
                if dropped.is_none() && e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) =>
            {
                dropped = Some(format!("{} bytes, more than {topic} takes: {e}", record.payload.len()));
            }
            Err((e, _)) => {
                metrics.error(format!("dead-letter write to {topic} failed, retrying: {e}"));
                tracing::warn!(error = %e, "dead-letter write failed; retrying");
                tokio::time::sleep(delays.next().unwrap_or(KAFKA_MAX_BACKOFF)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_cut_into_batches_of_at_most_the_limit_in_order() {
        assert_eq!(chunked((1..=5).collect(), 2), vec![vec![1, 2], vec![3, 4], vec![5]]);
        assert_eq!(chunked(Vec::<i32>::new(), 2), Vec::<Vec<i32>>::new());
    }
}
