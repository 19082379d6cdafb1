//! The stack's Cassandra has password authentication on: a wrong password is refused, the
//! right one works, and a row written is read back.

use scylla::client::session::Session;
use tributary_tests::{cassandra_admin, cassandra_session, unique};

async fn connect(user: &str, password: &str) -> Result<Session, String> {
    cassandra_session(user, password).await
}

#[tokio::test]
async fn cassandra_checks_passwords_and_stores_rows() {
    let (user, password) = cassandra_admin();

    let err = connect(&user, "definitely-wrong").await.expect_err("a wrong password is refused");
    assert!(err.contains("Provided username") && err.contains("incorrect"), "unexpected error: {err}");

    let session = connect(&user, &password).await.expect("the right password is accepted");
    let keyspace = unique("smoke").replace('-', "_");
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            &[],
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {keyspace}.readings (station text, ts bigint, value double, PRIMARY KEY (station, ts))"
            ),
            &[],
        )
        .await
        .expect("create table");
    session
        .query_unpaged(
            format!("INSERT INTO {keyspace}.readings (station, ts, value) VALUES (?, ?, ?)"),
            ("station-01", 42_i64, 7.25_f64),
        )
        .await
        .expect("insert");

    let rows = session
        .query_unpaged(format!("SELECT station, ts, value FROM {keyspace}.readings WHERE station = ?"), ("station-01",))
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows");
    let row: (String, i64, f64) = rows.single_row().expect("exactly one row");
    assert_eq!(row, ("station-01".to_string(), 42, 7.25));

    session.query_unpaged(format!("DROP KEYSPACE {keyspace}"), &[]).await.expect("drop keyspace");
}
