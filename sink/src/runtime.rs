//! The sink process (`tributary-sink`): consumes one topic in its own consumer group and
//! writes every record into one Cassandra table, never losing one.
//!
//! - Offsets are stored (`enable.auto.offset.store=false`) only up to the lowest record of
//!   a partition whose write Cassandra has not acknowledged yet, and committed by
//!   librdkafka on its timer, on revoke and on shutdown. A crash re-reads from there; rows
//!   are upserts by primary key, so a re-read record overwrites itself.
//! - Each offset is stored with its partition's count (records written to Cassandra below
//!   it, since the sink began) as the commit's metadata, and a pod assigned a partition
//!   reads the count committed with its offset before any of its records and goes on from
//!   there ([`crate::offsets`]): the counts the pods report survive any pod's end.
//! - Writes are prepared statements, at most `maxInFlight` records and 24 MiB of payload at
//!   once; when they stall (Cassandra down) the loop stops polling, which pauses
//!   consumption. With the consumer's queue bounded too, a pod holds a bounded number of
//!   bytes whatever the sizes of the records.
//! - Transient Cassandra errors are retried with backoff, for as long as it takes. A record
//!   that cannot be mapped, or that Cassandra refuses three times for a non-transient reason,
//!   goes to the dead-letter topic ([`crate::write`]); its offset counts as done only once
//!   the dead-letter write is acknowledged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use scylla::client::session_builder::SessionBuilder;
use scylla::value::CqlValue;
use tokio::sync::Semaphore;
use tributary_api::contract::{SinkConfig, count_in_metadata, count_metadata};
use tributary_api::sink::RecordFormat;

use crate::avro;
use crate::health::Health;
use crate::mapping::Mapping;
use crate::metrics::{SinkMetrics, serve};
use crate::offsets::{OffsetTracker, Outcome, Store, Unknown};
use crate::write::{DLQ_MAX_MESSAGE_BYTES, Item, MAX_BATCH, Record, chunked, deliver_all, prepare};

/// Credentials, from the environment the Deployment sets from Secrets.
pub struct SinkSecrets {
    pub kafka_username: String,
    pub kafka_password: String,
    /// `sasl.mechanism` of this login (overrides the config's: a rotation changes both the
    /// password and the mechanism, and a restarted container reads them together).
    pub kafka_mechanism: Option<String>,
    pub cassandra_username: String,
    pub cassandra_password: String,
    /// The schema registry's basic auth (`format: Avro` with `avro.credentialsSecret`).
    pub schema_registry: Option<(String, String)>,
}

impl SinkSecrets {
    pub fn from_env() -> Result<Self, String> {
        let var =
            |n: &str| std::env::var(n).map_err(|_| format!("{n} is not set (the Deployment sets it from a Secret)"));
        Ok(SinkSecrets {
            kafka_username: var("KAFKA_USERNAME")?,
            kafka_password: var("KAFKA_PASSWORD")?,
            kafka_mechanism: std::env::var("KAFKA_SASL_MECHANISM").ok().filter(|m| !m.is_empty()),
            cassandra_username: var("CASSANDRA_USERNAME")?,
            cassandra_password: var("CASSANDRA_PASSWORD")?,
            schema_registry: match (
                std::env::var("SCHEMA_REGISTRY_USERNAME"),
                std::env::var("SCHEMA_REGISTRY_PASSWORD"),
            ) {
                (Ok(user), Ok(password)) => Some((user, password)),
                _ => None,
            },
        })
    }
}

struct SinkContext {
    tracker: Arc<Mutex<OffsetTracker>>,
    sink: String,
    metrics: Arc<SinkMetrics>,
}

