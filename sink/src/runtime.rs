//! The sink process (`tributary-sink`): consumes one topic in its own consumer group and
//! writes every record into one Cassandra table, never losing one.
//!
//! - Offsets are stored (`enable.auto.offset.store=false`) only up to the lowest record of
//!   a partition whose write Cassandra has not acknowledged yet, and committed by
//!   librdkafka on its timer, on revoke and on shutdown. A crash re-reads from there; rows
//!   are upserts by primary key, so a re-read record overwrites itself.
//! - Writes are prepared statements, at most `maxInFlight` at once; when they stall
//!   (Cassandra down) the loop stops polling, which pauses consumption.
//! - Transient Cassandra errors are retried with backoff, for as long as it takes. A record
//!   that cannot be mapped, or that Cassandra refuses three times for a non-transient reason,
//!   goes to the dead-letter topic with headers naming the error and where it came from; its
//!   offset counts as done only once the dead-letter write is acknowledged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Consistency as CqlConsistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, MaybeUnset};
use tokio::sync::Semaphore;

use crate::health::Health;
use crate::mapping::Mapping;
use tributary_api::contract::{SASL_MECHANISM, SinkConfig};
use tributary_api::sink::Consistency;

/// Header names on dead-lettered records.
pub const DLQ_ERROR: &str = "tributary.error";
pub const DLQ_TOPIC: &str = "tributary.original.topic";
pub const DLQ_PARTITION: &str = "tributary.original.partition";
pub const DLQ_OFFSET: &str = "tributary.original.offset";

/// Credentials, from the environment the Deployment sets from Secrets.
pub struct SinkSecrets {
    pub kafka_username: String,
    pub kafka_password: String,
    pub cassandra_username: String,
    pub cassandra_password: String,
}

impl SinkSecrets {
    pub fn from_env() -> Result<Self, String> {
        let var =
            |n: &str| std::env::var(n).map_err(|_| format!("{n} is not set (the Deployment sets it from a Secret)"));
        Ok(SinkSecrets {
            kafka_username: var("KAFKA_USERNAME")?,
            kafka_password: var("KAFKA_PASSWORD")?,
            cassandra_username: var("CASSANDRA_USERNAME")?,
            cassandra_password: var("CASSANDRA_PASSWORD")?,
        })
    }
}

/// The sink's metrics, on its `/metrics`.
pub struct SinkMetrics {
    registry: Registry,
    pub records_in: Counter,
    pub written: Counter,
    pub dead_lettered: Counter,
    pub retries: Counter,
    pub in_flight: Gauge,
    pub lag: Gauge,
    pub write_seconds: Histogram,
    pub batch_rows: Histogram,
}

impl Default for SinkMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tributary_sink");
        let m = SinkMetrics {
            registry: Registry::default(),
            records_in: Counter::default(),
            written: Counter::default(),
            dead_lettered: Counter::default(),
            retries: Counter::default(),
            in_flight: Gauge::default(),
            lag: Gauge::default(),
            write_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            batch_rows: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0]),
        };
        registry.register("records_in", "Records consumed from Kafka", m.records_in.clone());
        registry.register("records_written", "Records acknowledged by Cassandra", m.written.clone());
        registry.register("records_dead_lettered", "Records sent to the dead-letter topic", m.dead_lettered.clone());
        registry.register("write_retries", "Cassandra writes retried", m.retries.clone());
        registry.register("writes_in_flight", "Cassandra writes not yet acknowledged", m.in_flight.clone());
        registry.register("lag", "Records in the assigned partitions not yet committed", m.lag.clone());
        registry.register("write_duration_seconds", "Cassandra write latency", m.write_seconds.clone());
        registry.register("batch_rows", "Rows per Cassandra write (one partition per batch)", m.batch_rows.clone());
        SinkMetrics { registry, ..m }
    }
}

impl SinkMetrics {
    /// Records read, written, retried and dead-lettered so far: any change is activity.
    pub fn activity(&self) -> u64 {
        self.records_in.get() + self.written.get() + self.retries.get() + self.dead_lettered.get()
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encoding metrics");
        out
    }
}

