//! The table of a CassandraSink (pure): the CQL that creates it from the spec, and the check
//! of a table that already exists against the spec's columns and keys, which says what to
//! add (the spec's new columns) or why the table cannot serve the sink (a type or a key).

use crate::api::sink::{CassandraSinkSpec, SortOrder};
use crate::external::cassandra::{LiveColumn, ident};

/// `CREATE TABLE IF NOT EXISTS` for the sink's columns, partition key and clustering key.
pub fn create_table_cql(keyspace: &str, spec: &CassandraSinkSpec) -> String {
    let columns: Vec<String> = spec.columns.iter().map(|c| format!("{} {}", ident(&c.name), c.type_)).collect();
    let partition = format!("({})", spec.partition_key.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", "));
    let mut key = vec![partition];
    key.extend(spec.clustering_key.iter().map(|c| ident(&c.column)));
    let mut cql = format!(
        "CREATE TABLE IF NOT EXISTS {}.{} ({}, PRIMARY KEY ({}))",
        ident(keyspace),
        ident(&spec.table),
        columns.join(", "),
        key.join(", ")
    );
    if !spec.clustering_key.is_empty() {
        let order: Vec<String> = spec
            .clustering_key
            .iter()
            .map(|c| format!("{} {}", ident(&c.column), if c.order == SortOrder::Desc { "DESC" } else { "ASC" }))
            .collect();
        cql.push_str(&format!(" WITH CLUSTERING ORDER BY ({})", order.join(", ")));
    }
    cql
}

/// CQL types as `system_schema.columns` spells them: lowercase, no spaces, `varchar` is `text`.
fn normalize(cql_type: &str) -> String {
    let t: String = cql_type.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    // Replace whole-word `varchar` only (inside collections too).
    t.split_inclusive(['<', '>', ','])
        .map(|part| {
            let (word, sep) = part.split_at(part.trim_end_matches(['<', '>', ',']).len());
            format!("{}{sep}", if word == "varchar" { "text" } else { word })
        })
        .collect()
}

/// A column of the spec the live table lacks, to add with `ALTER TABLE ... ADD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingColumn {
    pub name: String,
    pub cql_type: String,
}

/// Checks an existing table against the spec: `Ok` with the spec's regular columns the table
/// lacks (added, since adding a column loses nothing), or `Err` naming the first thing that
/// cannot be changed in place (a column's type, the partition or clustering key) and what
/// to change; then nothing is added. Extra columns in the table are fine (they stay null).
pub fn check_mapping(spec: &CassandraSinkSpec, live: &[LiveColumn]) -> Result<Vec<MissingColumn>, String> {
    let table = &spec.table;
    let key_of = |kind: &str| {
        let mut cols: Vec<&LiveColumn> = live.iter().filter(|l| l.kind == kind).collect();
        cols.sort_by_key(|l| l.position);
        cols
    };
    let live_partition: Vec<&str> = key_of("partition_key").iter().map(|l| l.name.as_str()).collect();
    if live_partition != spec.partition_key.iter().map(String::as_str).collect::<Vec<_>>() {
        return Err(format!(
            "partition key: table {table} has ({}), the sink declares ({}); a key cannot change in place: set \
             spec.partitionKey to match the table, or use a new table",
            live_partition.join(", "),
            spec.partition_key.join(", ")
        ));
    }
    let live_clustering: Vec<(&str, SortOrder)> = key_of("clustering")
        .iter()
        .map(|l| (l.name.as_str(), if l.clustering_order == "desc" { SortOrder::Desc } else { SortOrder::Asc }))
        .collect();
    let spec_clustering: Vec<(&str, SortOrder)> =
        spec.clustering_key.iter().map(|c| (c.column.as_str(), c.order)).collect();
    if live_clustering != spec_clustering {
        let show =
            |cols: &[(&str, SortOrder)]| cols.iter().map(|(n, o)| format!("{n} {o:?}")).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "clustering key: table {table} has ({}), the sink declares ({}); a key cannot change in place: set \
             spec.clusteringKey to match the table, or use a new table",
            show(&live_clustering),
            show(&spec_clustering)
        ));
    }
    let mut missing = Vec::new();
    for column in &spec.columns {
        match live.iter().find(|l| l.name == column.name) {
            None => missing.push(MissingColumn { name: column.name.clone(), cql_type: column.type_.clone() }),
            Some(found) if normalize(&found.cql_type) != normalize(&column.type_) => {
                return Err(format!(
                    "column {}: table {table} has type {}, the sink maps it as {}; a column's type cannot change in \
                     place: set its type to {} in spec.columns, or map the field to a new column",
                    column.name, found.cql_type, column.type_, found.cql_type
                ));
            }
            Some(_) => {}
        }
    }
    Ok(missing)
}

