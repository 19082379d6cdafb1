//! The columns of a CassandraSink as the sink writes them: each column's CQL type and where
//! its value is in a record (pure). The sink compiles its mapping from [`plan`], and the
//! operator calls the same before it creates a table or starts a pod, so a spec the sink
//! cannot run is reported in the CassandraSink's status, never met by a running pod.

use crate::sink::{CassandraSinkSpec, Column, ColumnSource, RecordFormat};

/// A CQL column type the sink can write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CqlType {
    Scalar(Scalar),
    List(Scalar),
    Set(Scalar),
    Map(Scalar, Scalar),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    Ascii,
    BigInt,
    Blob,
    Boolean,
    Date,
    Decimal,
    Double,
    Float,
    Inet,
    Int,
    SmallInt,
    Text,
    Time,
    Timestamp,
    TimeUuid,
    TinyInt,
    Uuid,
    VarInt,
}

impl Scalar {
    pub fn parse(s: &str) -> Option<Scalar> {
        Some(match s.trim() {
            "ascii" => Scalar::Ascii,
            "bigint" => Scalar::BigInt,
            "blob" => Scalar::Blob,
            "boolean" => Scalar::Boolean,
            "date" => Scalar::Date,
            "decimal" => Scalar::Decimal,
            "double" => Scalar::Double,
            "float" => Scalar::Float,
            "inet" => Scalar::Inet,
            "int" => Scalar::Int,
            "smallint" => Scalar::SmallInt,
            "text" | "varchar" => Scalar::Text,
            "time" => Scalar::Time,
            "timestamp" => Scalar::Timestamp,
            "timeuuid" => Scalar::TimeUuid,
            "tinyint" => Scalar::TinyInt,
            "uuid" => Scalar::Uuid,
            "varint" => Scalar::VarInt,
            _ => return None,
        })
    }
}

impl CqlType {
    pub fn parse(s: &str) -> Option<CqlType> {
        let s = s.trim();
        let inner = |prefix: &str| s.strip_prefix(prefix).and_then(|r| r.strip_suffix('>'));
        if let Some(t) = inner("list<") {
            return Scalar::parse(t).map(CqlType::List);
        }
        if let Some(t) = inner("set<") {
            return Scalar::parse(t).map(CqlType::Set);
        }
        if let Some(kv) = inner("map<") {
            let (k, v) = kv.split_once(',')?;
            return Some(CqlType::Map(Scalar::parse(k)?, Scalar::parse(v)?));
        }
        Scalar::parse(s).map(CqlType::Scalar)
    }
}

/// Where a column's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// JSON: the path segments of `a.b.c`.
    Path(Vec<String>),
    /// CSV: the 0-based field position.
    Position(usize),
    /// The whole record key.
    Key,
    /// A dotted path into a JSON record key.
    KeyPath(Vec<String>),
    /// The bytes of the named header (the first with that name).
    Header(String),
    /// The record's Kafka timestamp, epoch milliseconds.
    Timestamp,
    Partition,
    Offset,
    /// The time of the write (CQL `now()`).
    Now,
    /// The column's `value`, as text, converted once when the mapping compiles.
    Constant(String),
}

impl Source {
    /// True when the sink must read the record's headers for this column.
    pub fn needs_headers(&self) -> bool {
        matches!(self, Source::Header(_))
    }
}

/// One column of the table, and where its value is in a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnPlan {
    pub name: String,
    pub cql_type: CqlType,
    pub source: Source,
    /// A key column may not be null.
    pub required: bool,
}

