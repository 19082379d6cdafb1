//! The sink comparisons: one sink replica against a raw Cassandra loop, a bare consumer,
//! the seeds' Python consumer and Kafka Connect.

use super::*;
use tributary_tests::{ClientConfigOf, CreateClient};

// ------------------------------------------------------------------------------ sink

/// Partitions of the topic the sink comparisons read.
const PARTITIONS: i32 = 3;

/// The water example's CassandraSink spec, writing to `table` with one replica.
pub(crate) fn water_spec(table: &str) -> tributary::api::CassandraSinkSpec {
    let text = std::fs::read_to_string(repo_root().join("examples/water/sink.yaml")).unwrap();
    let sink: CassandraSink = serde_saphyr::from_str(&text).unwrap();
    let mut spec = sink.spec;
    spec.table = table.to_string();
    spec.replicas = 1;
    spec
}

pub(crate) async fn sink_bench(args: &Args) {
    let _operator = operator().await;
    let tenant = unique("bench");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
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
    // The raw loop logs in as the tenant, as the sink does: with the stack's auth caches off
    // (a grant or password change takes effect at once), each request of a tenant role
    // reads its roles and permissions, which the superuser skips. The superuser's loop runs
    // beside it (`raw-superuser`) and shows that cost.
    let tenant_session = tributary_tests::cassandra_session(&creds["cassandra.username"], &creds["cassandra.password"])
        .await
        .expect("a Cassandra session with the tenant's credentials");
    let superuser_session = cassandra().await;
    let columns = mapping.column_names().join(", ");
    let marks = vec!["?"; mapping.column_names().len()].join(", ");

    let raw = |session: &'static str, table: String, concurrency: usize, count: usize| {
        let session = if session == "tenant" { &tenant_session } else { &superuser_session };
        let (rows, admin) = (&rows, &superuser_session);
        let (keyspace, columns, marks) = (&keyspace, &columns, &marks);
        async move {
            // The table as the operator makes a sink's (a tenant role writes rows, not schema).
            admin.query_unpaged(create_table_cql(keyspace, &water_spec(&table)), &[]).await.unwrap();
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
        let t = raw("tenant", format!("warm_{c}"), c, warm).await;
        println!("[bench] raw loop warm-up: concurrency {c}: {:.0} rows/s", warm as f64 / t);
        if t < best.1 {
            best = (c, t);
        }
    }
    let concurrency = best.0;

    let sinks: Api<CassandraSink> = Api::namespaced(client().await, &tenant);
    for rep in 0..args.reps {
        let order: Vec<&str> = if rep % 2 == 0 {
            vec!["raw", "raw-superuser", "sink", "connect", "consumer", "python"]
        } else {
            vec!["python", "consumer", "connect", "sink", "raw-superuser", "raw"]
        };
        for side in order.into_iter().filter(|s| args.sides.iter().any(|w| w == s)) {
            match side {
                "raw" | "raw-superuser" => {
                    let (login, side, who) = if side == "raw" {
                        ("tenant", "raw-cassandra-loop", "as the tenant, like the sink")
                    } else {
                        ("superuser", "raw-cassandra-loop-superuser", "as the stack's superuser")
                    };
                    let seconds =
                        raw(login, format!("{}_{rep}", side.replace('-', "_")), concurrency, rows.len()).await;
                    emit(
                        &args.out,
                        &Sample {
                            bench: "sink",
                            side,
                            rep,
                            records: args.records,
                            seconds,
                            note: format!("scylla driver, prepared INSERT, {concurrency} in flight, {who}"),
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
                        .create_client()
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
                    superuser_session
                        .query_unpaged(create_table_cql(&keyspace, &water_spec(&table)), &[])
                        .await
                        .unwrap();
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
        ("KAFKA_CA_FILE", env("KAFKA_CA_FILE")),
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
        tenant_kafka_settings(tenant).await.client_config().set("group.id", &group).create_client().unwrap();
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
