//! The seed pipeline as the end-to-end tests drive it: produce a seed dataset with a
//! tenant's credentials, wait until a sink's group has committed everything, and compare a
//! table with the generator row by row.

use crate::{ClientConfigOf, CreateClient};
use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use scylla::client::session::Session;
use scylla::value::{CqlDecimal, CqlTimestamp};
use tributary_sink::seed::{self, Dataset, is_malformed};

use crate::kafka::group_lag;
use crate::operator::workspace_binary;
use crate::{cassandra_admin, unique, wait_until};

pub const MALFORMED_EVERY: u64 = 1000;

/// The water example's Topic and CassandraSink (`examples/water`, applied unchanged but
/// for the namespace) in the tenant's namespace, with `replicas` sink replicas (2 in the
/// example).
pub fn apply_water_example(tenant: &str, replicas: i32) {
    let dir = crate::repo_root().join("examples/water");
    for file in ["topic.yaml", "sink.yaml"] {
        let yaml = std::fs::read_to_string(dir.join(file)).unwrap();
        crate::kubectl_apply(
            &yaml
                .replace("namespace: water", &format!("namespace: {tenant}"))
                .replace("replicas: 2", &format!("replicas: {replicas}")),
        );
    }
}

/// `examples/water/FILE` with the tenant renamed, so a test provisions its own tenant and
/// never meets the demo's.
pub fn water_example(file: &str, tenant: &str) -> String {
    std::fs::read_to_string(crate::repo_root().join("examples/water").join(file))
        .unwrap()
        .replace("  name: water\n", &format!("  name: {tenant}\n"))
        .replace("  namespace: water\n", &format!("  namespace: {tenant}\n"))
}

/// The whole water example under the name `tenant`, applied as a user would: the Tenant,
/// then (once it is Ready) its Topic and CassandraSink, until both are Ready.
pub fn apply_water_example_ready(tenant: &str) {
    crate::kubectl_apply(&water_example("tenant.yaml", tenant));
    crate::kubectl_wait_ready(&[&format!("tenant/{tenant}")]);
    crate::kubectl_apply(&water_example("topic.yaml", tenant));
    crate::kubectl_apply(&water_example("sink.yaml", tenant));
    crate::kubectl_wait_ready(&["-n", tenant, "topic/data", "cassandrasink/readings"]);
}

pub fn records() -> u64 {
    std::env::var("TRIBUTARY_E2E_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

pub async fn secret(namespace: &str, name: &str) -> BTreeMap<String, String> {
    let api: Api<Secret> = Api::namespaced(Client::try_default().await.unwrap(), namespace);
    let data = api.get(name).await.unwrap().data.unwrap_or_default();
    data.into_iter().map(|(k, v)| (k, String::from_utf8(v.0).unwrap())).collect()
}

/// Waits until the operator wrote the tenant's `tributary-credentials` Secret (its namespace
/// may not exist yet), and returns its data.
pub async fn wait_credentials(tenant: &str) -> BTreeMap<String, String> {
    let api: Api<Secret> = Api::namespaced(Client::try_default().await.unwrap(), tenant);
    let found =
        wait_until(&format!("Tenant {tenant}'s Secret tributary-credentials"), Duration::from_secs(90), || async {
            api.get_opt("tributary-credentials")
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "not written yet".to_string())
        })
        .await;
    found.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8(v.0).unwrap())).collect()
}

/// Runs `tributary-seed` with the tenant's credentials, as its team would, into the
/// tenant's topic `data`.
pub async fn produce(tenant: &str, dataset: &str, run: &str, count: u64) {
    produce_paced(tenant, dataset, run, count, 0, MALFORMED_EVERY).await
}

