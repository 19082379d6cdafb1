//! The generated CRDs, installed in the real API server, refuse bad input at apply time with
//! a message that says what to change — before the operator ever sees the object.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use tributary_tests::{install_crds, kubectl, unique};

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("tributary.dev", "v1alpha1", kind), plural)
}

fn object(kind: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

/// Creates the object and returns the API server's refusal, failing the test if it was accepted.
async fn refused(api: &Api<DynamicObject>, obj: DynamicObject) -> String {
    let name = obj.metadata.name.clone().unwrap();
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => panic!("{name} was accepted but must be refused"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        Err(other) => panic!("unexpected error for {name}: {other}"),
    }
}

async fn patch_refused(api: &Api<DynamicObject>, name: &str, spec: Value) -> String {
    let patch = Patch::Merge(json!({"spec": spec}));
    match api.patch(name, &PatchParams::default(), &patch).await {
        Ok(_) => panic!("patch {spec} of {name} was accepted but must be refused"),
        Err(kube::Error::Api(status)) => status.message,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

fn assert_says(message: &str, expected: &str) {
    assert!(message.contains(expected), "expected the refusal to say {expected:?}; it said: {message}");
}

#[tokio::test]
async fn tenant_schema_refuses_bad_names_enums_limits_and_namespace_changes() {
    install_crds().await;
    let client = kube::Client::try_default().await.unwrap();
    let tenants: Api<DynamicObject> = Api::all_with(client, &resource("Tenant", "tenants"));

    let msg = refused(&tenants, object("Tenant", "water.eu", json!({}))).await;
    assert_says(&msg, "a Tenant name is its Kafka prefix, namespace and keyspace");

    let name = unique("tn");
    let msg = refused(&tenants, object("Tenant", &name, json!({"deletionPolicy": "Sometimes"}))).await;
    assert_says(&msg, "spec.deletionPolicy: Unsupported value: \"Sometimes\"");

    let limits = json!({"kafka": {"limits": {"minReplicationFactor": 3, "maxReplicationFactor": 2}}});
    let msg = refused(&tenants, object("Tenant", &name, limits)).await;
    assert_says(&msg, "minReplicationFactor must not exceed maxReplicationFactor");

    let msg = refused(&tenants, object("Tenant", &name, json!({"cassandra": {"keyspace": "Water-Data"}}))).await;
    assert_says(&msg, "spec.cassandra.keyspace");

    tenants
        .create(&PostParams::default(), &object("Tenant", &name, json!({"namespace": name})))
        .await
        .expect("valid tenant");
    let created = tenants.get(&name).await.unwrap();
    assert_eq!(created.data["spec"]["deletionPolicy"], "Retain", "the safe default is filled in");
    assert_eq!(created.data["spec"]["kafka"]["limits"]["minReplicationFactor"], 3);

    let msg = patch_refused(&tenants, &name, json!({"namespace": format!("{name}-other")})).await;
    assert_says(&msg, "namespace is immutable");
    tenants.delete(&name, &Default::default()).await.unwrap();
}

#[tokio::test]
async fn tenant_schema_refuses_internal_prefixes_system_names_and_identity_changes() {
    install_crds().await;
    let client = kube::Client::try_default().await.unwrap();
    let tenants: Api<DynamicObject> = Api::all_with(client, &resource("Tenant", "tenants"));
    let name = unique("tn");

    // Prefixes that reach Kafka's internal topics and groups are never legal, for all three kinds.
    for (field, prefix) in [
        ("topicPrefix", "_"),
        ("topicPrefix", "__consumer_offsets"),
        ("groupPrefix", "_"),
        ("transactionalIdPrefix", ".x"),
    ] {
        let msg = refused(&tenants, object("Tenant", &name, json!({"kafka": {field: prefix}}))).await;
        assert_says(&msg, &format!("spec.kafka.{field}"));
        assert_says(&msg, "should match '^[a-zA-Z0-9][a-zA-Z0-9._-]*$'");
    }
    for system in ["kube-system", "kube-public", "default"] {
        let msg = refused(&tenants, object("Tenant", &name, json!({"namespace": system}))).await;
        assert_says(&msg, "kube-* and default are system namespaces");
    }
    let msg = refused(&tenants, object("Tenant", &name, json!({"cassandra": {"keyspace": "system_auth"}}))).await;
    assert_says(&msg, "keyspaces named system* are Cassandra's own");
    // An external principal: a name the brokers could know, one of the listed mechanisms.
    let external = |name: &str, mechanism: &str| json!({"kafka": {"externalUser": {"name": name, "mechanism": mechanism, "passwordSecret": {"name": "s"}}}});
    let msg = refused(&tenants, object("Tenant", &name, external("two words", "PLAIN"))).await;
    assert_says(&msg, "spec.kafka.externalUser.name");
    let msg = refused(&tenants, object("Tenant", &name, external("sa-1", "GSSAPI"))).await;
    assert_says(&msg, "spec.kafka.externalUser.mechanism");
    assert_says(&msg, "\"SCRAM-SHA-512\", \"SCRAM-SHA-256\", \"PLAIN\"");
    // Rotation: a grace period beyond 7 days, a schedule of 0 days, an empty request.
    let credentials = |c: Value| json!({"credentials": c});
    let msg = refused(&tenants, object("Tenant", &name, credentials(json!({"gracePeriodSeconds": 604801})))).await;
    assert_says(&msg, "spec.credentials.gracePeriodSeconds");
    let msg = refused(&tenants, object("Tenant", &name, credentials(json!({"rotateEveryDays": 0})))).await;
    assert_says(&msg, "spec.credentials.rotateEveryDays");
    let msg = refused(&tenants, object("Tenant", &name, credentials(json!({"rotationRequest": ""})))).await;
    assert_says(&msg, "spec.credentials.rotationRequest");

    // Identity fields cannot change once applied, and cannot be added or removed either.
    let spec = json!({"kafka": {"topicPrefix": format!("{name}.")}, "cassandra": {"keyspace": name.replace('-', "_")}});
    tenants.create(&PostParams::default(), &object("Tenant", &name, spec)).await.expect("valid tenant");
    for (change, expected) in [
        (
            json!({"kafka": {"topicPrefix": "water."}}),
            "topicPrefix, groupPrefix and transactionalIdPrefix are immutable",
        ),
        (
            json!({"kafka": {"groupPrefix": "water."}}),
            "topicPrefix, groupPrefix and transactionalIdPrefix are immutable",
        ),
        (
            json!({"kafka": {"transactionalIdPrefix": "x."}}),
            "topicPrefix, groupPrefix and transactionalIdPrefix are immutable",
        ),
        (json!({"cassandra": {"keyspace": "water"}}), "cassandra.keyspace is immutable"),
        (
            json!({"kafka": {"externalUser": {"name": "sa-1", "mechanism": "PLAIN", "passwordSecret": {"name": "s"}}}}),
            "kafka.externalUser cannot be added, removed or renamed",
        ),
    ] {
        let msg = patch_refused(&tenants, &name, change).await;
        assert_says(&msg, expected);
    }
    let unchanged = tenants.get(&name).await.unwrap();
    assert_eq!(unchanged.data["spec"]["kafka"]["topicPrefix"], format!("{name}."));
    // What is not identity still changes.
    let patch = Patch::Merge(json!({"spec": {"kafka": {"limits": {"maxTopics": 5}}, "adopt": {"keyspace": true}}}));
    tenants.patch(&name, &PatchParams::default(), &patch).await.expect("limits and adopt may change");
    tenants.delete(&name, &Default::default()).await.unwrap();
}

#[tokio::test]
async fn topic_schema_refuses_bad_names_shrinking_and_rf_changes() {
    install_crds().await;
    let client = kube::Client::try_default().await.unwrap();
    let topics: Api<DynamicObject> = Api::namespaced_with(client, "default", &resource("Topic", "topics"));

    let msg = refused(&topics, object("Topic", &unique("t"), json!({"topicName": "bad name!"}))).await;
    assert_says(&msg, "spec.topicName");
    let msg = refused(&topics, object("Topic", &unique("t"), json!({"topicName": ".."}))).await;
    assert_says(&msg, "topicName may not be '.' or '..'");
    let msg = refused(&topics, object("Topic", &unique("t"), json!({"partitions": 0}))).await;
    assert_says(
        &msg,
        "spec.partitions: Invalid value: 0: spec.partitions in body should be greater than or equal to 1",
    );
    let long = "a".repeat(201);
    let msg = refused(&topics, object("Topic", &long, json!({}))).await;
    assert_says(&msg, "use at most 200 characters");

    let name = unique("t");
    let created = topics
        .create(&PostParams::default(), &object("Topic", &name, json!({"partitions": 3})))
        .await
        .expect("valid topic");
    assert_eq!(created.data["spec"]["replicationFactor"], 3, "RF defaults to 3");

    let msg = patch_refused(&topics, &name, json!({"partitions": 2})).await;
    assert_says(&msg, "partitions can only grow");
    let msg = patch_refused(&topics, &name, json!({"replicationFactor": 1})).await;
    assert_says(&msg, "replicationFactor is immutable");
    let msg = patch_refused(&topics, &name, json!({"topicName": "renamed"})).await;
    assert_says(&msg, "topicName is immutable");

    let grown = topics.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"partitions": 6}}))).await;
    assert_eq!(grown.expect("growing partitions is allowed").data["spec"]["partitions"], 6);
    topics.delete(&name, &Default::default()).await.unwrap();
}