/// The spec's columns in table order, or the first column the sink could not write, named,
/// with what to change.
pub fn plan(spec: &CassandraSinkSpec) -> Result<Vec<ColumnPlan>, String> {
    let header: Option<Vec<String>> =
        spec.csv.as_ref().and_then(|c| c.header.as_ref()).map(|h| h.split(',').map(|f| f.trim().to_string()).collect());
    let key_columns: Vec<&str> = spec
        .partition_key
        .iter()
        .map(String::as_str)
        .chain(spec.clustering_key.iter().map(|c| c.column.as_str()))
        .collect();
    let mut columns = Vec::new();
    for column in &spec.columns {
        let cql_type = CqlType::parse(&column.type_).ok_or_else(|| {
            format!(
                "column {}: type {} is not one the sink writes (a scalar, or list/set/map of scalars): change its type",
                column.name, column.type_
            )
        })?;
        let source = match column.from {
            ColumnSource::Value => value_source(spec.format, column, header.as_deref())?,
            other => record_part(other, column, &cql_type)?,
        };
        if column.value.is_some() && column.from != ColumnSource::Constant {
            return Err(format!("column {}: value is only for from: Constant; remove it or set from", column.name));
        }
        let required = key_columns.contains(&column.name.as_str());
        columns.push(ColumnPlan { name: column.name.clone(), cql_type, source, required });
    }
    Ok(columns)
}

/// A column from the record's value: a JSON path or a CSV field (what every column was
/// before `from`).
fn value_source(format: RecordFormat, column: &Column, header: Option<&[String]>) -> Result<Source, String> {
    let field = column.field.clone().unwrap_or_else(|| column.name.clone());
    Ok(match format {
        RecordFormat::Json | RecordFormat::Avro => Source::Path(field.split('.').map(str::to_string).collect()),
        RecordFormat::Csv => match (&header, field.parse::<usize>()) {
            (Some(names), _) if names.contains(&field) => {
                Source::Position(names.iter().position(|n| *n == field).expect("contained"))
            }
            (_, Ok(position)) => Source::Position(position),
            (Some(names), Err(_)) => {
                return Err(format!(
                    "column {}: field {field:?} is not in the CSV header ({}); spec.csv.header lists the field \
                         names separated by commas, whatever the delimiter",
                    column.name,
                    names.join(",")
                ));
            }
            (None, Err(_)) => {
                return Err(format!(
                    "column {}: field {field:?} is a name but spec.csv.header is unset: set the header or use a position",
                    column.name
                ));
            }
        },
    })
}