impl ClientContext for SinkContext {
    /// librdkafka's client-level errors; a refused login is counted and reported, so a
    /// credential rotation that cut a sink off shows (it would otherwise only stall).
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication) {
            self.metrics.authentication_failures.inc();
            self.metrics.error(format!("Kafka refused the sink's login: {reason}"));
        }
        tracing::error!(sink = %self.sink, error = %error, reason, "Kafka client error");
    }
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                // Everything stored is acknowledged by Cassandra: commit it (with its counts)
                // before the partitions move, and stop storing for them (the new owner resumes
                // from the commit).
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(sink = %self.sink, error = %e, "commit on revoke (nothing to commit is fine)");
                }
                let mut tracker = self.tracker.lock().expect("tracker lock");
                for p in partitions.elements() {
                    tracker.forget(p.partition());
                }
                tracing::info!(sink = %self.sink, revoked = partitions.count(), "partitions revoked");
            }
            Rebalance::Assign(partitions) if partitions.count() > 0 => {
                // Before any record of them: each partition's count goes on from the one
                // committed with its offset. One not read now is read on the lag timer.
                let counts = committed_counts(consumer, partitions);
                let mut tracker = self.tracker.lock().expect("tracker lock");
                for p in partitions.elements() {
                    tracker.assign(p.partition(), counts.get(&p.partition()).copied());
                }
                if counts.len() < partitions.count() {
                    tracing::warn!(sink = %self.sink, read = counts.len(), assigned = partitions.count(),
                        "committed counts not all read; those partitions commit nothing until they are");
                }
            }
            _ => {}
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
    let avro = avro_decoder(&config, &secrets)?;
    let metrics = Arc::new(SinkMetrics::default());
    let health = Arc::new(Health::new(STALL, Instant::now()));
    let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
    tokio::spawn(serve(http, metrics.clone(), health.clone(), tracker.clone()));

    check_tls(&config).await?;
    let session = Arc::new(cassandra_session(&config, &secrets).await?);
    let insert = Arc::new(prepare(&session, &config, &mapping).await?);

    let consumer = Arc::new(consumer(
        &config,
        &secrets,
        SinkContext { tracker: tracker.clone(), sink: config.sink.clone(), metrics: metrics.clone() },
    )?);
    let dlq = Arc::new(dead_letter_producer(&config, &secrets)?);

    let permits = Arc::new(Semaphore::new(config.max_in_flight));
    let kib_permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT_KIB as usize));
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
                read_unknown_counts(consumer.clone(), tracker.clone(), config.topic.clone());
                continue;
            }
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                // Broker transport errors while a broker restarts: librdkafka recovers by itself.
                tracing::debug!(sink = %config.sink, error = %e, "consumer error");
                metrics.error(format!("Kafka consumer: {e}"));
                continue;
            }
        };
        let burst = take_burst(&consumer, &message, mapping.needs_headers()).await;
        drop(message);
        metrics.records_in.inc_by(burst.len() as u64);
        // Avro: the burst's writer schemas, from the registry only for ids not seen before;
        // while the registry does not answer, this waits (nothing is dead-lettered for it).
        let schemas = match &avro {
            Some(decoder) => Some(
                decoder
                    .schemas(burst.iter().map(|r| r.payload.as_slice()), |e| {
                        tracing::warn!(sink = %config.sink, error = %e, "schema registry: retrying");
                        metrics.error(format!("schema registry: {e}"));
                    })
                    .await,
            ),
            None => None,
        };
        let groups = rows_by_partition(&config, &mapping, &tracker, schemas.as_ref(), burst);
        for (_, items) in groups {
            for chunk in chunked(items, MAX_BATCH) {
                // Back-pressure: when writes stall, this waits and the loop stops polling.
                let n = u32::try_from(chunk.len()).expect("chunks are small");
                let permit = permits.clone().acquire_many_owned(n).await.expect("semaphore never closes");
                // And by size: a chunk of big records waits until enough others are written.
                let kib = chunk.iter().map(|i| i.record.payload.len().div_ceil(1024)).sum::<usize>();
                let kib = u32::try_from(kib).unwrap_or(u32::MAX).clamp(1, MAX_IN_FLIGHT_KIB);
                let kib_permit = kib_permits.clone().acquire_many_owned(kib).await.expect("semaphore never closes");
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
                    let outcomes = deliver_all(&session, &insert, &dlq, &dlq_topic, &metrics, &chunk).await;
                    done(&consumer, &tracker, &chunk, &outcomes);
                    metrics.in_flight.dec_by(i64::from(n));
                    drop((permit, kib_permit));
                });
            }
        }
    }

    drain(&config, &permits, &consumer).await;
    tracing::info!(sink = %config.sink, "stopped");
    Ok(())
}