/// Like `produce`, at most `rate` records per second (0: as fast as Kafka takes them), so
/// that records are still flowing while a test injects a fault, and one in
/// `malformed_every` records malformed (0: none).
pub async fn produce_paced(tenant: &str, dataset: &str, run: &str, count: u64, rate: u64, malformed_every: u64) {
    let creds = secret(tenant, "tributary-credentials").await;
    let status = tokio::process::Command::new(workspace_binary("tributary-seed"))
        .args(["--dataset", dataset, "--topic", &format!("{tenant}.data"), "--run", run])
        .args(["--count", &count.to_string(), "--malformed-every", &malformed_every.to_string()])
        .args(["--rate", &rate.to_string()])
        .env("KAFKA_BOOTSTRAP", &creds["kafka.bootstrap.servers"])
        .env("KAFKA_USERNAME", &creds["kafka.username"])
        .env("KAFKA_PASSWORD", &creds["kafka.password"])
        .env("KAFKA_SECURITY_PROTOCOL", &creds["kafka.security.protocol"])
        .env("KAFKA_SASL_MECHANISM", &creds["kafka.sasl.mechanism"])
        .envs(creds.get("kafka.ca.crt").map(|ca| ("KAFKA_CA_PEM", ca)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // A test that stops producing early drops this future (aborts its task): the producer goes too.
        .kill_on_drop(true)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "tributary-seed for {tenant} failed: {status}");
}

pub async fn cassandra() -> Session {
    let (user, password) = cassandra_admin();
    crate::cassandra_session(&user, &password).await.unwrap()
}

/// The rows `cql` selects, as `T` (a tuple of the selected columns).
pub async fn select<T>(session: &Session, cql: &str) -> Result<Vec<T>, String>
where
    T: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
{
    let result = session.query_unpaged(cql, &[]).await.map_err(|e| e.to_string())?;
    let rows = result.into_rows_result().map_err(|e| e.to_string())?;
    rows.rows::<T>().map_err(|e| e.to_string())?.map(|r| r.map_err(|e| e.to_string())).collect()
}

/// How many keyspaces of that name Cassandra has (0 or 1), asked as the admin.
pub async fn keyspace_count(keyspace: &str) -> usize {
    cassandra()
        .await
        .query_unpaged("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?", (keyspace,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows_num()
}

/// Every row of the run in the table, as canonical text (one line per row).
pub async fn rows(session: &Session, dataset: Dataset, keyspace: &str, run: &str) -> Vec<String> {
    let prefix = format!("{run}-");
    let mut out = Vec::new();
    match dataset {
        Dataset::Water => {
            let query =
                format!("SELECT station, ts, ph, turbidity, temperature, conductivity FROM {keyspace}.readings");
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
            let query =
                format!("SELECT site, event_time, alarm_id, severity, code, value, tags FROM {keyspace}.alarms");
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
pub fn expected(dataset: Dataset, run: &str, count: u64) -> Vec<String> {
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
pub fn decimal_text(d: &CqlDecimal) -> String {
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
pub fn checksum(rows: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    rows.iter().fold(0u64, |acc, r| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        r.hash(&mut h);
        acc.wrapping_add(h.finish())
    })
}

/// One record read back from a dead-letter topic.
#[derive(Debug)]
pub struct DeadLetter {
    /// The `tributary.error` header.
    pub error: String,
    /// The `tributary.original.topic` header.
    pub topic: String,
    pub payload_bytes: usize,
}

/// The dead-lettered records whose key starts with `run`: key → what was dead-lettered.
pub async fn dead_letters(topic: &str, run: &str, want: usize) -> BTreeMap<String, DeadLetter> {
    let consumer: StreamConsumer = crate::kafka_admin_settings()
        .client_config()
        .set("group.id", unique("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create_client()
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
        let letter = DeadLetter {
            error: header("tributary.error"),
            topic: header("tributary.original.topic"),
            payload_bytes: message.payload().map_or(0, <[u8]>::len),
        };
        found.insert(key, letter);
    }
    found
}

pub async fn wait_drained(topic: &str, group: &str, at_least: i64) {
    wait_until(&format!("group {group} to commit everything in {topic}"), Duration::from_secs(600), || async {
        let (lag, total) = group_lag(topic, group)?;
        if lag == 0 && total >= at_least { Ok(()) } else { Err(format!("lag {lag}, {total} records in the topic")) }
    })
    .await;
}
