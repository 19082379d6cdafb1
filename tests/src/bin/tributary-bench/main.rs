//! `tributary-bench`: side-by-side measurements on the real local stack, for `make bench`.
//! Every comparison runs its sides alternately (A B, B A, ...) in the same run on the same
//! stack; each measurement is one JSON line appended to `--out`. `bench/report.py` turns the
//! lines into medians, ranges and ratios.
//!
//!     tributary-bench sink --records N --reps R [--python-records M] [--connect-records C]
//!                          [--sides raw,raw-superuser,sink,connect,consumer,python] --out FILE
//!         one sink replica vs a raw Cassandra loop (same driver, same rows, best concurrency),
//!         vs a bare rdkafka consumer, vs the seeds' Python consumer (one insert per record),
//!         vs Kafka Connect with the Apache Camel Cassandra sink (one task; bench/connect/);
//!         `--sides` runs only some of them (e.g. `raw,sink` for the sink ÷ raw ratio alone;
//!         `raw-superuser`, not run by default, is the raw loop logged in as the superuser)
//!     tributary-bench topics --count K --reps R --out FILE
//!         K Topic objects at once until all Ready vs K topics by raw batched CreateTopics
//!     tributary-bench tenants --count M --out FILE
//!         M Tenants at once: apply-to-Ready latency of each; then 10 Topics and a CassandraSink
//!         per tenant, and the operator's steady state over them (CPU per resync, peak RSS,
//!         Kafka/Cassandra write calls per resync)
//!     tributary-bench steady --out FILE
//!         a new operator over the Tenants a `tenants` run left behind (bo-…): time to converge,
//!         the same steady-state measurement, then the Tenants are deleted
//!
//! Needs `eval "$(make -s stack-env)"` and `cargo build --workspace`; `bench/run.sh` does both.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use rdkafka::Message;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use tributary::api::{CassandraSink, Tenant, Topic};
use tributary::sink::table::create_table_cql;
use tributary_sink::mapping::{Cell, Mapping};
use tributary_sink::seed::{self, Dataset};
use tributary_tests::operator::{OperatorProcess, ensure_namespace};
use tributary_tests::pipeline::{cassandra, produce_paced, secret};
use tributary_tests::sink::{SinkPods, pod_metric};
use tributary_tests::{
    install_crds, kafka_admin, kubectl_apply, ready_tenant, repo_root, tenant_kafka_settings, unique, wait_until,
};

struct Args {
    command: String,
    records: u64,
    python_records: u64,
    connect_records: u64,
    reps: u32,
    count: usize,
    out: PathBuf,
    /// `sink` only: which sides to run (default all), e.g. `raw,sink`.
    sides: Vec<String>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("usage: tributary-bench sink|topics|tenants [options]; see the source's header")?;
    let mut args = Args {
        command,
        records: 200_000,
        python_records: 20_000,
        connect_records: 40_000,
        reps: 5,
        count: 1000,
        out: "bench.jsonl".into(),
        sides: ["raw", "sink", "connect", "consumer", "python"].map(String::from).to_vec(),
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|_| format!("{flag}: {value:?} is not a number"));
        match flag.as_str() {
            "--records" => args.records = number()?,
            "--python-records" => args.python_records = number()?,
            "--connect-records" => args.connect_records = number()?,
            "--reps" => args.reps = number()? as u32,
            "--count" => args.count = number()? as usize,
            "--out" => args.out = value.into(),
            "--sides" => args.sides = value.split(',').map(|s| s.trim().to_string()).collect(),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

/// One measurement: `records` handled in `seconds` by `side` of comparison `bench`.
#[derive(Default)]
struct Sample {
    bench: &'static str,
    side: &'static str,
    rep: u32,
    records: u64,
    seconds: f64,
    cpu_seconds: Option<f64>,
    peak_rss_kib: Option<u64>,
    note: String,
}

fn emit(out: &PathBuf, s: &Sample) {
    let line = json!({
        "bench": s.bench, "side": s.side, "rep": s.rep, "records": s.records, "seconds": s.seconds,
        "rate": s.records as f64 / s.seconds, "cpu_seconds": s.cpu_seconds, "peak_rss_kib": s.peak_rss_kib,
        "note": s.note,
    });
    println!("[bench] {line}");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(out).expect("open --out");
    writeln!(f, "{line}").unwrap();
}

/// CPU seconds (user + system) and peak RSS of a live process, from /proc.
fn proc_usage(pid: u32) -> (Option<f64>, Option<u64>) {
    let ticks = 100.0; // sysconf(_SC_CLK_TCK) on Linux
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| {
        let rest = s.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
    });
    (cpu, status_kib(pid, "VmHWM"))
}

/// A size field (kiB) of /proc/PID/status: VmHWM is the peak RSS, VmRSS the current one.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(&format!("{field}:")))?.split_whitespace().nth(1)?.parse().ok()
}

async fn client() -> Client {
    Client::try_default().await.expect("Kubernetes API (eval \"$(make -s stack-env)\")")
}

async fn operator() -> OperatorProcess {
    install_crds().await;
    let lease = unique("bench-lease");
    ensure_namespace(&lease).await;
    let op = OperatorProcess::spawn_with(&unique("bench-operator"), &lease, &[("TRIBUTARY_RESYNC_SECONDS", "30")]);
    op.wait_leader().await;
    op
}

mod platform;
mod sink;

use platform::{steady_bench, tenants_bench, topics_bench};
use sink::sink_bench;

#[tokio::main]
async fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("tributary-bench: {e}");
        std::process::exit(2)
    });
    match args.command.as_str() {
        "sink" => sink_bench(&args).await,
        "topics" => topics_bench(&args).await,
        "tenants" => tenants_bench(&args).await,
        "steady" => steady_bench(&args).await,
        other => {
            eprintln!("tributary-bench: unknown command {other}");
            std::process::exit(2)
        }
    }
}
