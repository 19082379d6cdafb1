//! Record → row: where each column's value is in a JSON or CSV record, and its conversion to
//! the column's CQL type (pure). An error names the column and the problem; the sink sends
//! such a record to its dead-letter topic with that message.

use scylla::value::{CqlValue, MaybeUnset};
use serde_json::Value as Json;

use tributary_api::columns::{ColumnPlan, Source, plan};
use tributary_api::sink::{CassandraSinkSpec, RecordFormat};

mod convert;
use convert::{Field, convert, now};

/// One column of a row. A field the record does not have is `Absent`: the column is left
/// as it is in the table (bound as unset), so a partial record never erases what another
/// record wrote. Only an explicit null (JSON `null`, an empty CSV field) writes null.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Value(CqlValue),
    Null,
    Absent,
}

impl Cell {
    /// What the prepared INSERT binds: unset for `Absent`, null for `Null`.
    pub fn bind(&self) -> MaybeUnset<Option<&CqlValue>> {
        match self {
            Cell::Value(v) => MaybeUnset::Set(Some(v)),
            Cell::Null => MaybeUnset::Set(None),
            Cell::Absent => MaybeUnset::Unset,
        }
    }
}

/// What a record holds for one column.
enum Found<'a> {
    Absent,
    Null,
    Field(Field<'a>),
}

/// The parts of a Kafka record other than its value that a column can map, borrowed from
/// the record. `headers` is empty unless the mapping reads headers ([`Mapping::needs_headers`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordMeta<'a> {
    pub key: Option<&'a [u8]>,
    pub headers: &'a [(String, Vec<u8>)],
    pub timestamp: Option<i64>,
    pub partition: i32,
    pub offset: i64,
}

/// The compiled mapping of one sink: columns in table order.
#[derive(Clone, Debug)]
pub struct Mapping {
    columns: Vec<ColumnPlan>,
    format: RecordFormat,
    delimiter: u8,
    /// Positions of the partition key columns in a row.
    partition_key: Vec<usize>,
    /// The converted `value` of each `from: Constant` column (None for the others).
    constants: Vec<Option<CqlValue>>,
    /// Some column reads a path in a JSON key: only then is a key parsed.
    key_json: bool,
    needs_headers: bool,
}