#[tokio::test]
async fn cassandra_sink_schema_refuses_bad_identifiers_types_and_keys() {
    install_crds().await;
    let client = kube::Client::try_default().await.unwrap();
    let sinks: Api<DynamicObject> =
        Api::namespaced_with(client, "default", &resource("CassandraSink", "cassandrasinks"));
    let spec = |columns: Value, pk: Value| json!({"topic": "data", "table": "readings", "columns": columns, "partitionKey": pk});
    let good_columns = json!([{"name": "station", "type": "text"}, {"name": "ph", "type": "double"}]);

    let msg = refused(
        &sinks,
        object("CassandraSink", &unique("s"), spec(json!([{"name": "Station-Id", "type": "text"}]), json!(["x"]))),
    )
    .await;
    assert_says(&msg, "spec.columns[0].name");
    let msg = refused(
        &sinks,
        object("CassandraSink", &unique("s"), spec(json!([{"name": "station", "type": "txt"}]), json!(["station"]))),
    )
    .await;
    assert_says(&msg, "spec.columns[0].type");
    let msg =
        refused(&sinks, object("CassandraSink", &unique("s"), spec(good_columns.clone(), json!(["sensor"])))).await;
    assert_says(&msg, "every partitionKey entry must be the name of a column in columns");
    let mut long_table = spec(good_columns.clone(), json!(["station"]));
    long_table["table"] = json!("t".repeat(49));
    let msg = refused(&sinks, object("CassandraSink", &unique("s"), long_table)).await;
    assert_says(&msg, "spec.table");
    let mut bad_consistency = spec(good_columns.clone(), json!(["station"]));
    bad_consistency["consistency"] = json!("Sometimes");
    let msg = refused(&sinks, object("CassandraSink", &unique("s"), bad_consistency)).await;
    assert_says(&msg, "spec.consistency: Unsupported value");
    let mut bad_start = spec(good_columns.clone(), json!(["station"]));
    bad_start["startFrom"] = json!("yesterday");
    let msg = refused(&sinks, object("CassandraSink", &unique("s"), bad_start)).await;
    assert_says(&msg, "startFrom must be Earliest, Latest or an RFC 3339 time");
    let mut bad_replay = spec(good_columns.clone(), json!(["station"]));
    bad_replay["replay"] = json!({"id": "r1", "from": "2026-12-01 00:00"});
    let msg = refused(&sinks, object("CassandraSink", &unique("s"), bad_replay)).await;
    assert_says(&msg, "replay.from must be Earliest or an RFC 3339 time");
    let mut bad_range = spec(good_columns.clone(), json!(["station"]));
    bad_range["replicas"] = json!(4);
    bad_range["autoscale"] = json!({"maxReplicas": 2});
    let msg = refused(&sinks, object("CassandraSink", &unique("s"), bad_range)).await;
    assert_says(&msg, "autoscale.maxReplicas must be at least replicas");
    let mut avro_with_json = spec(good_columns.clone(), json!(["station"]));
    avro_with_json["avro"] = json!({"registryUrl": "http://registry:8081"});
    let msg = refused(&sinks, object("CassandraSink", &unique("s"), avro_with_json)).await;
    assert_says(&msg, "avro (the schema registry's settings) goes with format: Avro");
    let mut bad_registry = spec(good_columns.clone(), json!(["station"]));
    bad_registry["format"] = json!("Avro");
    bad_registry["avro"] = json!({"registryUrl": "registry:8081"});
    let msg = refused(&sinks, object("CassandraSink", &unique("s"), bad_registry)).await;
    assert_says(&msg, "spec.avro.registryUrl");

    let name = unique("s");
    let created = sinks
        .create(&PostParams::default(), &object("CassandraSink", &name, spec(good_columns.clone(), json!(["station"]))))
        .await
        .expect("valid sink");
    assert_eq!(created.data["spec"]["consistency"], "LocalQuorum");
    let msg = patch_refused(&sinks, &name, json!({"partitionKey": ["ph"]})).await;
    assert_says(&msg, "the primary key is immutable");
    // A time with an offset and fractions is a good start.
    let start = json!({"startFrom": "2026-12-01T08:30:00.250+01:00", "replay": {"id": "r1", "from": "Earliest"}});
    sinks
        .patch(&name, &PatchParams::default(), &Patch::Merge(&json!({"spec": start})))
        .await
        .expect("valid start and replay");
    sinks.delete(&name, &Default::default()).await.unwrap();
}

