//! `tributary-operator`: reconciles Tenants, Topics and CassandraSinks. Settings come from
//! the environment (see `config.rs`); logs are JSON lines on stdout.

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn")))
        .init();
    if let Err(e) = tributary::operator::run().await {
        tracing::error!(error = %e, "operator stopped");
        eprintln!("tributary-operator: {e}");
        std::process::exit(1);
    }
}