impl Mapping {
    /// Compiles the spec; an error is a spec problem (the operator reports it before any
    /// sink starts, so a running sink never sees one).
    pub fn new(spec: &CassandraSinkSpec) -> Result<Mapping, String> {
        let columns = plan(spec)?;
        let delimiter =
            spec.csv.as_ref().map(|c| c.delimiter.as_bytes().first().copied().unwrap_or(b',')).unwrap_or(b',');
        let partition_key =
            spec.partition_key.iter().filter_map(|k| columns.iter().position(|c| &c.name == k)).collect();
        let constants = columns
            .iter()
            .map(|c| match &c.source {
                Source::Constant(v) => convert(&c.cql_type, Field::Text(v))
                    .map(Some)
                    .map_err(|e| format!("column {}: value {e}: change value or type", c.name)),
                _ => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        let key_json = columns.iter().any(|c| matches!(c.source, Source::KeyPath(_)));
        let needs_headers = columns.iter().any(|c| c.source.needs_headers());
        Ok(Mapping { columns, format: spec.format, delimiter, partition_key, constants, key_json, needs_headers })
    }

    /// Whether the sink must copy a record's headers for [`Mapping::row_of`].
    pub fn needs_headers(&self) -> bool {
        self.needs_headers
    }

    /// A row's partition key values, as a string that is equal for rows of one partition.
    pub fn partition_of(&self, row: &[Cell]) -> String {
        format!("{:?}", self.partition_key.iter().map(|i| &row[*i]).collect::<Vec<_>>())
    }

    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// The row for a record's value alone (no key, headers or metadata), cells in
    /// [`Mapping::column_names`] order.
    pub fn row(&self, payload: &[u8]) -> Result<Vec<Cell>, String> {
        self.row_of(payload, &RecordMeta::default())
    }

    /// The row for one record, cells in [`Mapping::column_names`] order. The value is
    /// parsed once; the key is parsed only when a column reads a path in it.
    pub fn row_of(&self, payload: &[u8], meta: &RecordMeta<'_>) -> Result<Vec<Cell>, String> {
        let key: Option<Json> = match (self.key_json, meta.key) {
            (true, Some(k)) => Some(serde_json::from_slice(k).map_err(|e| format!("key is not JSON: {e}"))?),
            _ => None,
        };
        match self.format {
            RecordFormat::Json => {
                let record: Json = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
                self.cells(meta, key.as_ref(), |path| json_at(&record, path), |_| unreachable!("JSON has no positions"))
            }
            RecordFormat::Csv => {
                let mut reader =
                    csv::ReaderBuilder::new().has_headers(false).delimiter(self.delimiter).from_reader(payload);
                let record = match reader.records().next() {
                    Some(r) => r.map_err(|e| format!("not CSV: {e}"))?,
                    None => return Err("empty CSV record".into()),
                };
                self.cells(
                    meta,
                    key.as_ref(),
                    |_| unreachable!("CSV has no paths"),
                    |i| match record.get(i) {
                        None => Found::Absent,
                        Some("") => Found::Null,
                        Some(s) => Found::Field(Field::Text(s)),
                    },
                )
            }
            RecordFormat::Avro => Err("an Avro record is decoded before it is mapped (row_of_json)".into()),
        }
    }

    /// The row for a record whose value is already decoded to JSON (an Avro record): its
    /// fields are read by the columns' paths like a JSON record's.
    pub fn row_of_json(&self, record: &Json, meta: &RecordMeta<'_>) -> Result<Vec<Cell>, String> {
        let key: Option<Json> = match (self.key_json, meta.key) {
            (true, Some(k)) => Some(serde_json::from_slice(k).map_err(|e| format!("key is not JSON: {e}"))?),
            _ => None,
        };
        self.cells(
            meta,
            key.as_ref(),
            |path| json_at(record, path),
            |_| unreachable!("decoded records have no positions"),
        )
    }

    /// Each column's cell: `path` and `position` find a value field; the other sources are
    /// read from `meta` here.
    fn cells<'r>(
        &self,
        meta: &RecordMeta<'r>,
        key: Option<&'r Json>,
        path: impl Fn(&[String]) -> Found<'r>,
        position: impl Fn(usize) -> Found<'r>,
    ) -> Result<Vec<Cell>, String> {
        let bytes = |b: Option<&'r [u8]>| b.map_or(Found::Absent, |b| Found::Field(Field::Bytes(b)));
        let number = |n: i64| Found::Field(Field::Int(n));
        self.columns
            .iter()
            .zip(&self.constants)
            .map(|(c, constant)| {
                let found = match &c.source {
                    Source::Path(p) => path(p),
                    Source::Position(i) => position(*i),
                    Source::Key => bytes(meta.key),
                    Source::KeyPath(p) => key.map_or(Found::Absent, |k| json_at(k, p)),
                    Source::Header(name) => {
                        bytes(meta.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice()))
                    }
                    Source::Timestamp => meta.timestamp.map_or(Found::Absent, number),
                    Source::Partition => number(meta.partition.into()),
                    Source::Offset => number(meta.offset),
                    Source::Now => return Ok(Cell::Value(now(&c.cql_type))),
                    Source::Constant(_) => return Ok(Cell::Value(constant.clone().expect("compiled"))),
                };
                self.cell(c, found)
            })
            .collect()
    }

    fn cell(&self, column: &ColumnPlan, found: Found<'_>) -> Result<Cell, String> {
        match found {
            Found::Field(field) => {
                convert(&column.cql_type, field).map(Cell::Value).map_err(|e| format!("column {}: {e}", column.name))
            }
            _ if column.required => Err(format!("column {}: key column is missing or null", column.name)),
            Found::Null => Ok(Cell::Null),
            Found::Absent => Ok(Cell::Absent),
        }
    }
}

fn json_at<'r>(record: &'r Json, path: &[String]) -> Found<'r> {
    match path.iter().try_fold(record, |v, key| v.get(key)) {
        None => Found::Absent,
        Some(Json::Null) => Found::Null,
        Some(v) => Found::Field(Field::Json(v)),
    }
}

#[cfg(test)]
mod tests {
    use scylla::value::{CqlDate, CqlDecimal, CqlTimestamp};

    use super::convert::{minimal_be, parse_decimal};
    use super::*;
    use tributary_api::sink::{Column, ColumnSource, CsvOptions};