#[tokio::test]
async fn kubectl_get_shows_the_printer_columns() {
    install_crds().await;
    let header = |kind: &str| {
        kubectl(&["get", kind, "-A"])
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // With no objects kubectl prints nothing; create one of each so it prints a header.
    let name = unique("cols");
    kubectl(&["create", "namespace", &name]);
    let manifest = format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}}}\nspec: {{}}\n---\n\
         apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata: {{name: data, namespace: {name}}}\nspec: {{}}\n---\n\
         apiVersion: tributary.dev/v1alpha1\nkind: CassandraSink\nmetadata: {{name: sink, namespace: {name}}}\n\
         spec: {{topic: data, table: readings, columns: [{{name: id, type: text}}], partitionKey: [id]}}\n---\n\
         apiVersion: tributary.dev/v1alpha1\nkind: KafkaUser\nmetadata: {{name: app, namespace: {name}}}\nspec: {{}}\n---\n\
         apiVersion: tributary.dev/v1alpha1\nkind: TopicGrant\nmetadata: {{name: share, namespace: {name}}}\n\
         spec: {{tenant: other, topic: {name}.data}}\n"
    );
    let path = std::env::temp_dir().join(format!("{name}.yaml"));
    std::fs::write(&path, manifest).unwrap();
    kubectl(&["apply", "-f", path.to_str().unwrap()]);

    assert_eq!(
        kubectl(&["get", "tenants", &name]).lines().next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "READY", "TOPICS", "SINKS", "PARTITIONS", "KAFKA", "BYTES", "CASSANDRA", "BYTES", "AGE"]
    );
    assert_eq!(header("topics"), "NAMESPACE NAME KAFKA NAME PARTITIONS RF READY SHARED WITH AGE");
    assert_eq!(header("cassandrasinks"), "NAMESPACE NAME TOPIC TABLE REPLICAS LAG READY AGE");
    assert_eq!(header("kafkausers"), "NAMESPACE NAME USERNAME SECRET ACLS READY REASON AGE");
    assert_eq!(header("topicgrants"), "NAMESPACE NAME TENANT TOPIC ACCESS READERS READY AGE");
    kubectl(&["delete", "-f", path.to_str().unwrap(), "--wait=false"]);
    kubectl(&["delete", "namespace", &name, "--wait=false"]);
}

