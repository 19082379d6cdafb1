//! `tributary-bench`: side-by-side measurements on the real local stack, for `make bench`.
//! Every comparison runs its sides alternately (A B, B A, ...) in the same run on the same
//! stack; each measurement is one JSON line appended to `--out`. `bench/report.py` turns the
//! lines into medians, ranges and ratios.
//!
//!     tributary-bench sink --records N --reps R [--python-records M] [--connect-records C] --out FILE
//!         one sink replica vs a raw Cassandra loop (same driver, same rows, best concurrency),
//!         vs a bare rdkafka consumer, vs the seeds' Python consumer (one insert per record),
//!         vs Kafka Connect with the Apache Camel Cassandra sink (one task; bench/connect/)
//!     tributary-bench topics --count K --reps R --out FILE
//!         K Topic objects at once until all Ready vs K topics by raw batched CreateTopics
//!     tributary-bench tenants --count M --out FILE
//!         M Tenants at once: apply-to-Ready latency of each; then 10 Topics and a CassandraSink
//!         per tenant, and the operator's steady state over them (CPU per resync, peak RSS,
//!         Kafka/Cassandra write calls per resync)
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
use tributary::seed::{self, Dataset};
use tributary::sink::table::create_table_cql;
use tributary_sink::mapping::{Cell, Mapping};
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
        other => {
            eprintln!("tributary-bench: unknown command {other}");
            std::process::exit(2)
        }
    }
}

// ------------------------------------------------------------------------------ sink

/// Partitions of the topic the sink comparisons read.
const PARTITIONS: i32 = 3;

/// The water example's CassandraSink spec, writing to `table` with one replica.
fn water_spec(table: &str) -> tributary::api::CassandraSinkSpec {
    let text = std::fs::read_to_string(repo_root().join("examples/water/sink.yaml")).unwrap();
    let sink: CassandraSink = serde_saphyr::from_str(&text).unwrap();
    let mut spec = sink.spec;
    spec.table = table.to_string();
    spec.replicas = 1;
    spec
}

