//! The stack's schema registry (Apicurio Registry, `SCHEMA_REGISTRY_URL`) serves the part of
//! Confluent's Schema Registry API that Avro producers and a sink reading the Confluent wire
//! format use: register a schema under a subject and get its id, read a schema back by that id
//! (what a sink does for each new id in a record's header), versions of a subject, and a
//! subject's compatibility level that refuses an incompatible version. Every call needs the
//! registry's user (HTTP basic auth). Schemas and their ids outlive a restart of the registry.

use serde_json::{Value, json};
use tokio::sync::RwLock;
use tributary_tests::registry::{Registry, schema_body};
use tributary_tests::{stack_ctl, unique};

/// The restart test holds it for writing; the others for reading, so none meets the registry down.
static UP: RwLock<()> = RwLock::const_new(());

/// An Avro record schema named `name` with `fields`.
fn record(name: &str, fields: Value) -> Value {
    json!({ "type": "record", "name": name, "namespace": "dev.tributary.test", "fields": fields })
}

#[tokio::test]
async fn registry_refuses_calls_without_its_password() {
    let _up = UP.read().await;
    let anonymous = Registry::anonymous();
    let answer = anonymous.call("GET", "/subjects", None).await.unwrap();
    assert_eq!(answer.status, 401, "no credentials: {}", answer.body);
    let wrong = Registry::anonymous().with_login("registry", "definitely-wrong");
    let answer = wrong.call("GET", "/subjects", None).await.unwrap();
    assert_eq!(answer.status, 401, "a wrong password: {}", answer.body);
    let subjects = Registry::from_env().ok("GET", "/subjects", None).await;
    assert!(subjects.is_array(), "the subjects, as the registry's user: {subjects}");
}