#[tokio::test]
async fn kafka_user_and_topic_grant_schemas_refuse_what_can_never_work() {
    install_crds().await;
    let client = kube::Client::try_default().await.unwrap();
    let users: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &resource("KafkaUser", "kafkausers"));
    let acl = |type_: &str, ops: Value| json!({"acls": [{"resource": {"type": type_, "name": "water.x"}, "operations": ops}]});
    let msg = refused(&users, object("KafkaUser", "app", acl("Group", json!(["Write"])))).await;
    assert_says(&msg, "Write applies to topics and transactional ids, not to groups");
    let msg = refused(&users, object("KafkaUser", "app", acl("TransactionalId", json!(["Read"])))).await;
    assert_says(&msg, "Read applies to topics and groups, not to transactional ids");
    let msg = refused(&users, object("KafkaUser", "app.with.dots", json!({}))).await;
    assert_says(&msg, "a KafkaUser name is part of its Kafka principal");
    let shared_group = json!({"acls": [{"resource": {"type": "Group", "name": "water.g", "tenant": "water"}, "operations": ["Read"]}]});
    let msg = refused(&users, object("KafkaUser", "app", shared_group)).await;
    assert_says(&msg, "only a topic can be another tenant's");

    let grants: Api<DynamicObject> = Api::namespaced_with(client, "default", &resource("TopicGrant", "topicgrants"));
    let msg = refused(
        &grants,
        object("TopicGrant", "share", json!({"tenant": "bts", "topic": "water.data", "access": "Everything"})),
    )
    .await;
    assert_says(&msg, "spec.access: Unsupported value: \"Everything\"");
}