async fn sink_bench(args: &Args) {
    let _operator = operator().await;
    let tenant = unique("bench");
    ready_tenant(&tenant, "").await;
    let keyspace = tenant.replace('-', "_");
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata: {{name: data, namespace: {tenant}}}\nspec: {{partitions: {PARTITIONS}, replicationFactor: 3}}"
    ));
    let topics: Api<Topic> = Api::namespaced(client().await, &tenant);
    tributary_tests::wait_ready(&topics, "data", "True", "Provisioned").await;
    let creds = secret(&tenant, "tributary-credentials").await;
    let kafka_topic = format!("{tenant}.data");

    println!("[bench] producing {} water records into {kafka_topic}", args.records);
    produce_paced(&tenant, "water", "bench", args.records, 0, 0).await;

    // The rows the raw loop inserts: the same records, mapped by the sink's own mapping.
    let mapping = Mapping::new(&water_spec("x")).unwrap();
    let rows: Vec<_> = (0..args.records)
        .map(|i| {
            let row = mapping.row(seed::record(Dataset::Water, "bench", i).value.as_bytes()).unwrap();
            // Every field of a seed record is present: each cell is a value.
            row.into_iter().map(|c| if let Cell::Value(v) = c { Some(v) } else { None }).collect::<Vec<_>>()
        })
        .collect();
    let session = cassandra().await;
    let columns = mapping.column_names().join(", ");
    let marks = vec!["?"; mapping.column_names().len()].join(", ");

    let raw = |table: String, concurrency: usize, count: usize| {
        let (session, rows) = (&session, &rows);
        let (keyspace, columns, marks) = (&keyspace, &columns, &marks);
        async move {
            session.query_unpaged(create_table_cql(keyspace, &water_spec(&table)), &[]).await.unwrap();
            let insert =
                session.prepare(format!("INSERT INTO {keyspace}.{table} ({columns}) VALUES ({marks})")).await.unwrap();
            let start = Instant::now();
            futures::stream::iter(rows[..count].iter())
                .map(|row| session.execute_unpaged(&insert, row))
                .buffer_unordered(concurrency)
                .try_for_each(|_| async { Ok(()) })
                .await
                .unwrap();
            start.elapsed().as_secs_f64()
        }
    };
    // The raw loop's best concurrency, found on a warm-up slice.
    let warm = (args.records as usize).min(20_000);
    let mut best = (0usize, f64::MAX);
    for c in [32, 128, 512, 2048] {
        let t = raw(format!("warm_{c}"), c, warm).await;
        println!("[bench] raw loop warm-up: concurrency {c}: {:.0} rows/s", warm as f64 / t);
        if t < best.1 {
            best = (c, t);
        }
    }
    let concurrency = best.0;

    let sinks: Api<CassandraSink> = Api::namespaced(client().await, &tenant);
    for rep in 0..args.reps {
        let order: Vec<&str> = if rep % 2 == 0 {
            vec!["raw", "sink", "connect", "consumer", "python"]
        } else {
            vec!["python", "consumer", "connect", "sink", "raw"]
        };
        for side in order {
            match side {
                "raw" => {
                    let seconds = raw(format!("raw_{rep}"), concurrency, rows.len()).await;
                    emit(
                        &args.out,
                        &Sample {
                            bench: "sink",
                            side: "raw-cassandra-loop",
                            rep,
                            records: args.records,
                            seconds,
                            note: format!("scylla driver, prepared INSERT, {concurrency} in flight"),
                            ..Default::default()
                        },
                    );
                }
                "sink" => {
                    let name = format!("s{rep}");
                    let mut spec = serde_json::to_value(water_spec(&format!("sink_{rep}"))).unwrap();
                    spec["replicas"] = json!(1);
                    let obj = json!({"apiVersion": "tributary.dev/v1alpha1", "kind": "CassandraSink",
                        "metadata": {"name": name, "namespace": tenant}, "spec": spec});
                    kubectl_apply(&serde_json::to_string(&obj).unwrap());
                    let sink = SinkPods::running(&tenant, &format!("tributary-sink-{name}"), 1).await;
                    let pod = sink.pods().await.remove(0);
                    let pid = sink.host_pid(&pod).await;
                    let start = Instant::now();
                    let mut first = None;
                    let mut cpu_at_first = None;
                    loop {
                        let written =
                            pod_metric(&pod, "tributary_sink_records_written_total").await.unwrap_or(0.0) as u64;
                        if written > 0 && first.is_none() {
                            first = Some(Instant::now());
                            cpu_at_first = proc_usage(pid).0;
                        }
                        if written >= args.records {
                            break;
                        }
                        assert!(start.elapsed() < Duration::from_secs(1800), "the sink stalled: {}", sink.logs().await);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let seconds = first.unwrap().elapsed().as_secs_f64();
                    let (cpu, rss) = proc_usage(pid);
                    let cpu = cpu.zip(cpu_at_first).map(|(end, start)| end - start);
                    emit(
                        &args.out,
                        &Sample {
                            bench: "sink",
                            side: "tributary-sink",
                            rep,
                            records: args.records,
                            seconds,
                            cpu_seconds: cpu,
                            peak_rss_kib: rss,
                            note: format!(
                                "1 replica, from first write (time and CPU); {:.1} s including start and group join",
                                start.elapsed().as_secs_f64()
                            ),
                        },
                    );
                    assert_eq!(sink.restarts().await, 0, "the sink died: {}", sink.logs().await);
                    let _ = sinks.delete(&name, &DeleteParams::default()).await;
                }
                "connect" => {
                    let sample =
                        connect_run(&tenant, &creds, &keyspace, rep, args.connect_records.min(args.records)).await;
                    emit(&args.out, &sample);
                }
                "consumer" => {
                    let consumer: BaseConsumer = tenant_kafka_settings(&tenant)
                        .await
                        .client_config()
                        .set("group.id", format!("{}bench.raw.{rep}", creds["kafka.group.prefix"]))
                        .set("auto.offset.reset", "earliest")
                        .set("enable.auto.commit", "false")
                        .create()
                        .unwrap();
                    consumer.subscribe(&[&kafka_topic]).unwrap();
                    let (mut n, mut first) = (0u64, None);
                    while n < args.records {
                        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
                            let m = m.unwrap();
                            first.get_or_insert_with(Instant::now);
                            std::hint::black_box(m.payload());
                            n += 1;
                        }
                    }
                    emit(
                        &args.out,
                        &Sample {
                            bench: "sink",
                            side: "bare-rdkafka-consumer",
                            rep,
                            records: n,
                            seconds: first.unwrap().elapsed().as_secs_f64(),
                            note: "reads and drops every record".into(),
                            ..Default::default()
                        },
                    );
                }
                _ => {
                    let table = format!("python_{rep}");
                    session.query_unpaged(create_table_cql(&keyspace, &water_spec(&table)), &[]).await.unwrap();
                    let python = repo_root().join("bench/.venv/bin/python");
                    let out = tokio::process::Command::new(&python)
                        .arg(repo_root().join("bench/seed_consumer.py"))
                        .env("KAFKA_BOOTSTRAP", &creds["kafka.bootstrap.servers"])
                        .env("KAFKA_USERNAME", &creds["kafka.username"])
                        .env("KAFKA_PASSWORD", &creds["kafka.password"])
                        .env("KAFKA_TOPIC", &kafka_topic)
                        .env("KAFKA_GROUP", format!("{}bench.python.{rep}", creds["kafka.group.prefix"]))
                        .env("CASSANDRA_CONTACT", std::env::var("CASSANDRA_CONTACT").unwrap())
                        .env("CASSANDRA_USERNAME", &creds["cassandra.username"])
                        .env("CASSANDRA_PASSWORD", &creds["cassandra.password"])
                        .env("CASSANDRA_TABLE", format!("{keyspace}.{table}"))
                        .env("RECORDS", args.python_records.to_string())
                        .output()
                        .await
                        .unwrap_or_else(|e| panic!("{}: {e} (bench/run.sh creates it)", python.display()));
                    assert!(out.status.success(), "python consumer: {}", String::from_utf8_lossy(&out.stderr));
                    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                    emit(
                        &args.out,
                        &Sample {
                            bench: "sink",
                            side: "python-seed-consumer",
                            rep,
                            records: result["records"].as_u64().unwrap(),
                            seconds: result["seconds"].as_f64().unwrap(),
                            cpu_seconds: result["cpu_seconds"].as_f64(),
                            peak_rss_kib: result["peak_rss_kib"].as_u64(),
                            note: "confluent-kafka + cassandra-driver, one synchronous INSERT per record".into(),
                        },
                    );
                }
            }
        }
    }
}

