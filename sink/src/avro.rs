//! Avro records in Confluent's wire format (`format: Avro`): a magic byte 0, the writer
//! schema's id (4 bytes, big-endian), then the Avro binary body. The writer schema comes from
//! the schema registry (`GET {url}/schemas/ids/{id}`) once per id and is kept in a bounded
//! cache, so decoding does no I/O after a schema's first record. A decoded record becomes a
//! JSON value that the JSON path mapping reads (`Mapping::row_of_json`).
//!
//! What is permanent and what is not: a record not in the wire format, naming an id the
//! registry does not know (404) or not decoding with its writer schema goes to the
//! dead-letter topic with the reason; a registry that does not answer (or answers 5xx, 401)
//! is retried until it does, and the sink reads nothing meanwhile.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::schema::{Name, ResolvedSchema, Schema};
use apache_avro::types::Value as Avro;
use base64::Engine;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Number, Value as Json};

/// Schemas kept (a topic rarely sees more than a few; a bound keeps a hostile stream of ids
/// from growing the sink's memory).
pub const CACHE_CAPACITY: usize = 1024;

/// The id and Avro body of a record in Confluent's wire format.
pub fn parse_wire(payload: &[u8]) -> Result<(u32, &[u8]), String> {
    match payload {
        [0, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        [0, ..] => Err(format!("not Avro in the Confluent wire format: {} bytes, too short", payload.len())),
        [magic, ..] => Err(format!("not Avro in the Confluent wire format: magic byte {magic}, expected 0")),
        [] => Err("not Avro in the Confluent wire format: empty record".into()),
    }
}

/// A writer schema with its named types (what a `Ref` inside it points to).
#[derive(Debug)]
pub struct WriterSchema {
    schema: Schema,
    names: HashMap<Name, Schema>,
}

impl WriterSchema {
    pub fn parse(text: &str) -> Result<WriterSchema, String> {
        let schema = Schema::parse_str(text).map_err(|e| format!("the registry's schema does not parse: {e}"))?;
        let names = ResolvedSchema::try_from(&schema)
            .map_err(|e| format!("the registry's schema does not resolve: {e}"))?
            .get_names()
            .iter()
            .map(|(n, s)| (n.clone(), (*s).clone()))
            .collect();
        Ok(WriterSchema { schema, names })
    }

    /// The record's body decoded and converted to JSON.
    pub fn decode(&self, mut body: &[u8]) -> Result<Json, String> {
        let value = apache_avro::from_avro_datum(&self.schema, &mut body, None)
            .map_err(|e| format!("Avro body does not decode with its writer schema: {e}"))?;
        if !body.is_empty() {
            return Err(format!("Avro body does not decode with its writer schema: {} bytes left over", body.len()));
        }
        self.to_json(&value, &self.schema)
    }

    /// Records → objects, unions → the branch's value, enums → their symbol, bytes and fixed →
    /// base64 (what a blob column reads), decimal → a decimal string, uuid → its string, date →
    /// `YYYY-MM-DD`, time → `HH:MM:SS.ffffff`, timestamps → epoch milliseconds (micros and
    /// nanos rounded down), duration → `{months, days, millis}`.
    fn to_json(&self, value: &Avro, schema: &Schema) -> Result<Json, String> {
        let schema = match schema {
            Schema::Ref { name } => {
                self.names.get(name).ok_or_else(|| format!("the schema names {name} but does not define it"))?
            }
            s => s,
        };
        Ok(match value {
            Avro::Null => Json::Null,
            Avro::Boolean(b) => Json::Bool(*b),
            Avro::Int(i) => Json::from(*i),
            Avro::Long(i) => Json::from(*i),
            Avro::Float(f) => Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number),
            Avro::Double(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Avro::Bytes(b) | Avro::Fixed(_, b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Avro::String(s) | Avro::Enum(_, s) => Json::String(s.clone()),
            Avro::Union(i, v) => {
                let Schema::Union(u) = schema else { return Err("a union value of a non-union schema".into()) };
                let branch = u.variants().get(*i as usize).ok_or("a union branch the schema does not have")?;
                self.to_json(v, branch)?
            }
            Avro::Array(items) => {
                let Schema::Array(a) = schema else { return Err("an array value of a non-array schema".into()) };
                Json::Array(items.iter().map(|i| self.to_json(i, &a.items)).collect::<Result<_, _>>()?)
            }
            Avro::Map(entries) => {
                let Schema::Map(m) = schema else { return Err("a map value of a non-map schema".into()) };
                let mut object = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    object.insert(k.clone(), self.to_json(v, &m.types)?);
                }
                Json::Object(object)
            }
            Avro::Record(fields) => {
                let Schema::Record(r) = schema else { return Err("a record value of a non-record schema".into()) };
                let mut object = Map::with_capacity(fields.len());
                for ((name, v), field) in fields.iter().zip(&r.fields) {
                    object.insert(name.clone(), self.to_json(v, &field.schema)?);
                }
                Json::Object(object)
            }
            Avro::Decimal(d) => {
                let Schema::Decimal(s) = schema else { return Err("a decimal value of a non-decimal schema".into()) };
                let bytes: Vec<u8> = d.try_into().map_err(|e| format!("decimal: {e}"))?;
                Json::String(decimal_string(&bytes, s.scale)?)
            }
            Avro::BigDecimal(d) => Json::String(d.to_string()),
            Avro::Date(days) => Json::String(date_string(*days)?),
            Avro::TimeMillis(ms) => Json::String(time_string(i64::from(*ms) * 1_000)?),
            Avro::TimeMicros(us) => Json::String(time_string(*us)?),
            Avro::TimestampMillis(ms) | Avro::LocalTimestampMillis(ms) => Json::from(*ms),
            Avro::TimestampMicros(us) | Avro::LocalTimestampMicros(us) => Json::from(us.div_euclid(1_000)),
            Avro::TimestampNanos(ns) | Avro::LocalTimestampNanos(ns) => Json::from(ns.div_euclid(1_000_000)),
            Avro::Duration(d) => serde_json::json!({
                "months": u32::from(d.months()),
                "days": u32::from(d.days()),
                "millis": u32::from(d.millis()),
            }),
            Avro::Uuid(u) => Json::String(u.to_string()),
        })
    }
}

/// Big-endian two's complement unscaled value and scale → `-12.345`.
fn decimal_string(unscaled: &[u8], scale: usize) -> Result<String, String> {
    if unscaled.len() > 16 {
        return Err(format!("decimal of {} bytes: more than 38 digits", unscaled.len()));
    }
    let fill = if unscaled.first().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
    let mut be = [fill; 16];
    be[16 - unscaled.len()..].copy_from_slice(unscaled);
    let v = i128::from_be_bytes(be);
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 {
        return Ok(format!("{sign}{digits}"));
    }
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    Ok(format!("{sign}{int}.{frac}"))
}

fn date_string(days: i32) -> Result<String, String> {
    use k8s_openapi::jiff::{ToSpan, civil::Date};
    Date::constant(1970, 1, 1)
        .checked_add(i64::from(days).days())
        .map(|d| d.to_string())
        .map_err(|_| format!("date {days} days from 1970-01-01 is out of range"))
}

fn time_string(micros: i64) -> Result<String, String> {
    if !(0..86_400_000_000).contains(&micros) {
        return Err(format!("time of day {micros} µs is out of range"));
    }
    let (secs, us) = (micros / 1_000_000, micros % 1_000_000);
    Ok(format!("{:02}:{:02}:{:02}.{us:06}", secs / 3600, secs / 60 % 60, secs % 60))
}

/// What the registry says of a schema id: the schema, or that it has none by that id.
pub type Lookup = Result<Arc<WriterSchema>, String>;

/// Schemas by id, the oldest dropped first past the capacity.
pub struct SchemaCache {
    capacity: usize,
    entries: HashMap<u32, Lookup>,
    order: VecDeque<u32>,
}

impl SchemaCache {
    pub fn new(capacity: usize) -> SchemaCache {
        SchemaCache { capacity: capacity.max(1), entries: HashMap::new(), order: VecDeque::new() }
    }

    pub fn get(&self, id: u32) -> Option<&Lookup> {
        self.entries.get(&id)
    }

    pub fn insert(&mut self, id: u32, lookup: Lookup) {
        if self.entries.insert(id, lookup).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The schema registry's Confluent API, with HTTP basic auth when credentials are given.
pub struct Registry {
    base: String,
    authorization: Option<String>,
    client: Client<HttpConnector, Empty<bytes::Bytes>>,
}

impl Registry {
    pub fn new(base: &str, credentials: Option<(String, String)>) -> Result<Registry, String> {
        if !base.starts_with("http://") {
            return Err(format!("schema registry {base:?}: only http:// URLs are supported by this sink"));
        }
        let authorization = credentials.map(|(user, password)| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        });
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(Registry { base: base.trim_end_matches('/').to_string(), authorization, client })
    }

    /// One lookup: `Ok` with the registry's answer (a schema, or unknown id), `Err` when it
    /// gave none (unreachable, 5xx, refused credentials): worth retrying.
    async fn fetch(&self, id: u32) -> Result<Lookup, String> {
        let uri = format!("{}/schemas/ids/{id}", self.base);
        let mut request = http::Request::get(&uri).header(http::header::ACCEPT, "application/json");
        if let Some(a) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, a);
        }
        let request = request.body(Empty::new()).map_err(|e| format!("{uri}: {e}"))?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| format!("schema registry {uri}: no answer in 10 s"))?
            .map_err(|e| format!("schema registry {uri}: {e}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| format!("schema registry {uri}: {e}"))?;
        let body = body.to_bytes();
        if status == http::StatusCode::NOT_FOUND {
            return Ok(Err(format!("schema id {id} is unknown to the schema registry")));
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(format!("schema registry {uri}: {status} {text}"));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            schema: String,
            #[serde(default, rename = "schemaType")]
            schema_type: Option<String>,
        }
        let answer: Answer =
            serde_json::from_slice(&body).map_err(|e| format!("schema registry {uri}: not a schema answer: {e}"))?;
        Ok(match answer.schema_type.as_deref() {
            None | Some("AVRO") => WriterSchema::parse(&answer.schema).map(Arc::new),
            Some(other) => Err(format!("schema id {id} is a {other} schema, not Avro")),
        })
    }
}

/// Decodes a burst's records: their writer schemas looked up first (async, cached), then
/// each record decoded without I/O.
pub struct AvroDecoder {
    registry: Registry,
    cache: Mutex<SchemaCache>,
}

/// The writer schemas of one burst's records, by id.
pub type BurstSchemas = HashMap<u32, Lookup>;

impl AvroDecoder {
    pub fn new(registry: Registry) -> AvroDecoder {
        AvroDecoder { registry, cache: Mutex::new(SchemaCache::new(CACHE_CAPACITY)) }
    }

    /// The schemas these records name, each fetched once; a registry that gives no answer
    /// is asked again (backing off to 30 s) until it does, `on_retry` told each time.
    pub async fn schemas<'a>(&self, payloads: impl Iterator<Item = &'a [u8]>, on_retry: impl Fn(&str)) -> BurstSchemas {
        let mut burst = BurstSchemas::new();
        for payload in payloads {
            let Ok((id, _)) = parse_wire(payload) else { continue };
            if burst.contains_key(&id) {
                continue;
            }
            let cached = self.cache.lock().expect("schema cache lock").get(id).cloned();
            let lookup = match cached {
                Some(l) => l,
                None => {
                    let lookup = self.fetch_until_answered(id, &on_retry).await;
                    self.cache.lock().expect("schema cache lock").insert(id, lookup.clone());
                    lookup
                }
            };
            burst.insert(id, lookup);
        }
        burst
    }

    async fn fetch_until_answered(&self, id: u32, on_retry: &impl Fn(&str)) -> Lookup {
        let mut wait = Duration::from_millis(200);
        loop {
            match self.registry.fetch(id).await {
                Ok(lookup) => return lookup,
                Err(e) => {
                    on_retry(&e);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// One record decoded with its writer schema from `schemas`.
pub fn decode(payload: &[u8], schemas: &BurstSchemas) -> Result<Json, String> {
    let (id, body) = parse_wire(payload)?;
    match schemas.get(&id) {
        Some(Ok(schema)) => schema.decode(body),
        Some(Err(e)) => Err(e.clone()),
        None => Err(format!("schema id {id} was not looked up")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Record;

    #[test]
    fn the_wire_format_is_a_zero_byte_a_big_endian_id_and_the_body() {
        assert_eq!(parse_wire(&[0, 0, 0, 1, 2, 9, 8]), Ok((258, &[9u8, 8][..])));
        assert_eq!(parse_wire(&[0, 0, 0, 0, 7]), Ok((7, &[][..])));
        assert!(parse_wire(b"{\"a\":1}").unwrap_err().contains("magic byte 123"));
        assert!(parse_wire(&[0, 0, 1]).unwrap_err().contains("too short"));
        assert!(parse_wire(&[]).unwrap_err().contains("empty"));
    }

    const SCHEMA: &str = r#"{"type": "record", "name": "Reading", "namespace": "t", "fields": [
        {"name": "station", "type": "string"},
        {"name": "n", "type": "int"},
        {"name": "big", "type": "long"},
        {"name": "ok", "type": "boolean"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "raw", "type": "bytes"},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}},
        {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["LOW", "HIGH"]}},
        {"name": "maybe", "type": ["null", "string"], "default": null},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "pos", "type": {"type": "record", "name": "Pos", "fields": [{"name": "x", "type": "double"}]}},
        {"name": "home", "type": "Pos"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "tsu", "type": {"type": "long", "logicalType": "timestamp-micros"}}
    ]}"#;

    fn encode(schema: &Schema, fill: impl FnOnce(&mut Record<'_>)) -> Vec<u8> {
        let mut record = Record::new(schema).unwrap();
        fill(&mut record);
        apache_avro::to_avro_datum(schema, record).unwrap()
    }

    #[test]
    fn every_avro_type_converts_to_the_json_the_mapping_reads() {
        let writer = WriterSchema::parse(SCHEMA).unwrap();
        let body = encode(&writer.schema, |r| {
            r.put("station", "s-1");
            r.put("n", 7);
            r.put("big", 1i64 << 40);
            r.put("ok", true);
            r.put("f", 1.5f32);
            r.put("d", -2.25f64);
            r.put("raw", Avro::Bytes(vec![1, 2, 3]));
            r.put("hash", Avro::Fixed(2, vec![0xff, 0]));
            r.put("level", Avro::Enum(1, "HIGH".into()));
            r.put("maybe", Avro::Union(1, Box::new(Avro::String("yes".into()))));
            r.put("tags", Avro::Array(vec![Avro::String("a".into())]));
            r.put("attrs", Avro::Map([("k".to_string(), Avro::Long(3))].into()));
            r.put("pos", Avro::Record(vec![("x".into(), Avro::Double(0.5))]));
            r.put("home", Avro::Record(vec![("x".into(), Avro::Double(1.0))]));
            r.put("price", Avro::Decimal(apache_avro::Decimal::from(vec![0xfe, 0x0c])));
            r.put("id", Avro::Uuid(uuid::Uuid::parse_str("550e8400-e29b-41d4-a716-446655440000").unwrap()));
            r.put("day", Avro::Date(20_000));
            r.put("at", Avro::TimeMillis(3_723_004));
            r.put("ts", Avro::TimestampMillis(1_700_000_000_123));
            r.put("tsu", Avro::TimestampMicros(1_700_000_000_123_999));
        });
        let json = writer.decode(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "station": "s-1", "n": 7, "big": 1i64 << 40, "ok": true, "f": 1.5, "d": -2.25,
                "raw": "AQID", "hash": "/wA=", "level": "HIGH", "maybe": "yes", "tags": ["a"],
                "attrs": {"k": 3}, "pos": {"x": 0.5}, "home": {"x": 1.0}, "price": "-5.00",
                "id": "550e8400-e29b-41d4-a716-446655440000", "day": "2024-10-04",
                "at": "01:02:03.004000", "ts": 1_700_000_000_123i64, "tsu": 1_700_000_000_123i64,
            })
        );
    }

    #[test]
    fn a_null_union_branch_is_json_null_and_a_short_body_does_not_decode() {
        let writer = WriterSchema::parse(
            r#"{"type": "record", "name": "R", "fields": [{"name": "a", "type": ["null", "long"]}]}"#,
        )
        .unwrap();
        let body = encode(&writer.schema, |r| r.put("a", Avro::Union(0, Box::new(Avro::Null))));
        assert_eq!(writer.decode(&body).unwrap(), serde_json::json!({"a": null}));
        let long = encode(&writer.schema, |r| r.put("a", Avro::Union(1, Box::new(Avro::Long(1 << 50)))));
        assert!(writer.decode(&long[..2]).unwrap_err().contains("does not decode"));
        let mut extra = long.clone();
        extra.push(0);
        assert!(writer.decode(&extra).unwrap_err().contains("left over"));
    }

    #[test]
    fn decimals_keep_their_scale_and_sign() {
        assert_eq!(decimal_string(&[0x30, 0x39], 2).unwrap(), "123.45");
        assert_eq!(decimal_string(&[0xff], 3).unwrap(), "-0.001");
        assert_eq!(decimal_string(&[0x07], 0).unwrap(), "7");
        assert!(decimal_string(&[1; 17], 0).is_err());
    }

    #[test]
    fn the_cache_keeps_the_newest_ids_up_to_its_capacity() {
        let mut cache = SchemaCache::new(2);
        for id in 1..=3 {
            cache.insert(id, Err(format!("unknown {id}")));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(1).is_none());
        assert_eq!(cache.get(3).cloned().map(|l| l.unwrap_err()), Some("unknown 3".to_string()));
        cache.insert(3, Err("again".into()));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(2).is_some());
    }

    #[test]
    fn a_record_names_its_schema_by_id_and_an_unknown_id_is_the_reason() {
        let writer = Arc::new(
            WriterSchema::parse(r#"{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}"#)
                .unwrap(),
        );
        let body = encode(&writer.schema, |r| r.put("a", 5));
        let schemas: BurstSchemas =
            [(1, Ok(writer)), (2, Err("schema id 2 is unknown to the schema registry".to_string()))].into();
        let framed = |id: u32| [&[0][..], &id.to_be_bytes(), &body].concat();
        assert_eq!(decode(&framed(1), &schemas).unwrap(), serde_json::json!({"a": 5}));
        assert!(decode(&framed(2), &schemas).unwrap_err().contains("unknown"));
        assert!(decode(&body, &schemas).unwrap_err().contains("wire format"));
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_asked_again_and_a_cached_schema_is_not() {
        // Nothing listens on port 9 of localhost: every fetch fails, so the lookup retries.
        let decoder = AvroDecoder::new(Registry::new("http://127.0.0.1:9", None).unwrap());
        let retries = std::sync::atomic::AtomicUsize::new(0);
        let payload = [0u8, 0, 0, 0, 4, 2];
        let lookup = tokio::time::timeout(
            Duration::from_millis(700),
            decoder.schemas(std::iter::once(&payload[..]), |_| {
                retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }),
        )
        .await;
        assert!(lookup.is_err(), "an unreachable registry is no answer");
        assert!(retries.load(std::sync::atomic::Ordering::Relaxed) >= 2);
        let writer = Arc::new(WriterSchema::parse(r#""int""#).unwrap());
        decoder.cache.lock().unwrap().insert(4, Ok(writer));
        let burst = decoder.schemas(std::iter::once(&payload[..]), |e| panic!("fetched again: {e}")).await;
        assert_eq!(decode(&payload, &burst).unwrap(), serde_json::json!(1));
    }
}
