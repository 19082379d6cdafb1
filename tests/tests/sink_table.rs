//! A CassandraSink's table: created from the sink's columns and keys when absent; a column
//! added to the spec is added to the live table and the sink pod rolls and fills it; an
//! existing table whose column type or key differs is reported (MappingValid=False naming
//! the column) and left untouched, before any sink runs.

use std::time::Duration;

use kube::Client;
use kube::api::Api;
use scylla::client::session::Session;
use tributary::api::CassandraSink;
use tributary_tests::operator::OperatorProcess;
use tributary_tests::{
    cassandra_admin, cassandra_session, kubectl_apply, ready_tenant, unique, wait_ready, wait_until,
};

async fn admin() -> Session {
    let (user, password) = cassandra_admin();
    cassandra_session(&user, &password).await.unwrap()
}

/// (column, kind, type, clustering order) of a live table, sorted by name.
async fn columns(session: &Session, keyspace: &str, table: &str) -> Vec<(String, String, String, String)> {
    let mut rows: Vec<(String, String, String, String)> = session
        .query_unpaged(
            "SELECT column_name, kind, type, clustering_order FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
            (keyspace, table),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows()
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    rows.sort();
    rows
}

fn setup_yaml(ns: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata:\n  name: data\n  namespace: {ns}\nspec:\n  partitions: 3\n---\n\
         apiVersion: tributary.dev/v1alpha1\nkind: CassandraSink\nmetadata:\n  name: readings\n  namespace: {ns}\nspec:\n  topic: data\n  table: readings\n  columns:\n\
         \x20 - {{name: station, type: text}}\n  - {{name: ts, type: timestamp}}\n  - {{name: ph, type: double, field: reading.ph}}\n  - {{name: tags, type: \"map<text, int>\"}}\n\
         \x20 partitionKey: [station]\n  clusteringKey:\n  - {{column: ts, order: Desc}}\n"
    )
}

#[tokio::test]
async fn the_table_is_created_from_the_sink_spec() {
    OperatorProcess::shared().await;
    let tenant = unique("tb");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    kubectl_apply(&setup_yaml(&tenant));
    let sinks: Api<CassandraSink> = Api::namespaced(Client::try_default().await.unwrap(), &tenant);
    let keyspace = tenant.replace('-', "_");
    wait_until("MappingValid=True", Duration::from_secs(90), || async {
        let sink = sinks.get("readings").await.map_err(|e| e.to_string())?;
        let conditions = sink.status.map(|s| s.conditions).unwrap_or_default();
        match conditions.iter().find(|c| c.type_ == "MappingValid") {
            Some(c) if c.status == "True" => Ok(()),
            other => Err(format!("{other:?} / {conditions:?}")),
        }
    })
    .await;
    let session = admin().await;
    let s = |v: &str| v.to_string();
    assert_eq!(
        columns(&session, &keyspace, "readings").await,
        vec![
            (s("ph"), s("regular"), s("double"), s("none")),
            (s("station"), s("partition_key"), s("text"), s("none")),
            (s("tags"), s("regular"), s("map<text, int>"), s("none")),
            (s("ts"), s("clustering"), s("timestamp"), s("desc")),
        ]
    );
    sinks.delete("readings", &Default::default()).await.unwrap();
}

#[tokio::test]
async fn an_existing_table_of_another_shape_is_reported_by_column_and_left_untouched() {
    OperatorProcess::shared().await;
    let tenant = unique("tm");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    let keyspace = tenant.replace('-', "_");
    let session = admin().await;
    // The team's table already exists, with ph as text and a row in it.
    session
        .query_unpaged(
            format!("CREATE TABLE {keyspace}.readings (station text, ts timestamp, ph text, tags map<text, int>, PRIMARY KEY (station, ts)) WITH CLUSTERING ORDER BY (ts DESC)"),
            &[],
        )
        .await
        .unwrap();
    session
        .query_unpaged(format!("INSERT INTO {keyspace}.readings (station, ts, ph) VALUES ('s1', 0, '7.1')"), &[])
        .await
        .unwrap();
    let before = columns(&session, &keyspace, "readings").await;

    kubectl_apply(&setup_yaml(&tenant));
    let sinks: Api<CassandraSink> = Api::namespaced(Client::try_default().await.unwrap(), &tenant);
    let message = wait_ready(&sinks, "readings", "False", "MappingInvalid").await;
    assert!(message.starts_with("column ph: table readings has type text, the sink maps it as double"), "{message}");
    let status = sinks.get("readings").await.unwrap().status.unwrap();
    let mapping = status.conditions.iter().find(|c| c.type_ == "MappingValid").expect("MappingValid condition");
    assert_eq!((mapping.status.as_str(), mapping.reason.as_str()), ("False", "ColumnMismatch"));

    assert_eq!(columns(&session, &keyspace, "readings").await, before, "the table is not altered");
    let rows = session
        .query_unpaged(format!("SELECT ph FROM {keyspace}.readings"), &[])
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows_num();
    assert_eq!(rows, 1, "and its row stays");
}

#[tokio::test]
async fn a_deleted_sink_takes_its_kafka_user_along_and_keeps_its_dead_letters() {
    use tributary::external::kafka::AclBindingFilter;
    use tributary_tests::{kafka_admin, kafka_admin_ext};
    OperatorProcess::shared().await;
    let tenant = unique("td");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    kubectl_apply(&setup_yaml(&tenant));
    tributary_tests::sink::wait_deployment(&tenant, "tributary-sink-readings").await;
    let admin = kafka_admin();
    let ext = kafka_admin_ext(&admin);
    let principal = format!("User:{tenant}.sink.readings");
    let acls =
        || async { ext.describe_acls(AclBindingFilter::for_principal(&principal)).await.map_err(|e| e.to_string()) };
    wait_until("the sink user's five ACLs", Duration::from_secs(60), || async {
        let n = acls().await?.len();
        if n == 5 { Ok(()) } else { Err(format!("{n}")) }
    })
    .await;
    let dlq = format!("{tenant}.dlq.readings");
    assert!(tributary_tests::kafka::topic_layout(&admin, &dlq).is_ok(), "the dead-letter topic exists");

    let sinks: Api<CassandraSink> = Api::namespaced(Client::try_default().await.unwrap(), &tenant);
    sinks.delete("readings", &Default::default()).await.unwrap();
    wait_until("the sink to be gone", Duration::from_secs(60), || async {
        if sinks.get_opt("readings").await.map_err(|e| e.to_string())?.is_none() {
            Ok(())
        } else {
            Err("still there".into())
        }
    })
    .await;
    wait_until("the sink user's ACLs to be gone", Duration::from_secs(60), || async {
        let n = acls().await?.len();
        if n == 0 { Ok(()) } else { Err(format!("{n}")) }
    })
    .await;
    assert!(tributary_tests::kafka::topic_layout(&admin, &dlq).is_ok(), "the dead letters are kept");
}

#[tokio::test]
async fn a_column_added_to_the_spec_is_added_to_the_table_and_filled_by_the_rolled_pod() {
    use tributary_tests::kafka::{produce, producer};
    use tributary_tests::sink::SinkPods;
    use tributary_tests::tenant_kafka_settings;
    OperatorProcess::shared().await;
    let tenant = unique("te");
    let _tenant_cleanup = ready_tenant(&tenant, "").await;
    kubectl_apply(&setup_yaml(&tenant));
    let pods = SinkPods::running(&tenant, "tributary-sink-readings", 1).await;
    let before: Vec<String> = pods.pods().await.iter().filter_map(|p| p.metadata.uid.clone()).collect();
    let session = admin().await;
    let keyspace = tenant.replace('-', "_");
    let had = columns(&session, &keyspace, "readings").await;

    let sinks: Api<CassandraSink> = Api::namespaced(Client::try_default().await.unwrap(), &tenant);
    let added = serde_json::json!({"spec": {"columns": [
        {"name": "station", "type": "text"},
        {"name": "ts", "type": "timestamp"},
        {"name": "ph", "type": "double", "field": "reading.ph"},
        {"name": "tags", "type": "map<text, int>"},
        {"name": "turbidity", "type": "double", "field": "reading.turbidity"},
    ]}});
    sinks.patch("readings", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&added)).await.unwrap();
    wait_until("column turbidity in the table", Duration::from_secs(90), || async {
        let now = columns(&session, &keyspace, "readings").await;
        let want = ("turbidity".to_string(), "regular".to_string(), "double".to_string(), "none".to_string());
        if now.contains(&want) && now.len() == had.len() + 1 { Ok(()) } else { Err(format!("{now:?}")) }
    })
    .await;
    wait_until("the sink pod replaced and ready", Duration::from_secs(180), || async {
        let now = pods.pods().await;
        let fresh = now.iter().all(|p| p.metadata.uid.as_ref().is_some_and(|u| !before.contains(u)));
        let ready = now.iter().all(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        if now.len() == 1 && fresh && ready { Ok(()) } else { Err(pods.pod_summary().await) }
    })
    .await;
    let producer = producer(&tenant_kafka_settings(&tenant).await);
    let record = r#"{"station":"s9","ts":1767225600000,"reading":{"ph":7.0,"turbidity":2.5},"tags":{"a":1}}"#;
    produce(&producer, &format!("{tenant}.data"), "s9", record).await.unwrap();
    wait_until("the new column filled", Duration::from_secs(90), || async {
        let cql = format!("SELECT turbidity FROM {keyspace}.readings WHERE station = 's9'");
        let got: Vec<(Option<f64>,)> = tributary_tests::pipeline::select(&session, &cql).await?;
        if got == vec![(Some(2.5),)] { Ok(()) } else { Err(format!("{got:?}")) }
    })
    .await;
    let status = sinks.get("readings").await.unwrap().status.unwrap();
    let mapping = status.conditions.iter().find(|c| c.type_ == "MappingValid").expect("MappingValid condition");
    assert_eq!(mapping.status, "True", "{mapping:?}");
    sinks.delete("readings", &Default::default()).await.unwrap();
}