/// One run of Kafka Connect (standalone worker, one task of the Apache Camel Cassandra sink)
/// writing the topic into a fresh table of the same schema, with the tenant's own credentials.
/// Time and CPU count from the first row in the table until `records` offsets are committed
/// (like the Python consumer, it reads a slice of the topic: at its rate the whole would take
/// most of the benchmark).
async fn connect_run(
    tenant: &str,
    creds: &std::collections::BTreeMap<String, String>,
    keyspace: &str,
    rep: u32,
    records: u64,
) -> Sample {
    let env = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} is not set (bench/run.sh sets it)"));
    let (worker, plugins) = (env("TRIBUTARY_CONNECT_WORKER"), env("TRIBUTARY_CONNECT_PLUGINS"));
    let table = format!("connect_{rep}");
    let session = cassandra().await;
    session.query_unpaged(create_table_cql(keyspace, &water_spec(&table)), &[]).await.unwrap();
    let work = std::env::temp_dir().join(unique("bench-connect"));
    std::fs::create_dir_all(&work).unwrap();
    let group = format!("{}bench.connect.{rep}", creds["kafka.group.prefix"]);
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{}\";",
        creds["kafka.username"], creds["kafka.password"]
    );
    let vars = [
        ("KAFKA_BOOTSTRAP", creds["kafka.bootstrap.servers"].clone()),
        ("KAFKA_JAAS", jaas),
        ("WORK", work.display().to_string()),
        ("PLUGINS", plugins),
        ("NAME", format!("bench-connect-{rep}")),
        ("TOPIC", format!("{tenant}.data")),
        ("GROUP", group.clone()),
        ("CASSANDRA_CONTACT", env("CASSANDRA_CONTACT")),
        ("KEYSPACE", keyspace.to_string()),
        ("TABLE", table.clone()),
        ("CASSANDRA_USERNAME", creds["cassandra.username"].clone()),
        ("CASSANDRA_PASSWORD", creds["cassandra.password"].clone()),
    ];
    for file in ["worker.properties", "connector.properties", "routes.xml", "log4j2.xml"] {
        let mut text = std::fs::read_to_string(repo_root().join("bench/connect").join(file)).unwrap();
        for (k, v) in &vars {
            text = text.replace(&format!("${{{k}}}"), v);
        }
        std::fs::write(work.join(file), text).unwrap();
    }
    let log = std::fs::File::create(work.join("connect.log")).unwrap();
    // The JVM options of Kafka's own connect-standalone.sh (KAFKA_HEAP_OPTS and
    // KAFKA_JVM_PERFORMANCE_OPTS defaults).
    let mut java = tokio::process::Command::new("java")
        .args(["-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"])
        .args(["-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"])
        .arg(format!("-Dlog4j2.configurationFile={}", work.join("log4j2.xml").display()))
        .arg("-cp")
        .arg(format!("{worker}/*"))
        .args(["org.apache.kafka.connect.cli.ConnectStandalone", "worker.properties", "connector.properties"])
        .current_dir(&work)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("java (stack/scripts/install-deps.sh installs it)");
    let pid = java.id().unwrap();
    let log_tail = || tributary_tests::tail(&work.join("connect.log"), 30);
    let first_row = format!("SELECT station FROM {keyspace}.{table} LIMIT 1");
    let start = Instant::now();
    let (started, cpu_start) = loop {
        let rows = session.query_unpaged(first_row.as_str(), &[]).await.unwrap().into_rows_result().unwrap();
        if rows.rows_num() > 0 {
            break (Instant::now(), proc_usage(pid).0);
        }
        assert!(java.try_wait().unwrap().is_none(), "Kafka Connect exited:\n{}", log_tail());
        assert!(start.elapsed() < Duration::from_secs(600), "Kafka Connect wrote nothing:\n{}", log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let offsets: BaseConsumer =
        tenant_kafka_settings(tenant).await.client_config().set("group.id", &group).create().unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        partitions.add_partition(&format!("{tenant}.data"), p);
    }
    loop {
        let committed = offsets.committed_offsets(partitions.clone(), Duration::from_secs(10)).unwrap();
        let done: i64 = committed.elements().iter().filter_map(|e| e.offset().to_raw()).filter(|o| *o > 0).sum();
        if done as u64 >= records {
            break;
        }
        assert!(java.try_wait().unwrap().is_none(), "Kafka Connect exited:\n{}", log_tail());
        assert!(start.elapsed() < Duration::from_secs(3600), "Kafka Connect stalled at {done}:\n{}", log_tail());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let (cpu, rss) = proc_usage(pid);
    let _ = java.start_kill();
    let _ = java.wait().await;
    // Not timed: every committed record is in the table.
    let count: i64 = session
        .query_unpaged(format!("SELECT COUNT(*) FROM {keyspace}.{table}"), &[])
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row::<(i64,)>()
        .unwrap()
        .0;
    assert!(
        count as u64 >= records,
        "Kafka Connect committed {records} records but its table {keyspace}.{table} misses rows:\n{}",
        log_tail()
    );
    let _ = std::fs::remove_dir_all(&work);
    Sample {
        bench: "sink",
        side: "kafka-connect-camel-cassandra",
        rep,
        records,
        seconds,
        cpu_seconds: cpu.zip(cpu_start).map(|(end, start)| end - start),
        peak_rss_kib: rss,
        note: format!(
            "Connect standalone, 1 task, camel-kafka-connector 0.11.0; first row to last committed offset (time and CPU); {:.1} s including JVM start",
            start.elapsed().as_secs_f64()
        ),
    }
}

// ------------------------------------------------------------------------------ topics

async fn topics_bench(args: &Args) {
    let _operator = operator().await;
    let admin = kafka_admin();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(120)));
    let limits =
        format!("  kafka:\n    limits:\n      maxTopics: {}\n      maxPartitions: {}\n", args.count, args.count * 3);
    for rep in 0..args.reps {
        let order = if rep % 2 == 0 { ["operator", "raw"] } else { ["raw", "operator"] };
        for side in order {
            let prefix = unique("bt");
            let names: Vec<String> = (0..args.count).map(|i| format!("t{i}")).collect();
            let mut applied = 0.0;
            let seconds = if side == "raw" {
                let full: Vec<String> = names.iter().map(|n| format!("{prefix}.{n}")).collect();
                let start = Instant::now();
                let new: Vec<NewTopic> = full.iter().map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(3))).collect();
                for batch in new.chunks(100) {
                    for r in admin.create_topics(batch, &opts).await.unwrap() {
                        r.unwrap();
                    }
                }
                let seconds = start.elapsed().as_secs_f64();
                for batch in full.chunks(100) {
                    let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                    let _ = admin.delete_topics(&refs, &opts).await;
                }
                seconds
            } else {
                ready_tenant(&prefix, &limits).await;
                let api: Api<Topic> = Api::namespaced(client().await, &prefix);
                let start = Instant::now();
                futures::stream::iter(names.iter())
                    .map(|n| {
                        let topic: Topic = serde_json::from_value(json!({
                            "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic",
                            "metadata": {"name": n, "namespace": prefix},
                            "spec": {"partitions": 1, "replicationFactor": 3, "deletionPolicy": "Delete"}}))
                        .unwrap();
                        let api = api.clone();
                        async move { api.create(&PostParams::default(), &topic).await.map(|_| ()) }
                    })
                    .buffer_unordered(16)
                    .try_collect::<Vec<_>>()
                    .await
                    .unwrap();
                applied = start.elapsed().as_secs_f64();
                wait_until("every Topic Ready", Duration::from_secs(1800), || async {
                    let list = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
                    let ready =
                        list.items.iter().filter(|t| ready_true(t.status.as_ref().map(|s| &s.conditions))).count();
                    if ready == args.count { Ok(()) } else { Err(format!("{ready}/{} ready", args.count)) }
                })
                .await;
                let seconds = start.elapsed().as_secs_f64();
                // Deletion (Delete policy) removes them from Kafka again; not timed.
                let _ = api.delete_collection(&DeleteParams::default(), &ListParams::default()).await;
                wait_until("every Topic deleted", Duration::from_secs(1800), || async {
                    let n = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
                    if n == 0 { Ok(()) } else { Err(format!("{n} left")) }
                })
                .await;
                seconds
            };
            emit(
                &args.out,
                &Sample {
                    bench: "topics",
                    side: if side == "raw" { "raw-batched-createtopics" } else { "operator-topic-objects" },
                    rep,
                    records: args.count as u64,
                    seconds,
                    note: if side == "raw" {
                        "1 partition, RF 3 each; CreateTopics in batches of 100".into()
                    } else {
                        format!("1 partition, RF 3 each; the {} creates took {applied:.2} s of it", args.count)
                    },
                    ..Default::default()
                },
            );
        }
    }
}