    fn spec(format: RecordFormat, columns: &[(&str, &str, Option<&str>)]) -> CassandraSinkSpec {
        CassandraSinkSpec {
            topic: "data".into(),
            topic_tenant: None,
            table: "t".into(),
            columns: columns
                .iter()
                .map(|(n, t, f)| Column {
                    name: n.to_string(),
                    type_: t.to_string(),
                    field: f.map(str::to_string),
                    ..Default::default()
                })
                .collect(),
            partition_key: vec![columns[0].0.to_string()],
            clustering_key: vec![],
            format,
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

    #[test]
    fn json_records_map_nested_fields_and_convert_types() {
        let mapping = Mapping::new(&spec(
            RecordFormat::Json,
            &[
                ("id", "uuid", None),
                ("ts", "timestamp", Some("meta.time")),
                ("ph", "double", Some("reading.ph")),
                ("price", "decimal", None),
                ("tags", "map<text, int>", None),
                ("alarms", "list<text>", None),
                ("note", "text", None),
                ("day", "date", None),
            ],
        ))
        .unwrap();
        let record = br#"{"id":"0b6f4c1e-6a43-4c31-9d64-5d1f0e7e6d11","meta":{"time":"2026-11-24T10:00:00.250Z"},
            "reading":{"ph":"7.25"},"price":"12.50","tags":{"a":1},"alarms":["low","high"],"day":"1970-01-02"}"#;
        let row = mapping.row(record).unwrap();
        assert_eq!(
            row[0],
            Cell::Value(CqlValue::Uuid(uuid::Uuid::parse_str("0b6f4c1e-6a43-4c31-9d64-5d1f0e7e6d11").unwrap()))
        );
        assert_eq!(row[1], Cell::Value(CqlValue::Timestamp(CqlTimestamp(1_795_514_400_250))));
        assert_eq!(row[2], Cell::Value(CqlValue::Double(7.25)));
        assert_eq!(
            row[3],
            Cell::Value(CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_slice_and_exponent(&[0x04, 0xe2], 2)))
        );
        assert_eq!(row[4], Cell::Value(CqlValue::Map(vec![(CqlValue::Text("a".into()), CqlValue::Int(1))])));
        assert_eq!(
            row[5],
            Cell::Value(CqlValue::List(vec![CqlValue::Text("low".into()), CqlValue::Text("high".into())]))
        );
        assert_eq!(row[6], Cell::Absent, "a field the record lacks leaves the column untouched");
        assert_eq!(row[7], Cell::Value(CqlValue::Date(CqlDate((1 << 31) + 1))));
        // A JSON number is read as a double first (serde_json), so 12.50 arrives as 12.5:
        // the same value; send decimals as strings to keep trailing digits and precision.
        let number = mapping.row(br#"{"id":"0b6f4c1e-6a43-4c31-9d64-5d1f0e7e6d11","price":12.50}"#).unwrap();
        assert_eq!(
            number[3],
            Cell::Value(CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_slice_and_exponent(&[125], 1)))
        );
    }

