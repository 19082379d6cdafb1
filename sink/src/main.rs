//! `tributary-sink`: streams one topic into one Cassandra table (one process per replica of
//! a CassandraSink's Deployment). Reads `TRIBUTARY_SINK_CONFIG` (default
//! `/etc/tributary/sink.yaml`, rendered by the operator), credentials from `KAFKA_USERNAME`,
//! `KAFKA_PASSWORD`, `CASSANDRA_USERNAME`, `CASSANDRA_PASSWORD`, and serves `/metrics`,
//! `/healthz`, `/readyz` and `/report` (what it has written, for the operator) on
//! `TRIBUTARY_HTTP_ADDR` (default `0.0.0.0:8080`). Logs are JSON lines.

use tracing_subscriber::EnvFilter;
use tributary_api::contract::SinkConfig;
use tributary_sink::runtime::{SinkSecrets, run};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    if let Err(e) = start().await {
        tracing::error!(error = %e, "sink stopped");
        eprintln!("tributary-sink: {e}");
        std::process::exit(1);
    }
}

async fn start() -> Result<(), String> {
    let path = std::env::var("TRIBUTARY_SINK_CONFIG").unwrap_or_else(|_| "/etc/tributary/sink.yaml".into());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let config: SinkConfig = serde_saphyr::from_str(&text).map_err(|e| format!("{path} is not a sink config: {e}"))?;
    let secrets = SinkSecrets::from_env()?;
    let addr = std::env::var("TRIBUTARY_HTTP_ADDR").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let addr = addr.parse().map_err(|e| format!("TRIBUTARY_HTTP_ADDR {addr:?} is not host:port: {e}"))?;
    run(config, secrets, addr).await
}