/// `ALTER TABLE ... ADD` for one missing column.
pub fn add_column_cql(keyspace: &str, table: &str, column: &MissingColumn) -> String {
    format!("ALTER TABLE {}.{} ADD {} {}", ident(keyspace), ident(table), ident(&column.name), column.cql_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::sink::{ClusteringColumn, Column};

    fn spec() -> CassandraSinkSpec {
        let column =
            |name: &str, t: &str| Column { name: name.into(), type_: t.into(), field: None, ..Default::default() };
        CassandraSinkSpec {
            topic: "data".into(),
            topic_tenant: None,
            table: "readings".into(),
            columns: vec![
                column("station", "text"),
                column("ts", "timestamp"),
                column("ph", "double"),
                column("tags", "map<varchar, int>"),
            ],
            partition_key: vec!["station".into()],
            clustering_key: vec![ClusteringColumn { column: "ts".into(), order: SortOrder::Desc }],
            format: Default::default(),
            csv: None,
            avro: None,
            ttl_seconds: None,
            consistency: Default::default(),
            replicas: 1,
            dead_letter_retention_hours: 168,
            start_from: None,
            replay: None,
            autoscale: None,
            suspend: false,
            local_datacenter: None,
        }
    }

    fn live(cols: &[(&str, &str, &str, i32, &str)]) -> Vec<LiveColumn> {
        cols.iter()
            .map(|(name, kind, t, position, order)| LiveColumn {
                name: name.to_string(),
                kind: kind.to_string(),
                cql_type: t.to_string(),
                position: *position,
                clustering_order: order.to_string(),
            })
            .collect()
    }

    #[test]
    fn the_table_is_created_with_its_keys_and_clustering_order() {
        assert_eq!(
            create_table_cql("water", &spec()),
            "CREATE TABLE IF NOT EXISTS \"water\".\"readings\" (\"station\" text, \"ts\" timestamp, \"ph\" double, \
             \"tags\" map<varchar, int>, PRIMARY KEY ((\"station\"), \"ts\")) WITH CLUSTERING ORDER BY (\"ts\" DESC)"
        );
    }

    #[test]
    fn a_matching_table_passes_and_each_mismatch_names_the_column() {
        let good = live(&[
            ("station", "partition_key", "text", 0, "none"),
            ("ts", "clustering", "timestamp", 0, "desc"),
            ("ph", "regular", "double", -1, "none"),
            ("tags", "regular", "map<text, int>", -1, "none"),
            ("note", "regular", "text", -1, "none"),
        ]);
        assert_eq!(check_mapping(&spec(), &good), Ok(vec![]));

        let mut wrong_type = good.clone();
        wrong_type[2].cql_type = "text".into();
        let err = check_mapping(&spec(), &wrong_type).unwrap_err();
        assert!(err.starts_with("column ph: table readings has type text, the sink maps it as double"), "{err}");

        // A column the table lacks is added; with a wrong type beside it, nothing is.
        let missing: Vec<_> = good.iter().filter(|c| c.name != "tags").cloned().collect();
        let add = check_mapping(&spec(), &missing).unwrap();
        assert_eq!(add, vec![MissingColumn { name: "tags".into(), cql_type: "map<varchar, int>".into() }]);
        assert_eq!(
            add_column_cql("water", "readings", &add[0]),
            "ALTER TABLE \"water\".\"readings\" ADD \"tags\" map<varchar, int>"
        );
        let mut missing_and_wrong = missing.clone();
        missing_and_wrong[2].cql_type = "text".into();
        assert!(check_mapping(&spec(), &missing_and_wrong).unwrap_err().starts_with("column ph:"));
        // A key column the table lacks is a key change, never an addition.
        let no_ts: Vec<_> = good.iter().filter(|c| c.name != "ts").cloned().collect();
        assert!(check_mapping(&spec(), &no_ts).unwrap_err().starts_with("clustering key:"));

        let mut order = good.clone();
        order[1].clustering_order = "asc".into();
        let err = check_mapping(&spec(), &order).unwrap_err();
        assert!(err.contains("clustering key: table readings has (ts Asc), the sink declares (ts Desc)"), "{err}");
    }
}
