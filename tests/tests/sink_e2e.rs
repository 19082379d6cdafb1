//! The seeds' pipeline end to end: the examples (water and bts, unchanged) applied, the
//! operator writes each sink's Deployment, the sinks run as local processes from exactly
//! what the operator wrote, `tributary-seed` produces 100,000 records per tenant (one in a
//! thousand malformed) with the tenant's own credentials, and one sink is killed with
//! `kill -9` mid-stream. Then every produced record is compared with Cassandra row by row,
//! and every malformed one must be in the dead-letter topic with its error headers.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::value::{CqlDecimal, CqlTimestamp};
use tributary::external::kafka::ClientSettings;
use tributary::seed::{self, Dataset, is_malformed};
use tributary_tests::kafka::{error_code, group_lag};
use tributary_tests::operator::{OperatorProcess, workspace_binary};
use tributary_tests::sink::SinkProcess;
use tributary_tests::{cassandra_admin, cassandra_contact, kubectl, repo_root, unique, wait_until};

const MALFORMED_EVERY: u64 = 1000;

fn records() -> u64 {
    std::env::var("TRIBUTARY_E2E_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

async fn secret(namespace: &str, name: &str) -> BTreeMap<String, String> {
    let api: Api<Secret> = Api::namespaced(Client::try_default().await.unwrap(), namespace);
    let data = api.get(name).await.unwrap().data.unwrap_or_default();
    data.into_iter().map(|(k, v)| (k, String::from_utf8(v.0).unwrap())).collect()
}

/// Runs `tributary-seed` with the tenant's credentials, as its team would.
async fn produce(tenant: &str, dataset: &str, run: &str, count: u64) {
    let creds = secret(tenant, "tributary-credentials").await;
    let status = tokio::process::Command::new(workspace_binary("tributary-seed"))
        .args(["--dataset", dataset, "--topic", &format!("{tenant}.data"), "--run", run])
        .args(["--count", &count.to_string(), "--malformed-every", &MALFORMED_EVERY.to_string()])
        .env("KAFKA_BOOTSTRAP", &creds["kafka.bootstrap.servers"])
        .env("KAFKA_USERNAME", &creds["kafka.username"])
        .env("KAFKA_PASSWORD", &creds["kafka.password"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "tributary-seed for {tenant} failed: {status}");
}

async fn cassandra() -> Session {
    let (user, password) = cassandra_admin();
    SessionBuilder::new().known_node(cassandra_contact()).user(user, password).build().await.unwrap()
}

/// Every row of the run in the table, as canonical text (one line per row).
async fn rows(session: &Session, dataset: Dataset, run: &str) -> Vec<String> {
    let prefix = format!("{run}-");
    let mut out = Vec::new();
    match dataset {
        Dataset::Water => {
            let query = "SELECT station, ts, ph, turbidity, temperature, conductivity FROM water.readings";
            type Row = (String, CqlTimestamp, Option<f64>, Option<f64>, Option<f64>, Option<i32>);
            let mut stream = session.query_iter(query, &[]).await.unwrap().rows_stream::<Row>().unwrap();
            while let Some(row) = stream.next().await {
                let (station, ts, ph, turbidity, temperature, conductivity) = row.unwrap();
                if station.starts_with(&prefix) {
                    out.push(format!(
                        "{station}|{}|{}|{}|{}|{}",
                        ts.0,
                        ph.unwrap(),
                        turbidity.unwrap(),
                        temperature.unwrap(),
                        conductivity.unwrap()
                    ));
                }
            }
        }
        Dataset::Bts => {
            let query = "SELECT site, event_time, alarm_id, severity, code, value, tags FROM bts.alarms";
            type Row = (String, CqlTimestamp, uuid::Uuid, String, i32, CqlDecimal, BTreeMap<String, String>);
            let mut stream = session.query_iter(query, &[]).await.unwrap().rows_stream::<Row>().unwrap();
            while let Some(row) = stream.next().await {
                let (site, time, id, severity, code, value, tags) = row.unwrap();
                if site.starts_with(&prefix) {
                    out.push(format!(
                        "{site}|{}|{id}|{severity}|{code}|{}|{}",
                        time.0,
                        decimal_text(&value),
                        tags["region"]
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// The rows the run must have produced, in the same canonical text.
fn expected(dataset: Dataset, run: &str, count: u64) -> Vec<String> {
    let mut out: Vec<String> = (0..count)
        .filter(|i| !is_malformed(*i, MALFORMED_EVERY))
        .map(|i| match dataset {
            Dataset::Water => {
                let r = seed::water(run, i);
                format!("{}|{}|{}|{}|{}|{}", r.station, r.ts_ms, r.ph, r.turbidity, r.temperature, r.conductivity)
            }
            Dataset::Bts => {
                let a = seed::bts(run, i);
                format!(
                    "{}|{}|{}|{}|{}|{}|{}",
                    a.site, a.event_time_ms, a.alarm_id, a.severity, a.code, a.value, a.region
                )
            }
        })
        .collect();
    out.sort();
    out
}

/// A CQL decimal as plain text with its scale (`1205`, scale 2 → `12.05`).
fn decimal_text(d: &CqlDecimal) -> String {
    let (bytes, scale) = d.as_signed_be_bytes_slice_and_exponent();
    let mut v: i128 = if bytes.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
    for b in bytes {
        v = (v << 8) | i128::from(*b);
    }
    let digits = v.abs().to_string();
    let scale = scale.max(0) as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") }
}

/// An order-independent checksum of the canonical rows.
fn checksum(rows: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    rows.iter().fold(0u64, |acc, r| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        r.hash(&mut h);
        acc.wrapping_add(h.finish())
    })
}

/// The dead-lettered records of the run: key → (error, original topic).
async fn dead_letters(topic: &str, run: &str, want: usize) -> BTreeMap<String, (String, String)> {
    let consumer: StreamConsumer = tributary_tests::kafka_admin_settings()
        .client_config()
        .set("group.id", unique("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut found = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while found.len() < want {
        let Ok(message) = tokio::time::timeout_at(deadline, consumer.recv()).await else { break };
        let Ok(message) = message else { continue };
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        if !key.starts_with(run) {
            continue;
        }
        let headers = message.headers().expect("dead letters carry headers");
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_else(|| panic!("dead letter {key} lacks header {name}"))
        };
        assert!(header("tributary.original.offset").parse::<i64>().is_ok());
        assert!(header("tributary.original.partition").parse::<i32>().is_ok());
        let value = (header("tributary.error"), header("tributary.original.topic"));
        found.insert(key, value);
    }
    found
}

async fn wait_drained(topic: &str, group: &str, at_least: i64) {
    wait_until(&format!("group {group} to commit everything in {topic}"), Duration::from_secs(600), || async {
        let (lag, total) = group_lag(topic, group)?;
        if lag == 0 && total >= at_least { Ok(()) } else { Err(format!("lag {lag}, {total} records in the topic")) }
    })
    .await;
}

#[tokio::test]
async fn the_seed_tenants_stream_every_record_into_their_tables_even_through_a_kill_9() {
    OperatorProcess::shared().await;
    let examples = repo_root().join("examples");
    for tenant in ["water", "bts"] {
        kubectl(&["apply", "-f", examples.join(tenant).join("tenant.yaml").to_str().unwrap()]);
    }
    for tenant in ["water", "bts"] {
        tributary_tests::wait_until(&format!("namespace {tenant}"), Duration::from_secs(60), || async {
            secret(tenant, "tributary-credentials").await;
            Ok::<_, String>(())
        })
        .await;
        let dir = examples.join(tenant);
        kubectl(&[
            "apply",
            "-f",
            dir.join("topic.yaml").to_str().unwrap(),
            "-f",
            dir.join("sink.yaml").to_str().unwrap(),
        ]);
    }
    let water_sinks = [
        SinkProcess::start("water", "tributary-sink-readings").await,
        SinkProcess::start("water", "tributary-sink-readings").await,
    ];
    let bts_sinks = [
        SinkProcess::start("bts", "tributary-sink-alarms").await,
        SinkProcess::start("bts", "tributary-sink-alarms").await,
    ];

    let count = records();
    let run = unique("e2e");
    let producing = {
        let run = run.clone();
        tokio::spawn(async move {
            futures::future::join(produce("water", "water", &run, count), produce("bts", "bts", &run, count)).await
        })
    };

    // Mid-stream, one water sink dies without any chance to commit, and a new one starts.
    let victim = &water_sinks[0];
    wait_until("the first water sink to have written 10% of the records", Duration::from_secs(300), || async {
        let written = victim.metric("tributary_sink_records_written_total").await;
        if written >= count as f64 / 10.0 { Ok(()) } else { Err(format!("{written}")) }
    })
    .await;
    victim.kill9();
    let replacement = SinkProcess::start("water", "tributary-sink-readings").await;
    producing.await.unwrap();

    let per_tenant = count as i64;
    wait_drained("water.data", "water.sink.readings", per_tenant).await;
    wait_drained("bts.data", "bts.sink.alarms", per_tenant).await;

    let session = cassandra().await;
    for (dataset, name) in [(Dataset::Water, "water"), (Dataset::Bts, "bts")] {
        let want = expected(dataset, &run, count);
        let got = rows(&session, dataset, &run).await;
        let missing: Vec<&String> = want.iter().filter(|r| got.binary_search(r).is_err()).take(3).collect();
        let extra: Vec<&String> = got.iter().filter(|r| want.binary_search(r).is_err()).take(3).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{name}: missing e.g. {missing:?}, unexpected e.g. {extra:?}");
        assert_eq!((got.len(), checksum(&got)), (want.len(), checksum(&want)), "{name}: count and checksum");

        let malformed = (count / MALFORMED_EVERY) as usize;
        let letters = dead_letters(
            &format!("{name}.dlq.{}", if name == "water" { "readings" } else { "alarms" }),
            &run,
            malformed,
        )
        .await;
        assert_eq!(letters.len(), malformed, "{name}: every malformed record is in the dead-letter topic");
        for (key, (error, topic)) in &letters {
            assert_eq!(topic, &format!("{name}.data"), "{key}");
            assert!(error.starts_with("not JSON") || error.starts_with("column "), "{key}: {error}");
        }
    }

    for sink in water_sinks.iter().skip(1).chain(&bts_sinks).chain([&replacement]) {
        assert!(sink.alive(), "sink died: {}", sink.log_tail());
        sink.stop().await;
    }
    // A sink's credentials are good for its own topic only (checked with the sinks stopped:
    // the probe joins the water sink's own group).
    let water_sink = secret("water", "tributary-sink-readings").await;
    let settings = ClientSettings::new(
        tributary_tests::kafka_bootstrap(),
        &water_sink["kafka.username"],
        &water_sink["kafka.password"],
    );
    let thief = tributary_tests::kafka::consumer(&settings, "water.sink.readings");
    let err = tributary_tests::kafka::consume(&thief, "bts.data", 1, Duration::from_secs(30))
        .await
        .expect_err("bts.data is not the water sink's");
    assert_eq!(error_code(&err), Some(rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed), "{err}");
}