/// Per partition: offsets read but not yet done, and the highest offset read. The offset to
/// commit is the lowest pending one, or one past the highest when none is pending.
#[derive(Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionState>,
}

struct PartitionState {
    pending: BTreeSet<i64>,
    next: i64,
    stored: i64,
}

impl OffsetTracker {
    pub fn begin(&mut self, partition: i32, offset: i64) {
        // A partition starts where its first record is: that is already its commit point.
        let state = self.partitions.entry(partition).or_insert_with(|| PartitionState {
            pending: BTreeSet::new(),
            next: offset,
            stored: offset,
        });
        state.pending.insert(offset);
        state.next = state.next.max(offset + 1);
    }

    /// Marks a record done; returns the offset to store when the commit point moved.
    pub fn done(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let state = self.partitions.get_mut(&partition)?;
        if !state.pending.remove(&offset) {
            return None; // revoked meanwhile: not ours to store any more
        }
        let commit = state.pending.first().copied().unwrap_or(state.next);
        (commit > state.stored).then(|| {
            state.stored = commit;
            commit
        })
    }

    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }
}

struct SinkContext {
    tracker: Arc<Mutex<OffsetTracker>>,
    sink: String,
}

impl ClientContext for SinkContext {}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            // Everything stored is acknowledged by Cassandra: commit it before the partitions
            // move, and stop storing for them (the new owner resumes from the commit).
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(sink = %self.sink, error = %e, "commit on revoke (nothing to commit is fine)");
            }
            let mut tracker = self.tracker.lock().expect("tracker lock");
            for p in partitions.elements() {
                tracker.forget(p.partition());
            }
            tracing::info!(sink = %self.sink, revoked = partitions.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            tracing::info!(sink = %self.sink, assigned = partitions.count(), "partitions assigned");
        }
    }
}

