//! Avro records through a sink pod, their schemas in the stack's registry (Apicurio through
//! Confluent's API, with basic auth from a Secret in the tenant's namespace):
//! - records of schema v1, from an independent producer (librdkafka, the body encoded with
//!   apache-avro and the wire-format header by hand), land typed in their table;
//! - v2 adds a field with a default (the subject at BACKWARD accepts it): its records land
//!   with that column set, v1's rows keep it null, and the sink keeps running;
//! - a record naming an unknown schema id, one whose body does not decode, one not in the
//!   wire format, and one of an incompatible writer schema (its mapped field a string the
//!   double column cannot take) go to the dead-letter topic with the reason, and the sink
//!   stays Ready with no restart.

use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::{Record, Value as Avro};
use kube::Api;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tributary::api::CassandraSink;
use tributary_tests::kafka::producer;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::pipeline::{cassandra, dead_letters, select};
use tributary_tests::registry::Registry;
use tributary_tests::sink::SinkPods;
use tributary_tests::{kubectl, kubectl_apply, ready_tenant, tenant_kafka_settings, unique, wait_ready, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn record_schema(name: &str, fields: Value) -> Value {
    json!({ "type": "record", "name": name, "namespace": "dev.tributary.test", "fields": fields })
}

/// Confluent's wire format: a zero byte, the schema id (4 bytes, big-endian), the Avro body.
fn framed(id: u64, body: &[u8]) -> Vec<u8> {
    [&[0u8][..], &u32::try_from(id).unwrap().to_be_bytes(), body].concat()
}

fn encode(schema: &Schema, fields: &[(&str, Avro)]) -> Vec<u8> {
    let mut record = Record::new(schema).unwrap();
    for (name, value) in fields {
        record.put(name, value.clone());
    }
    apache_avro::to_avro_datum(schema, record).unwrap()
}

async fn send(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    producer
        .send(FutureRecord::to(topic).key(key).payload(payload), Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

#[tokio::test]
async fn avro_records_of_two_schema_versions_land_and_incompatible_ones_are_dead_lettered() {
    let registry = Registry::from_env();
    let url = std::env::var("SCHEMA_REGISTRY_URL").expect("SCHEMA_REGISTRY_URL (stack.sh env)");
    let user = std::env::var("SCHEMA_REGISTRY_USER").expect("SCHEMA_REGISTRY_USER (stack.sh env)");
    let password = std::env::var("SCHEMA_REGISTRY_PASSWORD").expect("SCHEMA_REGISTRY_PASSWORD (stack.sh env)");
    OperatorProcess::shared().await;
    let tenant = unique("avro");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let keyspace = tenant.replace('-', "_");
    let topic = format!("{tenant}.readings");
    let (subject, other_subject) = (format!("{topic}-value"), format!("{topic}-other-value"));
    let name = format!("Reading_{}", tenant.replace('-', "_"));

    kubectl_apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: registry-login\n  namespace: {tenant}\n\
         stringData:\n  username: {user}\n  password: {password}\n"
    ));
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: readings\n  namespace: {tenant}\n\
         spec:\n  partitions: 1\n"
    ));
    kubectl_apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: CassandraSink\nmetadata:\n  name: readings\n  namespace: {tenant}\n\
         spec:\n  topic: readings\n  replicas: 1\n  table: readings\n  format: Avro\n\
         \x20 avro: {{registryUrl: \"{url}\", credentialsSecret: registry-login}}\n  columns:\n\
         \x20 - {{name: station, type: text}}\n  - {{name: ts, type: timestamp}}\n  - {{name: value, type: double}}\n\
         \x20 - {{name: unit, type: text}}\n  - {{name: depth, type: double, field: pos.depth}}\n\
         \x20 partitionKey: [station]\n  consistency: One\n"
    ));

    // v1, and the subject at BACKWARD.
    let pos = json!({ "type": "record", "name": "Pos", "fields": [{ "name": "depth", "type": "double" }] });
    let v1 = record_schema(
        &name,
        json!([
            { "name": "station", "type": "string" },
            { "name": "ts", "type": { "type": "long", "logicalType": "timestamp-millis" } },
            { "name": "value", "type": "double" },
            { "name": "pos", "type": pos },
        ]),
    );
    let v1_id = registry.register(&subject, &v1).await;
    registry.ok("PUT", &format!("/config/{subject}"), Some(&json!({ "compatibility": "BACKWARD" }))).await;

    let sinks: Api<CassandraSink> = Api::namespaced(kube::Client::try_default().await.unwrap(), &tenant);
    let pods = SinkPods::running(&tenant, "tributary-sink-readings", 1).await;
    let producer = producer(&tenant_kafka_settings(&tenant).await);
    let v1_schema = Schema::parse(&v1).unwrap();
    let reading = |i: i64| -> Vec<(&str, Avro)> {
        vec![
            ("station", Avro::String(format!("st{i}"))),
            ("ts", Avro::TimestampMillis(1_767_225_600_000 + i)),
            ("value", Avro::Double(i as f64 + 0.5)),
            ("pos", Avro::Record(vec![("depth".into(), Avro::Double(i as f64 * 10.0))])),
        ]
    };
    for i in 0..5 {
        send(&producer, &topic, &format!("st{i}"), &framed(v1_id, &encode(&v1_schema, &reading(i)))).await;
    }

    // v2: a field with a default, compatible: the registry takes it as version 2.
    let mut v2 = v1.clone();
    v2["fields"].as_array_mut().unwrap().push(json!({ "name": "unit", "type": "string", "default": "celsius" }));
    let v2_id = registry.register(&subject, &v2).await;
    assert_ne!(v1_id, v2_id);
    let v2_schema = Schema::parse(&v2).unwrap();
    for i in 5..10 {
        let mut fields = reading(i);
        fields.push(("unit", Avro::String("kelvin".into())));
        send(&producer, &topic, &format!("st{i}"), &framed(v2_id, &encode(&v2_schema, &fields))).await;
    }

    let session = cassandra().await;
    let table = format!("{keyspace}.readings");
    let rows = wait_until("the 10 v1 and v2 readings in the table", WAIT, || async {
        let rows: Vec<(String, scylla::value::CqlTimestamp, f64, Option<String>, f64)> =
            select(&session, &format!("SELECT station, ts, value, unit, depth FROM {table}")).await?;
        if rows.len() == 10 { Ok(rows) } else { Err(format!("{} rows", rows.len())) }
    })
    .await;
    for (station, ts, value, unit, depth) in rows {
        let i: i64 = station.trim_start_matches("st").parse().unwrap();
        assert_eq!(ts.0, 1_767_225_600_000 + i, "{station}");
        assert_eq!(value, i as f64 + 0.5, "{station}");
        assert_eq!(depth, i as f64 * 10.0, "{station}");
        let want_unit = (i >= 5).then(|| "kelvin".to_string());
        assert_eq!(unit, want_unit, "{station}: v1 records leave unit null, v2 records set it");
    }

    // Records the sink cannot take: each dead-lettered with its reason.
    let run = unique("bad");
    let incompatible = record_schema(
        &format!("{name}_other"),
        json!([{ "name": "station", "type": "string" }, { "name": "value", "type": "string" }]),
    );
    let incompatible_id = registry.register(&other_subject, &incompatible).await;
    let incompatible_schema = Schema::parse(&incompatible).unwrap();
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("unknown-id", framed(2_000_000_000, &encode(&v1_schema, &reading(1)))),
        ("no-decode", framed(v1_id, &[0x08, b's', b't'])),
        ("not-wire", b"{\"station\": \"st1\"}".to_vec()),
        (
            "incompatible",
            framed(
                incompatible_id,
                &encode(
                    &incompatible_schema,
                    &[("station", Avro::String("st1".into())), ("value", Avro::String("high".into()))],
                ),
            ),
        ),
    ];
    for (what, payload) in &bad {
        send(&producer, &topic, &format!("{run}-{what}"), payload).await;
    }
    let letters = dead_letters(&format!("{tenant}.dlq.readings"), &run, bad.len()).await;
    let reason = |what: &str| letters.get(&format!("{run}-{what}")).map(|l| l.error.clone()).unwrap_or_default();
    assert!(reason("unknown-id").contains("schema id 2000000000 is unknown"), "{letters:?}");
    assert!(reason("no-decode").contains("does not decode"), "{letters:?}");
    assert!(reason("not-wire").contains("not Avro in the Confluent wire format"), "{letters:?}");
    assert!(reason("incompatible").contains("column value"), "{letters:?}");
    assert!(letters.values().all(|l| l.topic == topic), "{letters:?}");

    // And the sink keeps running: Ready, no restart, later records written.
    let mut fields = reading(42);
    fields.push(("unit", Avro::String("kelvin".into())));
    send(&producer, &topic, "st42", &framed(v2_id, &encode(&v2_schema, &fields))).await;
    wait_until("the record after the bad ones written", WAIT, || async {
        let rows: Vec<(String,)> =
            select(&session, &format!("SELECT station FROM {table} WHERE station = 'st42'")).await?;
        if rows.len() == 1 { Ok(()) } else { Err("not yet".to_string()) }
    })
    .await;
    wait_ready(&sinks, "readings", "True", "Running").await;
    assert_eq!(pods.restarts().await, 0, "{}", pods.logs().await);

    kubectl(&["delete", "cassandrasink", "readings", "-n", &tenant, "--timeout=120s"]);
    for s in [&subject, &other_subject] {
        registry.delete_subject(s).await.unwrap();
    }
}
