//! `tributary-local`: the part of a cluster the local stack lacks, for `make demo` without
//! Docker. There is no kubelet, so this runs what the operator wrote as local processes.
//!
//!     tributary-local sinks [NAMESPACE..]   run every replica of every sink Deployment (command,
//!                                           environment and config from the Deployment, its Secrets
//!                                           and ConfigMap) until SIGTERM/Ctrl-C, then stop them
//!     tributary-local rows [NAMESPACE..]    rows in each CassandraSink's table
//!
//! Without NAMESPACE: every namespace.
//!
//! Needs `eval "$(make -s stack-env)"` (KUBECONFIG, CASSANDRA_*).

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use tributary::api::CassandraSink;
use tributary_tests::pipeline::cassandra;
use tributary_tests::sink::SinkProcess;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let namespaces = args.get(1..).unwrap_or_default().to_vec();
    let result = match args.first().map(String::as_str) {
        Some("sinks") => sinks(&namespaces).await,
        Some("rows") => rows(&namespaces).await,
        _ => Err(include_str!("tributary-local.rs").lines().take(11).collect::<Vec<_>>().join("\n")),
    };
    if let Err(e) = result {
        eprintln!("tributary-local: {e}");
        std::process::exit(1);
    }
}

async fn client() -> Result<Client, String> {
    Client::try_default().await.map_err(|e| format!("no Kubernetes API ({e}); run: eval \"$(make -s stack-env)\""))
}

/// Whether `namespace` is one of `wanted` (all when empty).
fn selected(wanted: &[String], namespace: &str) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| w == namespace)
}

async fn sinks(wanted: &[String]) -> Result<(), String> {
    let deployments: Api<Deployment> = Api::all(client().await?);
    let list = deployments
        .list(&ListParams::default().labels("app.kubernetes.io/name=tributary-sink"))
        .await
        .map_err(|e| format!("cannot list the sink Deployments: {e}"))?;
    let items: Vec<&Deployment> =
        list.items.iter().filter(|d| selected(wanted, &d.namespace().unwrap_or_default())).collect();
    if items.is_empty() {
        return Err("no sink Deployments yet: apply a CassandraSink and wait until its table is ready".into());
    }
    let mut running = Vec::new();
    for d in items {
        let (namespace, name) = (d.namespace().unwrap_or_default(), d.name_any());
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        for replica in 0..replicas {
            let sink = SinkProcess::start(&namespace, &name).await;
            println!(
                "[local] {namespace}/{name} replica {replica}: pid {}, metrics http://{}/metrics, log {}",
                sink.pid,
                sink.http,
                sink.log.display()
            );
            running.push(sink);
        }
    }
    println!("[local] {} sink processes running; Ctrl-C or SIGTERM stops them gracefully", running.len());
    tributary::operator::shutdown_signal().await;
    for sink in &running {
        sink.stop().await;
    }
    println!("[local] every sink stopped and committed its offsets");
    Ok(())
}

async fn rows(wanted: &[String]) -> Result<(), String> {
    let sinks: Api<CassandraSink> = Api::all(client().await?);
    let list = sinks.list(&ListParams::default()).await.map_err(|e| format!("cannot list CassandraSinks: {e}"))?;
    let session = cassandra().await;
    println!("{:<28} {:<28} {:>10}", "CASSANDRASINK", "TABLE", "ROWS");
    for sink in list.items.iter().filter(|s| selected(wanted, &s.namespace().unwrap_or_default())) {
        let who = format!("{}/{}", sink.namespace().unwrap_or_default(), sink.name_any());
        let Some(table) = sink.status.as_ref().and_then(|s| s.table.clone()) else {
            println!("{who:<28} {:<28} {:>10}", "(not created yet)", "-");
            continue;
        };
        let count = match count_rows(&session, &table).await {
            Ok(n) => n.to_string(),
            Err(e) => format!("({e})"),
        };
        println!("{who:<28} {table:<28} {count:>10}");
    }
    Ok(())
}

async fn count_rows(session: &scylla::client::session::Session, table: &str) -> Result<i64, String> {
    let result =
        session.query_unpaged(format!("SELECT COUNT(*) FROM {table}"), &[]).await.map_err(|e| e.to_string())?;
    let rows = result.into_rows_result().map_err(|e| e.to_string())?;
    Ok(rows.single_row::<(i64,)>().map_err(|e| e.to_string())?.0)
}