/// Runs the sink until SIGTERM/SIGINT.
pub async fn run(config: SinkConfig, secrets: SinkSecrets, http: SocketAddr) -> Result<(), String> {
    let mapping = Arc::new(Mapping::new(&config.spec)?);
    let metrics = Arc::new(SinkMetrics::default());
    let health = Arc::new(Health::new(STALL, Instant::now()));
    tokio::spawn(serve(http, metrics.clone(), health.clone()));

    let session = SessionBuilder::new()
        .known_nodes(&config.contact_points)
        .user(&secrets.cassandra_username, &secrets.cassandra_password)
        .build()
        .await
        .map_err(|e| format!("cannot connect to Cassandra {:?}: {e}", config.contact_points))?;
    let session = Arc::new(session);
    let insert = Arc::new(prepare(&session, &config, &mapping).await?);

    let kafka = |c: &mut ClientConfig| {
        c.set("bootstrap.servers", &config.bootstrap_servers)
            .set("security.protocol", &config.security_protocol)
            .set("sasl.mechanism", SASL_MECHANISM)
            .set("sasl.username", &secrets.kafka_username)
            .set("sasl.password", &secrets.kafka_password);
    };
    let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
    let mut consumer_config = ClientConfig::new();
    kafka(&mut consumer_config);
    consumer_config
        .set("group.id", &config.group)
        .set("client.id", format!("tributary-sink-{}", config.sink.replace('/', ".")))
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", config.commit_interval_ms.to_string())
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky");
    let consumer: Arc<StreamConsumer<SinkContext>> = Arc::new(
        consumer_config
            .create_with_context(SinkContext { tracker: tracker.clone(), sink: config.sink.clone() })
            .map_err(|e| format!("cannot create the consumer: {e}"))?,
    );
    consumer.subscribe(&[&config.topic]).map_err(|e| format!("cannot subscribe to {}: {e}", config.topic))?;

    let mut producer_config = ClientConfig::new();
    kafka(&mut producer_config);
    producer_config.set("acks", "all").set("enable.idempotence", "true").set("linger.ms", "5");
    let dlq: Arc<FutureProducer> =
        Arc::new(producer_config.create().map_err(|e| format!("cannot create the dead-letter producer: {e}"))?);

    let permits = Arc::new(Semaphore::new(config.max_in_flight));
    let shutdown = tributary_api::signal::shutdown_signal();
    tokio::pin!(shutdown);
    let lag_timer = tokio::time::interval(Duration::from_secs(5));
    tokio::pin!(lag_timer);
    health.consuming();
    tracing::info!(sink = %config.sink, topic = %config.topic, group = %config.group, "sink started");
    loop {
        let message = tokio::select! {
            _ = &mut shutdown => break,
            _ = lag_timer.tick() => {
                health.observe(Instant::now(), metrics.activity(), metrics.in_flight.get());
                update_lag(consumer.clone(), metrics.clone(), health.clone());
                continue;
            }
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                // Broker transport errors while a broker restarts: librdkafka recovers by itself.
                tracing::debug!(sink = %config.sink, error = %e, "consumer error");
                continue;
            }
        };
        // Take what else is already fetched (without waiting), up to a burst, and write rows
        // of one Cassandra partition together in one unlogged batch.
        let mut burst = vec![record_of(&message)];
        drop(message);
        while burst.len() < MAX_BURST {
            match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
                Ok(Ok(m)) => burst.push(record_of(&m)),
                _ => break,
            }
        }
        metrics.records_in.inc_by(burst.len() as u64);
        let mut groups: BTreeMap<(i32, String), Vec<Item>> = BTreeMap::new();
        {
            let mut tracker = tracker.lock().expect("tracker lock");
            for record in burst {
                tracker.begin(record.partition, record.offset);
                let row = mapping.row(&record.payload);
                // Unmappable records go alone (to the dead-letter topic).
                let group = match &row {
                    Ok(r) => mapping.partition_of(r),
                    Err(_) => format!("unmappable {}", record.offset),
                };
                let write_time =
                    config.write_time.as_ref().map(|w| CqlValue::BigInt(w.base.saturating_add(record.offset)));
                groups.entry((record.partition, group)).or_default().push(Item { record, row, write_time });
            }
        }
        for (_, items) in groups {
            for chunk in chunked(items, MAX_BATCH) {
                // Back-pressure: when writes stall, this waits and the loop stops polling.
                let n = u32::try_from(chunk.len()).expect("chunks are small");
                let permit = permits.clone().acquire_many_owned(n).await.expect("semaphore never closes");
                metrics.in_flight.inc_by(i64::from(n));
                let (session, insert, dlq, metrics, tracker, consumer, dlq_topic) = (
                    session.clone(),
                    insert.clone(),
                    dlq.clone(),
                    metrics.clone(),
                    tracker.clone(),
                    consumer.clone(),
                    config.dead_letter_topic.clone(),
                );
                tokio::spawn(async move {
                    deliver_all(&session, &insert, &dlq, &dlq_topic, &metrics, &chunk).await;
                    for item in &chunk {
                        let store =
                            tracker.lock().expect("tracker lock").done(item.record.partition, item.record.offset);
                        if let Some(next) = store {
                            let mut list = TopicPartitionList::new();
                            let _ = list.add_partition_offset(
                                &item.record.topic,
                                item.record.partition,
                                Offset::Offset(next),
                            );
                            if let Err(e) = consumer.store_offsets(&list) {
                                tracing::debug!(error = %e, "offset not stored (partition revoked)");
                            }
                        }
                    }
                    metrics.in_flight.dec_by(i64::from(n));
                    drop(permit);
                });
            }
        }
    }

    tracing::info!(sink = %config.sink, "stopping: waiting for the writes in flight");
    let all = u32::try_from(config.max_in_flight).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(Duration::from_secs(30), permits.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!(sink = %config.sink, "writes still in flight after 30 s; their records will be read again");
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::warn!(sink = %config.sink, error = %e, "final commit failed; the records since the last commit will be read again");
    }
    consumer.unsubscribe();
    tracing::info!(sink = %config.sink, "stopped");
    Ok(())
}