/// A session with only the sink's own keyspace's metadata, and only what routing needs (its
/// replication and partitioner): by default the driver copies every keyspace's tables and
/// columns at start, every 60 s and after every schema change in the cluster, in every pod.
async fn cassandra_session(
    config: &SinkConfig,
    secrets: &SinkSecrets,
) -> Result<scylla::client::session::Session, String> {
    let mut builder = SessionBuilder::new()
        .known_nodes(&config.contact_points)
        .user(&secrets.cassandra_username, &secrets.cassandra_password)
        .keyspaces_to_fetch([config.keyspace.as_str()])
        .fetch_full_schema_metadata(false);
    if let Some(ca) = &config.cassandra_ca_pem {
        builder = builder.tls_context(Some(tributary_api::tls::connector("cassandraCaPem", Some(ca))?));
    }
    if let Some(dc) = &config.local_datacenter {
        builder = builder.default_execution_profile_handle(local_datacenter_profile(dc));
    }
    builder.build().await.map_err(|e| {
        format!(
            "cannot connect to Cassandra {:?}: {e}{}",
            config.contact_points,
            tributary_api::tls::hint(&e.to_string())
        )
    })
}

/// What the consumer and the dead-letter producer share: the brokers and the sink's login.
fn kafka_client(config: &SinkConfig, secrets: &SinkSecrets) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.bootstrap_servers)
        .set("security.protocol", &config.security_protocol)
        .set("sasl.mechanism", secrets.kafka_mechanism.as_deref().unwrap_or(&config.sasl_mechanism))
        .set("sasl.username", &secrets.kafka_username)
        .set("sasl.password", &secrets.kafka_password);
    if let Some(ca) = &config.kafka_ca_pem {
        c.set("ssl.ca.pem", ca);
    }
    c
}

/// The sink's consumer, subscribed to its topic: offsets stored only once written, committed
/// on an interval, cooperative rebalances, a bounded queue.
fn consumer(
    config: &SinkConfig,
    secrets: &SinkSecrets,
    context: SinkContext,
) -> Result<StreamConsumer<SinkContext>, String> {
    let consumer: StreamConsumer<SinkContext> = kafka_client(config, secrets)
        .set("group.id", &config.group)
        .set("client.id", format!("tributary-sink-{}", config.sink.replace('/', ".")))
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", config.commit_interval_ms.to_string())
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Bounds on what the consumer holds (its defaults allow 64 MiB queued and 50 MiB per fetch).
        .set("queued.max.messages.kbytes", CONSUMER_QUEUE_KIB.to_string())
        .set("fetch.max.bytes", (CONSUMER_QUEUE_KIB * 1024).to_string())
        .create_with_context(context)
        .map_err(|e| format!("cannot create the consumer: {e}"))?;
    // librdkafka leaves the thread's OpenSSL error queue dirty after parsing ssl.ca.pem.
    tributary_api::tls::clear_thread_errors();
    consumer.subscribe(&[&config.topic]).map_err(|e| format!("cannot subscribe to {}: {e}", config.topic))?;
    Ok(consumer)
}

/// The dead-letter producer. Any record the source topic holds fits (the dead-letter topic
/// takes as much, and a bit more for the headers); the client's own 1 MB default would
/// refuse a bigger one for good.
fn dead_letter_producer(config: &SinkConfig, secrets: &SinkSecrets) -> Result<FutureProducer, String> {
    let producer = kafka_client(config, secrets)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.max.bytes", DLQ_MAX_MESSAGE_BYTES.to_string())
        .create()
        .map_err(|e| format!("cannot create the dead-letter producer: {e}"))?;
    tributary_api::tls::clear_thread_errors();
    Ok(producer)
}

/// `first` and what else is already fetched (without waiting), up to a burst by count and
/// bytes, so rows of one Cassandra partition can go together in one unlogged batch.
async fn take_burst(
    consumer: &StreamConsumer<SinkContext>,
    first: &rdkafka::message::BorrowedMessage<'_>,
    headers: bool,
) -> Vec<Record> {
    let mut burst = vec![record_of(first, headers)];
    let mut burst_bytes = burst[0].payload.len();
    while burst.len() < MAX_BURST && burst_bytes < MAX_BURST_BYTES {
        match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
            Ok(Ok(m)) => {
                let record = record_of(&m, headers);
                burst_bytes += record.payload.len();
                burst.push(record);
            }
            _ => break,
        }
    }
    burst
}

