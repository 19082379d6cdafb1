//! The columns of a CassandraSink as the sink writes them: each column's CQL type and where
//! its value is in a record (pure). The sink compiles its mapping from [`plan`], and the
//! operator calls the same before it creates a table or starts a pod, so a spec the sink
//! cannot run is reported in the CassandraSink's status, never met by a running pod.

use crate::sink::{CassandraSinkSpec, RecordFormat};

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
        let field = column.field.clone().unwrap_or_else(|| column.name.clone());
        let source = match spec.format {
            RecordFormat::Json => Source::Path(field.split('.').map(str::to_string).collect()),
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
        };
        columns.push(ColumnPlan {
            name: column.name.clone(),
            cql_type,
            source,
            required: key_columns.contains(&column.name.as_str()),
        });
    }
    Ok(columns)
}