#[tokio::test]
async fn cassandra_sink_schema_refuses_impossible_record_parts() {
    install_crds().await;
    let client = kube::Client::try_default().await.unwrap();
    let sinks: Api<DynamicObject> =
        Api::namespaced_with(client, "default", &resource("CassandraSink", "cassandrasinks"));
    let with = |column: Value| {
        json!({"topic": "data", "table": "readings", "partitionKey": ["station"],
            "columns": [{"name": "station", "type": "text", "from": "Key"}, column]})
    };
    let refusals = [
        (json!({"name": "c", "type": "text", "value": "x"}), "a column has value exactly when it is from: Constant"),
        (
            json!({"name": "c", "type": "text", "from": "Constant"}),
            "a column has value exactly when it is from: Constant",
        ),
        (
            json!({"name": "h", "type": "text", "from": "Header"}),
            "a column from: Header needs field: the header's name",
        ),
        (
            json!({"name": "o", "type": "bigint", "from": "Offset", "field": "x"}),
            "a column from Timestamp, Partition, Offset, Now or Constant takes no field",
        ),
        (json!({"name": "o", "type": "bigint", "from": "Somewhere"}), "spec.columns[1].from: Unsupported value"),
    ];
    for (column, says) in refusals {
        let msg = refused(&sinks, object("CassandraSink", &unique("s"), with(column))).await;
        assert_says(&msg, says);
    }
    // Every part together is accepted, and a CSV sink may read a dotted path in a JSON key.
    let name = unique("s");
    let mut all = with(json!({"name": "site", "type": "text", "from": "Key", "field": "site.id"}));
    all["format"] = json!("Csv");
    all["columns"].as_array_mut().unwrap().extend([
        json!({"name": "h", "type": "text", "from": "Header", "field": "source"}),
        json!({"name": "ts", "type": "timestamp", "from": "Timestamp"}),
        json!({"name": "p", "type": "int", "from": "Partition"}),
        json!({"name": "o", "type": "bigint", "from": "Offset"}),
        json!({"name": "n", "type": "timeuuid", "from": "Now"}),
        json!({"name": "c", "type": "text", "from": "Constant", "value": "north"}),
        json!({"name": "ph", "type": "double", "field": "2"}),
    ]);
    let created = sinks.create(&PostParams::default(), &object("CassandraSink", &name, all)).await.expect("valid sink");
    assert_eq!(created.data["spec"]["columns"][7]["value"], "north");
    sinks.delete(&name, &Default::default()).await.unwrap();
}