/// The burst's rows, grouped by Kafka partition and Cassandra partition (an unmappable record
/// alone: it goes to the dead-letter topic), each with its write timestamp; every record is
/// begun in the offset tracker.
fn rows_by_partition(
    config: &SinkConfig,
    mapping: &Mapping,
    tracker: &Mutex<OffsetTracker>,
    schemas: Option<&avro::BurstSchemas>,
    burst: Vec<Record>,
) -> BTreeMap<(i32, String), Vec<Item>> {
    let mut groups: BTreeMap<(i32, String), Vec<Item>> = BTreeMap::new();
    let mut tracker = tracker.lock().expect("tracker lock");
    for record in burst {
        tracker.begin(record.partition, record.offset);
        let row = match schemas {
            Some(schemas) => {
                avro::decode(&record.payload, schemas).and_then(|value| mapping.row_of_json(&value, &record.meta()))
            }
            None => mapping.row_of(&record.payload, &record.meta()),
        };
        let group = match &row {
            Ok(r) => mapping.partition_of(r),
            Err(_) => format!("unmappable {}", record.offset),
        };
        let write_time = config.write_time.as_ref().map(|w| CqlValue::BigInt(w.base.saturating_add(record.offset)));
        groups.entry((record.partition, group)).or_default().push(Item { record, row, write_time });
    }
    groups
}

/// On shutdown: the writes in flight finish (30 s at most), then what Cassandra acknowledged
/// is committed and the group left.
async fn drain(config: &SinkConfig, permits: &Semaphore, consumer: &StreamConsumer<SinkContext>) {
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
}

/// A sink with work that reads, writes and retries nothing for this long is stuck (longer
/// than a Cassandra request's timeout, after which a stalled write is retried).
const STALL: Duration = Duration::from_secs(120);
/// Records taken from the consumer's queue at once (only what is already fetched), and
/// their bytes at most (one bigger record is taken alone).
const MAX_BURST: usize = 512;
const MAX_BURST_BYTES: usize = 8 << 20;
/// Payload bytes (KiB) being mapped and written at once, and what the consumer may hold
/// queued: with each record held about three times (payload, parsed, bound), a pod stays
/// well under its 256 MiB limit whatever the sizes of the records.
const MAX_IN_FLIGHT_KIB: u32 = 24 * 1024;
const CONSUMER_QUEUE_KIB: u32 = 16 * 1024;

/// Marks the chunk's records done and stores the offsets (with their counts) that moved.
/// Stored under the tracker's lock, so a partition's stored offset only moves forward.
fn done(consumer: &StreamConsumer<SinkContext>, tracker: &Mutex<OffsetTracker>, chunk: &[Item], outcomes: &[Outcome]) {
    let Some(topic) = chunk.first().map(|i| i.record.topic.as_str()) else { return };
    let mut tracker = tracker.lock().expect("tracker lock");
    let mut stores = BTreeMap::new();
    for (item, outcome) in chunk.iter().zip(outcomes) {
        if let Some(store) = tracker.done(item.record.partition, item.record.offset, *outcome) {
            stores.insert(item.record.partition, store);
        }
    }
    store(consumer, topic, stores);
}

/// Stores each partition's offset with its count as the commit's metadata; librdkafka
/// commits both together (auto commit, on revoke, on shutdown).
fn store(consumer: &StreamConsumer<SinkContext>, topic: &str, stores: BTreeMap<i32, Store>) {
    if stores.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::with_capacity(stores.len());
    for (partition, store) in stores {
        let mut entry = list.add_partition(topic, partition);
        if entry.set_offset(Offset::Offset(store.offset)).is_ok() {
            entry.set_metadata(count_metadata(store.count));
        }
    }
    if let Err(e) = consumer.store_offsets(&list) {
        tracing::debug!(error = %e, "offset not stored (partition revoked)");
    }
}