    #[test]
    fn only_an_explicit_null_writes_null_and_a_missing_field_is_left_unset() {
        let mapping = Mapping::new(&spec(
            RecordFormat::Json,
            &[("station", "text", None), ("ph", "double", Some("reading.ph")), ("note", "text", None)],
        ))
        .unwrap();
        let row = mapping.row(br#"{"station":"s1","reading":{"ph":null}}"#).unwrap();
        assert_eq!(row, vec![Cell::Value(CqlValue::Text("s1".into())), Cell::Null, Cell::Absent]);
        assert!(matches!(row[1].bind(), MaybeUnset::Set(None)), "null is bound as null");
        assert!(matches!(row[2].bind(), MaybeUnset::Unset), "absent is bound as unset");
        // A missing parent object is a missing field too.
        assert_eq!(mapping.row(br#"{"station":"s1"}"#).unwrap()[1], Cell::Absent);
        // CSV: a record shorter than the column's position lacks the field; an empty field is null.
        let csv =
            Mapping::new(&spec(RecordFormat::Csv, &[("station", "text", Some("0")), ("ph", "double", Some("1"))]))
                .unwrap();
        assert_eq!(csv.row(b"s1").unwrap()[1], Cell::Absent);
        assert_eq!(csv.row(b"s1,").unwrap()[1], Cell::Null);
    }

    #[test]
    fn bad_records_are_refused_with_the_column_and_the_reason() {
        let mapping =
            Mapping::new(&spec(RecordFormat::Json, &[("station", "text", None), ("ph", "double", None)])).unwrap();
        assert_eq!(
            mapping.row(br#"{"station":"s1","ph":"acid"}"#).unwrap_err(),
            r#"column ph: "acid" is not a number"#
        );
        assert_eq!(mapping.row(br#"{"ph":7}"#).unwrap_err(), "column station: key column is missing or null");
        assert!(mapping.row(b"{not json").unwrap_err().starts_with("not JSON: "));
        let ints = Mapping::new(&spec(RecordFormat::Json, &[("k", "tinyint", None)])).unwrap();
        assert_eq!(ints.row(br#"{"k":300}"#).unwrap_err(), "column k: 300 is out of range for tinyint");
    }

    #[test]
    fn csv_records_map_by_header_name_or_position() {
        let mut by_name = spec(RecordFormat::Csv, &[("station", "text", None), ("ph", "double", Some("ph"))]);
        by_name.csv = Some(CsvOptions { header: Some("ts,station,ph".into()), delimiter: ";".into() });
        let mapping = Mapping::new(&by_name).unwrap();
        assert_eq!(
            mapping.row(b"17;s1;7.5").unwrap(),
            vec![Cell::Value(CqlValue::Text("s1".into())), Cell::Value(CqlValue::Double(7.5))]
        );

        let by_position = spec(RecordFormat::Csv, &[("station", "text", Some("1")), ("ph", "double", Some("2"))]);
        let mapping = Mapping::new(&by_position).unwrap();
        assert_eq!(mapping.row(b"17,\"s,1\",").unwrap(), vec![Cell::Value(CqlValue::Text("s,1".into())), Cell::Null]);

        let unknown = spec(RecordFormat::Csv, &[("station", "text", Some("name"))]);
        assert!(Mapping::new(&unknown).unwrap_err().contains("spec.csv.header is unset"));
    }

    fn from(name: &str, t: &str, from: ColumnSource, field: Option<&str>, value: Option<&str>) -> Column {
        Column {
            name: name.into(),
            type_: t.into(),
            field: field.map(str::to_string),
            from,
            value: value.map(str::to_string),
        }
    }

    #[test]
    fn columns_map_the_key_headers_and_record_metadata() {
        let mut spec = spec(RecordFormat::Json, &[("reading", "double", Some("ph"))]);
        spec.columns = vec![
            from("site", "text", ColumnSource::Key, Some("site.id"), None),
            from("raw_key", "text", ColumnSource::Key, None, None),
            from("key_blob", "blob", ColumnSource::Key, None, None),
            from("source", "text", ColumnSource::Header, Some("source"), None),
            from("batch", "int", ColumnSource::Header, Some("batch"), None),
            from("missing", "text", ColumnSource::Header, Some("nope"), None),
            from("ts", "timestamp", ColumnSource::Timestamp, None, None),
            from("ts_ms", "bigint", ColumnSource::Timestamp, None, None),
            from("part", "int", ColumnSource::Partition, None, None),
            from("off", "bigint", ColumnSource::Offset, None, None),
            from("plant", "text", ColumnSource::Constant, None, Some("north")),
            from("factor", "double", ColumnSource::Constant, None, Some("1.5")),
            from("written", "timeuuid", ColumnSource::Now, None, None),
            from("written_at", "timestamp", ColumnSource::Now, None, None),
            from("reading", "double", ColumnSource::Value, Some("ph"), None),
        ];
        spec.partition_key = vec!["site".into()];
        let mapping = Mapping::new(&spec).unwrap();
        assert!(mapping.needs_headers());
        let key = br#"{"site":{"id":"s7"}}"#;
        let headers = vec![("source".to_string(), b"probe".to_vec()), ("batch".to_string(), b"42".to_vec())];
        let meta = RecordMeta {
            key: Some(key),
            headers: &headers,
            timestamp: Some(1_795_514_400_250),
            partition: 3,
            offset: 1234,
        };
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let row = mapping.row_of(br#"{"ph":7.5}"#, &meta).unwrap();
        let text = |t: &str| Cell::Value(CqlValue::Text(t.into()));
        assert_eq!(row[0], text("s7"));
        assert_eq!(row[1], text(r#"{"site":{"id":"s7"}}"#));
        assert_eq!(row[2], Cell::Value(CqlValue::Blob(key.to_vec())), "a blob takes the key's bytes as they are");
        assert_eq!(row[3], text("probe"));
        assert_eq!(row[4], Cell::Value(CqlValue::Int(42)));
        assert_eq!(row[5], Cell::Absent, "a header the record lacks leaves the column untouched");
        assert_eq!(row[6], Cell::Value(CqlValue::Timestamp(CqlTimestamp(1_795_514_400_250))));
        assert_eq!(row[7], Cell::Value(CqlValue::BigInt(1_795_514_400_250)));
        assert_eq!(row[8], Cell::Value(CqlValue::Int(3)));
        assert_eq!(row[9], Cell::Value(CqlValue::BigInt(1234)));
        assert_eq!(row[10], text("north"));
        assert_eq!(row[11], Cell::Value(CqlValue::Double(1.5)));
        let Cell::Value(CqlValue::Timeuuid(written)) = &row[12] else { panic!("{:?}", row[12]) };
        let written = uuid::Uuid::from(*written);
        assert_eq!(written.get_version_num(), 1);
        let (seconds, nanos) = written.get_timestamp().unwrap().to_unix();
        let written_ms = seconds as i64 * 1000 + i64::from(nanos) / 1_000_000;
        let Cell::Value(CqlValue::Timestamp(CqlTimestamp(at))) = row[13] else { panic!("{:?}", row[13]) };
        assert!(before <= written_ms && written_ms <= at, "now() is the time of mapping: {before} {written_ms} {at}");
        assert_eq!(row[14], Cell::Value(CqlValue::Double(7.5)));
        let again = mapping.row_of(br#"{"ph":7.5}"#, &meta).unwrap();
        assert_ne!(again[12], row[12], "each row gets its own timeuuid");

        // A key column from a key path: a record without that key, or with a key that is not
        // JSON, is refused (dead-lettered) with the reason.
        let no_key = RecordMeta { key: None, ..meta };
        assert_eq!(mapping.row_of(b"{}", &no_key).unwrap_err(), "column site: key column is missing or null");
        let not_json = RecordMeta { key: Some(b"s7"), ..meta };
        assert!(mapping.row_of(b"{}", &not_json).unwrap_err().starts_with("key is not JSON: "));
    }

    #[test]
    fn the_key_is_parsed_and_headers_copied_only_when_a_column_asks() {
        let mut raw = spec(RecordFormat::Json, &[("site", "text", None)]);
        raw.columns[0].from = ColumnSource::Key;
        let mapping = Mapping::new(&raw).unwrap();
        assert!(!mapping.needs_headers());
        // A key that is not JSON is fine when no column reads a path in it.
        let meta = RecordMeta { key: Some(b"plain key"), ..Default::default() };
        assert_eq!(mapping.row_of(b"{}", &meta).unwrap(), vec![Cell::Value(CqlValue::Text("plain key".into()))]);
        // CSV values map key and metadata columns too.
        let mut csv = spec(RecordFormat::Csv, &[("site", "text", None), ("ph", "double", Some("0"))]);
        csv.columns[0].from = ColumnSource::Key;
        let mapping = Mapping::new(&csv).unwrap();
        assert_eq!(
            mapping.row_of(b"7.5", &meta).unwrap(),
            vec![Cell::Value(CqlValue::Text("plain key".into())), Cell::Value(CqlValue::Double(7.5))]
        );
    }

    #[test]
    fn a_constant_is_converted_once_and_a_bad_one_refuses_the_spec() {
        let mut bad = spec(RecordFormat::Json, &[("site", "text", None), ("factor", "int", None)]);
        bad.columns[1].from = ColumnSource::Constant;
        bad.columns[1].value = Some("high".into());
        assert_eq!(
            Mapping::new(&bad).unwrap_err(),
            r#"column factor: value "high" is not an integer: change value or type"#
        );
    }

    #[test]
    fn decimals_and_varints_use_minimal_twos_complement() {
        assert_eq!(parse_decimal("12.50"), Some((1250, 2)));
        assert_eq!(parse_decimal("-1.5e3"), Some((-15, -2)));
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(minimal_be(0), vec![0]);
        assert_eq!(minimal_be(128), vec![0, 128]);
        assert_eq!(minimal_be(-1), vec![0xff]);
        assert_eq!(minimal_be(-129), vec![0xff, 0x7f]);
    }
}