#[tokio::test]
async fn registry_keeps_avro_schemas_by_id_and_refuses_incompatible_versions() {
    let _up = UP.read().await;
    let registry = Registry::from_env();
    // A subject of Confluent's default naming (`<topic>-value`); its record's name is unique
    // too, so that its schemas are new to the registry (which gives equal schemas one id).
    let topic = unique("readings");
    let subject = format!("{topic}-value");
    let name = format!("Reading_{}", topic.replace('-', "_"));
    let v1 = record(&name, json!([{ "name": "station", "type": "string" }, { "name": "value", "type": "double" }]));
    // Compatible under BACKWARD: the new field has a default, so a reader of v2 reads v1's records.
    let v2 = record(
        &name,
        json!([
            { "name": "station", "type": "string" },
            { "name": "value", "type": "double" },
            { "name": "unit", "type": "string", "default": "celsius" }
        ]),
    );
    // Incompatible under BACKWARD: a new field without a default, which v1's records lack.
    let v3 = record(
        &name,
        json!([
            { "name": "station", "type": "string" },
            { "name": "value", "type": "double" },
            { "name": "unit", "type": "string", "default": "celsius" },
            { "name": "sensor", "type": "string" }
        ]),
    );

    // Register v1 and read it back by its id, as a sink does with the id in a record's header.
    let id1 = registry.register(&subject, &v1).await;
    assert_eq!(registry.register(&subject, &v1).await, id1, "registering the same schema again gives its id");
    let by_id = registry.ok("GET", &format!("/schemas/ids/{id1}"), None).await;
    let text = by_id["schema"].as_str().unwrap_or_else(|| panic!("no schema in {by_id}"));
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), v1, "GET /schemas/ids/{id1}");
    assert!(
        by_id.get("schemaType").is_none_or(|t| t == "AVRO"),
        "an Avro schema's type is absent (Confluent's default) or AVRO: {by_id}"
    );
    let missing = registry.call("GET", "/schemas/ids/2147483647", None).await.unwrap();
    assert_eq!(missing.status, 404, "an unknown id: {}", missing.body);
    assert_eq!(missing.json()["error_code"], 40403, "Confluent's code for an unknown schema: {}", missing.body);

    // The subject's compatibility level.
    let set = registry.ok("PUT", &format!("/config/{subject}"), Some(&json!({ "compatibility": "BACKWARD" }))).await;
    assert_eq!(set["compatibility"], "BACKWARD", "PUT /config/{subject}: {set}");
    let config = registry.ok("GET", &format!("/config/{subject}"), None).await;
    assert_eq!(config["compatibilityLevel"], "BACKWARD", "GET /config/{subject}: {config}");

    // A compatible second version.
    let check = registry
        .ok("POST", &format!("/compatibility/subjects/{subject}/versions/latest"), Some(&schema_body(&v2)))
        .await;
    assert_eq!(check["is_compatible"], true, "v2 against v1: {check}");
    let id2 = registry.register(&subject, &v2).await;
    assert_ne!(id2, id1, "a new schema gets a new id");
    let versions = registry.ok("GET", &format!("/subjects/{subject}/versions"), None).await;
    assert_eq!(versions, json!([1, 2]), "GET /subjects/{subject}/versions");
    let latest = registry.ok("GET", &format!("/subjects/{subject}/versions/latest"), None).await;
    assert_eq!((&latest["subject"], &latest["version"], &latest["id"]), (&json!(subject), &json!(2), &json!(id2)));
    assert_eq!(serde_json::from_str::<Value>(latest["schema"].as_str().unwrap()).unwrap(), v2, "latest: {latest}");
    let first = registry.ok("GET", &format!("/subjects/{subject}/versions/1"), None).await;
    assert_eq!(first["id"], id1, "version 1: {first}");

    // An incompatible third version is refused, and the subject keeps its two.
    let check = registry
        .ok("POST", &format!("/compatibility/subjects/{subject}/versions/latest"), Some(&schema_body(&v3)))
        .await;
    assert_eq!(check["is_compatible"], false, "v3 against v2: {check}");
    let refused =
        registry.call("POST", &format!("/subjects/{subject}/versions"), Some(&schema_body(&v3))).await.unwrap();
    assert_eq!(refused.status, 409, "an incompatible schema: {}", refused.body);
    assert_eq!(refused.json()["error_code"], 409, "Confluent's code for an incompatible schema: {}", refused.body);
    let versions = registry.ok("GET", &format!("/subjects/{subject}/versions"), None).await;
    assert_eq!(versions, json!([1, 2]), "after the refused version");

    // Records written with v1 still resolve: its id keeps its schema.
    let by_id = registry.ok("GET", &format!("/schemas/ids/{id1}"), None).await;
    assert_eq!(serde_json::from_str::<Value>(by_id["schema"].as_str().unwrap()).unwrap(), v1);

    registry.delete_subject(&subject).await.unwrap_or_else(|e| panic!("{e}"));
    let gone = registry.call("GET", &format!("/subjects/{subject}/versions"), None).await.unwrap();
    assert_eq!(gone.status, 404, "a deleted subject: {}", gone.body);
}

#[tokio::test]
async fn registry_keeps_schemas_and_ids_through_a_restart() {
    let _up = UP.write().await;
    let registry = Registry::from_env();
    let subject = format!("{}-value", unique("restart"));
    let schema = record(&format!("Kept_{}", subject.replace('-', "_")), json!([{ "name": "id", "type": "long" }]));
    let id = registry.register(&subject, &schema).await;

    // `stack.sh start` returns once the registry answers as its user again.
    stack_ctl(&["stop", "registry"]);
    stack_ctl(&["start", "registry"]);

    let by_id = registry.ok("GET", &format!("/schemas/ids/{id}"), None).await;
    assert_eq!(
        serde_json::from_str::<Value>(by_id["schema"].as_str().unwrap()).unwrap(),
        schema,
        "id {id} after a restart"
    );
    let versions = registry.ok("GET", &format!("/subjects/{subject}/versions"), None).await;
    assert_eq!(versions, json!([1]), "the subject after a restart");
    registry.delete_subject(&subject).await.unwrap_or_else(|e| panic!("{e}"));
}