/// A sink with work that reads, writes and retries nothing for this long is stuck (longer
/// than a Cassandra request's timeout, after which a stalled write is retried).
const STALL: Duration = Duration::from_secs(120);
/// Records taken from the consumer's queue at once (only what is already fetched).
const MAX_BURST: usize = 512;
/// Rows of one partition per unlogged batch (well under Cassandra's batch size warning).
const MAX_BATCH: usize = 16;

fn record_of(message: &rdkafka::message::BorrowedMessage<'_>) -> Record {
    Record {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
    }
}

fn chunked<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some(last) if last.len() < size => last.push(item),
            _ => out.push(vec![item]),
        }
    }
    out
}

type Row = Vec<crate::mapping::Cell>;

/// A row's values as the INSERT binds them (absent fields unset: the column is left alone),
/// then its write timestamp when the INSERT has one.
fn bound<'a>(row: &'a Row, write_time: Option<&'a CqlValue>) -> Vec<MaybeUnset<Option<&'a CqlValue>>> {
    let mut values: Vec<_> = row.iter().map(crate::mapping::Cell::bind).collect();
    values.extend(write_time.map(|t| MaybeUnset::Set(Some(t))));
    values
}

/// A record and its row (or why it has none), with its write timestamp.
struct Item {
    record: Record,
    row: Result<Row, String>,
    write_time: Option<CqlValue>,
}

struct Record {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

/// The INSERT for the mapped columns, with the spec's TTL and consistency.
async fn prepare(session: &Session, config: &SinkConfig, mapping: &Mapping) -> Result<PreparedStatement, String> {
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

const REFUSALS_BEFORE_DLQ: u32 = 3;

/// Writes rows of one partition: one unlogged batch when there are several (retried while
/// the error is transient); when Cassandra refuses the batch, each row on its own, so only a
/// bad row is dead-lettered. Returns when every record is written or dead-lettered.
async fn deliver_all(
    session: &Session,
    insert: &PreparedStatement,
    dlq: &FutureProducer,
    dlq_topic: &str,
    metrics: &SinkMetrics,
    items: &[Item],
) {
    let rows: Vec<_> = items.iter().filter_map(|i| Some(bound(i.row.as_ref().ok()?, i.write_time.as_ref()))).collect();
    if items.len() > 1 && rows.len() == items.len() {
        let mut batch = Batch::new(BatchType::Unlogged);
        for _ in &rows {
            batch.append_statement(insert.clone());
        }
        batch.set_consistency(insert.get_consistency().unwrap_or(CqlConsistency::LocalQuorum));
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            match session.batch(&batch, &rows).await {
                Ok(_) => {
                    metrics.write_seconds.observe(started.elapsed().as_secs_f64());
                    metrics.batch_rows.observe(rows.len() as f64);
                    metrics.written.inc_by(rows.len() as u64);
                    return;
                }
                Err(e) if tributary_api::cql::transient(&e) => {
                    metrics.retries.inc();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "batch refused; writing its rows one by one");
                    break;
                }
            }
        }
    }
    for item in items {
        deliver(session, insert, dlq, dlq_topic, metrics, item).await;
    }
}