/// How long reading the committed counts may take (in a rebalance, before consuming).
const COUNT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The count committed with each partition's offset, of those it could read: 0 where
/// nothing was committed, or the commit carries no count (an older sink's, another tool's).
fn committed_counts(consumer: &impl Consumer<SinkContext>, partitions: &TopicPartitionList) -> BTreeMap<i32, u64> {
    let committed = match consumer.committed_offsets(partitions.clone(), COUNT_READ_TIMEOUT) {
        Ok(committed) => committed,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the committed offsets' counts");
            return BTreeMap::new();
        }
    };
    committed
        .elements()
        .iter()
        .filter(|p| p.error().is_ok())
        .map(|p| {
            // rdkafka panics on metadata that is not UTF-8, which another client may commit.
            let metadata = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.metadata().to_string()));
            (p.partition(), metadata.ok().and_then(|m| count_in_metadata(&m)).unwrap_or(0))
        })
        .collect()
}

/// Reads the counts the rebalance could not (off the async threads: a blocking call).
fn read_unknown_counts(consumer: Arc<StreamConsumer<SinkContext>>, tracker: Arc<Mutex<OffsetTracker>>, topic: String) {
    let unknown: Vec<Unknown> = tracker.lock().expect("tracker lock").unknown();
    if unknown.is_empty() {
        return;
    }
    tokio::task::spawn_blocking(move || {
        let mut list = TopicPartitionList::with_capacity(unknown.len());
        for u in &unknown {
            list.add_partition(&topic, u.partition);
        }
        let counts = committed_counts(consumer.as_ref(), &list);
        let mut tracker = tracker.lock().expect("tracker lock");
        let mut stores = BTreeMap::new();
        for u in unknown {
            if let Some(store) = counts.get(&u.partition).and_then(|count| tracker.count_read(u, *count)) {
                stores.insert(u.partition, store);
            }
        }
        store(&consumer, &topic, stores);
    });
}

/// The Avro decoder of a `format: Avro` sink; none for other formats.
fn avro_decoder(config: &SinkConfig, secrets: &SinkSecrets) -> Result<Option<avro::AvroDecoder>, String> {
    if config.spec.format != RecordFormat::Avro {
        return Ok(None);
    }
    let url = config.schema_registry_url.as_deref().ok_or("format Avro without a schema registry URL in the config")?;
    Ok(Some(avro::AvroDecoder::new(avro::Registry::new(url, secrets.schema_registry.clone())?)))
}

fn record_of(message: &rdkafka::message::BorrowedMessage<'_>, with_headers: bool) -> Record {
    use rdkafka::message::Headers;
    let headers = match message.headers() {
        Some(h) if with_headers => {
            h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec).unwrap_or_default())).collect()
        }
        _ => Vec::new(),
    };
    Record {
        headers,
        timestamp: message.timestamp().to_millis(),
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
    }
}

/// Writes go to the nodes of `dc` only (token-aware within it): a LocalQuorum is that
/// datacenter's quorum, and no request crosses to another datacenter.
fn local_datacenter_profile(dc: &str) -> scylla::client::execution_profile::ExecutionProfileHandle {
    use scylla::client::execution_profile::ExecutionProfile;
    use scylla::policies::load_balancing::DefaultPolicy;
    let policy =
        DefaultPolicy::builder().prefer_datacenter(dc.to_string()).permit_dc_failover(false).token_aware(true).build();
    ExecutionProfile::builder().load_balancing_policy(policy).build().into_handle()
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

/// The brokers' and Cassandra's certificates checked against the CAs in the config before
/// anything else, so a wrong CA or name ends the pod with a message that says so.
async fn check_tls(config: &SinkConfig) -> Result<(), String> {
    use tributary_api::tls::check_certificates;
    if config.security_protocol == "SASL_SSL" {
        check_certificates("Kafka", config.kafka_ca_pem.as_deref(), &config.bootstrap_servers).await?;
    }
    if let Some(ca) = &config.cassandra_ca_pem {
        check_certificates("Cassandra", Some(ca), &config.contact_points.join(",")).await?;
    }
    Ok(())
}