/// A column from a part of the record other than its value: checked against the column's
/// type here, so a sink never meets a column it cannot fill.
fn record_part(from: ColumnSource, column: &Column, cql_type: &CqlType) -> Result<Source, String> {
    let name = &column.name;
    let scalar = match cql_type {
        CqlType::Scalar(s) => Some(*s),
        _ => None,
    };
    let allowed = |types: &[Scalar], what: &str| -> Result<(), String> {
        match scalar {
            Some(s) if types.contains(&s) => Ok(()),
            _ => {
                Err(format!("column {name}: from {from:?} fills {what} columns, not {}: change its type", column.type_))
            }
        }
    };
    let no_field = || match &column.field {
        Some(_) => Err(format!("column {name}: from {from:?} takes no field: remove it")),
        None => Ok(()),
    };
    Ok(match from {
        ColumnSource::Value => unreachable!("value columns are planned by value_source"),
        ColumnSource::Key => match &column.field {
            None => Source::Key,
            Some(path) => Source::KeyPath(path.split('.').map(str::to_string).collect()),
        },
        ColumnSource::Header => match &column.field {
            Some(h) => Source::Header(h.clone()),
            None => return Err(format!("column {name}: from Header needs field, the header's name")),
        },
        ColumnSource::Timestamp => {
            no_field()?;
            allowed(&[Scalar::Timestamp, Scalar::BigInt], "timestamp or bigint")?;
            Source::Timestamp
        }
        ColumnSource::Partition => {
            no_field()?;
            allowed(&[Scalar::Int, Scalar::BigInt], "int or bigint")?;
            Source::Partition
        }
        ColumnSource::Offset => {
            no_field()?;
            allowed(&[Scalar::BigInt], "bigint")?;
            Source::Offset
        }
        ColumnSource::Now => {
            no_field()?;
            allowed(&[Scalar::TimeUuid, Scalar::Timestamp], "timeuuid or timestamp")?;
            Source::Now
        }
        ColumnSource::Constant => {
            no_field()?;
            match &column.value {
                Some(v) => Source::Constant(v.clone()),
                None => return Err(format!("column {name}: from Constant needs value")),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(columns: serde_json::Value) -> CassandraSinkSpec {
        let mut all = vec![serde_json::json!({"name": "id", "type": "text"})];
        all.extend(columns.as_array().unwrap().iter().cloned());
        serde_json::from_value(serde_json::json!({
            "topic": "data", "table": "t", "partitionKey": ["id"], "columns": all,
        }))
        .unwrap()
    }

    #[test]
    fn a_spec_without_from_keeps_its_meaning() {
        let plan = plan(&spec(serde_json::json!([{"name": "ph", "type": "double", "field": "reading.ph"}]))).unwrap();
        assert_eq!(plan[1].source, Source::Path(vec!["reading".into(), "ph".into()]));
        let column: Column = serde_json::from_value(serde_json::json!({"name": "ph", "type": "double"})).unwrap();
        assert_eq!(column.from, ColumnSource::Value);
        assert_eq!(serde_json::to_value(&column).unwrap(), serde_json::json!({"name": "ph", "type": "double"}));
    }

    #[test]
    fn record_parts_compile_to_their_sources() {
        let plan = plan(&spec(serde_json::json!([
            {"name": "k", "type": "text", "from": "Key"},
            {"name": "kp", "type": "text", "from": "Key", "field": "site.id"},
            {"name": "h", "type": "text", "from": "Header", "field": "source"},
            {"name": "ts", "type": "timestamp", "from": "Timestamp"},
            {"name": "p", "type": "int", "from": "Partition"},
            {"name": "o", "type": "bigint", "from": "Offset"},
            {"name": "n", "type": "timeuuid", "from": "Now"},
            {"name": "c", "type": "text", "from": "Constant", "value": "north"},
        ])))
        .unwrap();
        let sources: Vec<Source> = plan.into_iter().skip(1).map(|c| c.source).collect();
        assert_eq!(
            sources,
            vec![
                Source::Key,
                Source::KeyPath(vec!["site".into(), "id".into()]),
                Source::Header("source".into()),
                Source::Timestamp,
                Source::Partition,
                Source::Offset,
                Source::Now,
                Source::Constant("north".into()),
            ]
        );
    }

    #[test]
    fn impossible_record_parts_are_refused_naming_the_column() {
        let refused = |column: serde_json::Value| plan(&spec(serde_json::json!([column]))).unwrap_err();
        assert_eq!(
            refused(serde_json::json!({"name": "ts", "type": "text", "from": "Timestamp"})),
            "column ts: from Timestamp fills timestamp or bigint columns, not text: change its type"
        );
        assert_eq!(
            refused(serde_json::json!({"name": "o", "type": "int", "from": "Offset"})),
            "column o: from Offset fills bigint columns, not int: change its type"
        );
        assert_eq!(
            refused(serde_json::json!({"name": "n", "type": "uuid", "from": "Now"})),
            "column n: from Now fills timeuuid or timestamp columns, not uuid: change its type"
        );
        assert_eq!(
            refused(serde_json::json!({"name": "h", "type": "text", "from": "Header"})),
            "column h: from Header needs field, the header's name"
        );
        assert_eq!(
            refused(serde_json::json!({"name": "p", "type": "int", "from": "Partition", "field": "x"})),
            "column p: from Partition takes no field: remove it"
        );
        assert_eq!(
            refused(serde_json::json!({"name": "c", "type": "text", "from": "Constant"})),
            "column c: from Constant needs value"
        );
        assert_eq!(
            refused(serde_json::json!({"name": "v", "type": "text", "value": "x"})),
            "column v: value is only for from: Constant; remove it or set from"
        );
    }
}