/// Writes one record, or dead-letters it; returns only when one of the two is acknowledged.
async fn deliver(
    session: &Session,
    insert: &PreparedStatement,
    dlq: &FutureProducer,
    dlq_topic: &str,
    metrics: &SinkMetrics,
    item: &Item,
) {
    let record = &item.record;
    let row = match &item.row {
        Ok(row) => row,
        Err(e) => return dead_letter(dlq, dlq_topic, metrics, record, e).await,
    };
    let mut refusals = 0;
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        match session.execute_unpaged(insert, bound(row, item.write_time.as_ref())).await {
            Ok(_) => {
                metrics.write_seconds.observe(started.elapsed().as_secs_f64());
                metrics.batch_rows.observe(1.0);
                metrics.written.inc();
                return;
            }
            Err(e) if tributary_api::cql::transient(&e) => {
                metrics.retries.inc();
                tracing::debug!(error = %e, "transient Cassandra error; retrying");
            }
            Err(e) => {
                refusals += 1;
                metrics.retries.inc();
                if refusals >= REFUSALS_BEFORE_DLQ {
                    return dead_letter(dlq, dlq_topic, metrics, record, &format!("Cassandra refused the row: {e}"))
                        .await;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Sends the record to the dead-letter topic, retrying until Kafka acknowledges it: a
/// record is never dropped.
async fn dead_letter(dlq: &FutureProducer, topic: &str, metrics: &SinkMetrics, record: &Record, error: &str) {
    let partition = record.partition.to_string();
    let offset = record.offset.to_string();
    let mut backoff = Duration::from_millis(200);
    loop {
        let headers = OwnedHeaders::new()
            .insert(Header { key: DLQ_ERROR, value: Some(error) })
            .insert(Header { key: DLQ_TOPIC, value: Some(&record.topic) })
            .insert(Header { key: DLQ_PARTITION, value: Some(&partition) })
            .insert(Header { key: DLQ_OFFSET, value: Some(&offset) });
        let mut out = FutureRecord::to(topic).payload(&record.payload).headers(headers);
        if let Some(key) = &record.key {
            out = out.key(key);
        }
        match dlq.send(out, Duration::from_secs(30)).await {
            Ok(_) => {
                metrics.dead_lettered.inc();
                tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, %error, "record dead-lettered");
                return;
            }
            Err((e, _)) => {
                tracing::warn!(error = %e, "dead-letter write failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Lag = high watermark − committed offset, summed over the assigned partitions (off the
/// async threads: these are blocking calls).
fn update_lag(consumer: Arc<StreamConsumer<SinkContext>>, metrics: Arc<SinkMetrics>, health: Arc<Health>) {
    tokio::task::spawn_blocking(move || {
        let Ok(assignment) = consumer.assignment() else { return };
        let Ok(committed) = consumer.committed_offsets(assignment, Duration::from_secs(5)) else { return };
        let mut lag = 0i64;
        for p in committed.elements() {
            let Ok((low, high)) = consumer.fetch_watermarks(p.topic(), p.partition(), Duration::from_secs(5)) else {
                return;
            };
            let position = match p.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            lag += (high - position).max(0);
        }
        metrics.lag.set(lag);
        health.lag(Instant::now(), lag);
    });
}

/// `/metrics`; `/healthz` (liveness) and `/readyz` (readiness) answer 503 with the reason
/// when the sink is stuck or not consuming yet ([`Health`]).
async fn serve(addr: SocketAddr, metrics: Arc<SinkMetrics>, health: Arc<Health>) {
    use axum::http::StatusCode;
    use axum::routing::get;
    let answer = |verdict: Result<String, String>| match verdict {
        Ok(text) => (StatusCode::OK, text),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    };
    let (live, ready) = (health.clone(), health);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.encode() }
            }),
        )
        .route("/healthz", get(move || std::future::ready(answer(live.liveness(Instant::now())))))
        .route("/readyz", get(move || std::future::ready(answer(ready.readiness(Instant::now())))));
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics server failed");
            }
        }
        Err(e) => tracing::error!(%addr, error = %e, "cannot bind the metrics address"),
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

    #[test]
    fn the_commit_point_never_passes_a_record_still_being_written() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.begin(0, o);
        }
        assert_eq!(t.done(0, 12), None, "10 and 11 are still pending");
        assert_eq!(t.done(0, 10), Some(11), "10 done: commit point 11");
        assert_eq!(t.done(0, 11), Some(13), "11 done, 12 was done: commit point 13");
        assert_eq!(t.done(0, 14), None);
        assert_eq!(t.done(0, 13), Some(15), "all done: one past the highest read");
        t.begin(1, 7);
        t.forget(1);
        assert_eq!(t.done(1, 7), None, "a revoked partition is not stored");
    }
}