fn ready_true(conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>) -> bool {
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

// ------------------------------------------------------------------------------ tenants

/// Topics per tenant in the steady-state measurement (100 tenants: 1,000 topics).
const TOPICS_PER_TENANT: usize = 10;

async fn tenants_bench(args: &Args) {
    let operator = operator().await;
    let api: Api<Tenant> = Api::all(client().await);
    let names: Vec<String> = (0..args.count).map(|_| unique("bo")).collect();
    let start = Instant::now();
    let mut created = std::collections::HashMap::new();
    for n in &names {
        let tenant: Tenant = serde_json::from_value(json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": n},
            "spec": {"deletionPolicy": "Delete", "kafka": {"quotas": {"producerByteRate": 1048576}}}}))
        .unwrap();
        api.create(&PostParams::default(), &tenant).await.unwrap();
        created.insert(n.clone(), start.elapsed());
    }
    let mut latency = std::collections::HashMap::new();
    while latency.len() < names.len() {
        assert!(start.elapsed() < Duration::from_secs(1800), "tenants not Ready: {}/{}", latency.len(), names.len());
        for t in api.list(&ListParams::default()).await.unwrap().items {
            let name = t.name_any();
            if created.contains_key(&name)
                && !latency.contains_key(&name)
                && ready_true(t.status.as_ref().map(|s| &s.conditions))
            {
                latency.insert(name.clone(), (start.elapsed() - created[&name]).as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, seconds) in &latency {
        emit(
            &args.out,
            &Sample {
                bench: "onboarding",
                side: "tenant-apply-to-ready",
                records: 1,
                seconds: *seconds,
                note: name.clone(),
                ..Default::default()
            },
        );
    }
    // Scale for the steady state: TOPICS_PER_TENANT Topics and one CassandraSink per tenant
    // (100 tenants: 1,000 topics, 100 sinks), all converged before the measurement.
    let topics_api: Api<Topic> = Api::all(client().await);
    let sinks_api: Api<CassandraSink> = Api::all(client().await);
    let setup = Instant::now();
    for n in &names {
        for i in 0..TOPICS_PER_TENANT {
            let name = if i == 0 { "data".to_string() } else { format!("t{i}") };
            let topic: Topic = serde_json::from_value(json!({
                "apiVersion": "tributary.dev/v1alpha1", "kind": "Topic", "metadata": {"name": name, "namespace": n},
                "spec": {"partitions": 1, "replicationFactor": 3, "deletionPolicy": "Delete"}}))
            .unwrap();
            Api::<Topic>::namespaced(client().await, n).create(&PostParams::default(), &topic).await.unwrap();
        }
        let sink: CassandraSink = serde_json::from_value(json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "CassandraSink",
            "metadata": {"name": "readings", "namespace": n}, "spec": water_spec("readings")}))
        .unwrap();
        Api::<CassandraSink>::namespaced(client().await, n).create(&PostParams::default(), &sink).await.unwrap();
    }
    let ours = |ns: Option<String>| ns.is_some_and(|ns| created.contains_key(&ns));
    wait_until("every Topic Ready and every sink's mapping valid", Duration::from_secs(1800), || async {
        let topics = topics_api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let ready = topics
            .iter()
            .filter(|t| ours(t.namespace()) && ready_true(t.status.as_ref().map(|s| &s.conditions)))
            .count();
        let sinks = sinks_api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let valid = sinks
            .iter()
            .filter(|s| ours(s.namespace()))
            .filter(|s| {
                s.status
                    .as_ref()
                    .is_some_and(|st| st.conditions.iter().any(|c| c.type_ == "MappingValid" && c.status == "True"))
            })
            .count();
        let want = (names.len() * TOPICS_PER_TENANT, names.len());
        if (ready, valid) == want {
            Ok(())
        } else {
            Err(format!("{ready}/{} topics Ready, {valid}/{} sinks with a valid mapping", want.0, want.1))
        }
    })
    .await;
    println!(
        "[bench] {} topics and {} sinks converged in {:.1} s",
        names.len() * TOPICS_PER_TENANT,
        names.len(),
        setup.elapsed().as_secs_f64()
    );

    // Steady state: everything converged; two full resyncs (30 s each) with nothing to change.
    let writes = || async { operator.metric("tributary_external_writes_total").await.unwrap_or(0.0) };
    let (w0, (c0, _)) = (writes().await, proc_usage(operator.pid));
    tokio::time::sleep(Duration::from_secs(66)).await; // two resync periods (+10 % jitter): a measurement window, not a wait for a condition
    let (w1, (c1, rss)) = (writes().await, proc_usage(operator.pid));
    let now_rss = status_kib(operator.pid, "VmRSS").unwrap_or(0);
    let objects = api.list(&ListParams::default()).await.unwrap().items.len();
    let topic_count = topics_api.list(&ListParams::default()).await.unwrap().items.len();
    let sink_count = sinks_api.list(&ListParams::default()).await.unwrap().items.len();
    emit(
        &args.out,
        &Sample {
            bench: "steady",
            side: "operator-per-resync",
            records: objects as u64,
            seconds: 30.0,
            cpu_seconds: c1.zip(c0).map(|(a, b)| (a - b) / 2.0),
            peak_rss_kib: rss,
            note: format!(
                "{} Kafka/Cassandra write calls in 2 resyncs of {objects} tenants, {topic_count} topics, {sink_count} sinks; RSS at the end {} MiB",
                w1 - w0,
                now_rss / 1024
            ),
            ..Default::default()
        },
    );
    for n in &names {
        let _ = api.delete(n, &DeleteParams::default()).await;
    }
}
