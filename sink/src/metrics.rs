//! What a sink pod tells: its counters on `/metrics`, its [`SinkReport`] on [`REPORT_PATH`]
//! (read by the operator into the CassandraSink's status), and its liveness and readiness.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::jiff::Timestamp;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tributary_api::contract::{REPORT_PATH, ReportedError, SinkReport};
use tributary_api::sink::PartitionCount;

use crate::health::Health;
use crate::offsets::OffsetTracker;

/// The sink's metrics, on its `/metrics`.
pub struct SinkMetrics {
    registry: Registry,
    pub records_in: Counter,
    pub written: Counter,
    pub dead_lettered: Counter,
    pub retries: Counter,
    /// Logins Kafka refused.
    pub authentication_failures: Counter,
    pub in_flight: Gauge,
    pub lag: Gauge,
    pub write_seconds: Histogram,
    pub batch_rows: Histogram,
    /// The last record-level error and when it happened, for [`SinkMetrics::report`].
    last_error: Mutex<Option<ReportedError>>,
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
            authentication_failures: Counter::default(),
            in_flight: Gauge::default(),
            lag: Gauge::default(),
            write_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            batch_rows: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0]),
            last_error: Mutex::new(None),
        };
        registry.register("records_in", "Records consumed from Kafka", m.records_in.clone());
        registry.register("records_written", "Records acknowledged by Cassandra", m.written.clone());
        registry.register("records_dead_lettered", "Records sent to the dead-letter topic", m.dead_lettered.clone());
        registry.register("write_retries", "Cassandra writes retried", m.retries.clone());
        registry.register(
            "kafka_authentication_failures",
            "Logins the brokers refused",
            m.authentication_failures.clone(),
        );
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

    /// Remembers `message` as the last error, stamped now.
    pub fn error(&self, message: impl Into<String>) {
        let error = ReportedError { message: message.into(), time: Timestamp::now().to_string() };
        *self.last_error.lock().expect("last error lock") = Some(error);
    }

    /// What this pod has done since it started, and the count of each partition it owns
    /// (`partitions`), for the operator ([`REPORT_PATH`]).
    pub fn report(&self, partitions: Vec<PartitionCount>) -> SinkReport {
        SinkReport {
            records_written: self.written.get(),
            partitions,
            dead_lettered: self.dead_lettered.get(),
            last_error: self.last_error.lock().expect("last error lock").clone(),
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encoding metrics");
        out
    }
}

/// `/metrics`; [`REPORT_PATH`] (the [`SinkReport`] the operator reads); `/healthz`
/// (liveness) and `/readyz` (readiness) answer 503 with the reason when the sink is stuck
/// or not consuming yet ([`Health`]).
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<SinkMetrics>,
    health: Arc<Health>,
    tracker: Arc<Mutex<OffsetTracker>>,
) {
    use axum::http::StatusCode;
    use axum::routing::get;
    let answer = |verdict: Result<String, String>| match verdict {
        Ok(text) => (StatusCode::OK, text),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    };
    let (live, ready) = (health.clone(), health);
    let reporting = metrics.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.encode() }
            }),
        )
        .route(
            REPORT_PATH,
            get(move || {
                let counts = tracker.lock().expect("tracker lock").counts();
                let report = serde_json::to_string(&reporting.report(counts)).expect("a report serializes");
                std::future::ready(([(axum::http::header::CONTENT_TYPE, "application/json")], report))
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
