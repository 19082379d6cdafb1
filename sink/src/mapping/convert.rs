//! A record's field → the column's CQL value (pure): the conversions of every scalar and
//! collection type the sink writes, and CQL `now()`.

use std::net::IpAddr;

use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::civil::Date;
use scylla::value::{CqlDate, CqlDecimal, CqlTimestamp, CqlTimeuuid, CqlValue, CqlVarint};
use serde_json::Value as Json;

use tributary_api::columns::{CqlType, Scalar};

/// CQL `now()` for the column: a version 1 UUID of this instant, or the instant itself.
pub(super) fn now(cql_type: &CqlType) -> CqlValue {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    match cql_type {
        CqlType::Scalar(Scalar::TimeUuid) => CqlValue::Timeuuid(CqlTimeuuid::from(timeuuid(since_epoch))),
        _ => CqlValue::Timestamp(CqlTimestamp(since_epoch.as_millis() as i64)),
    }
}

/// A version 1 UUID: 100 ns ticks since 1582-10-15, a random clock sequence and node (the
/// randomness keeps two rows written in one tick apart).
pub(super) fn timeuuid(since_epoch: std::time::Duration) -> uuid::Uuid {
    const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;
    let ticks = GREGORIAN_OFFSET + (since_epoch.as_nanos() / 100) as u64;
    use std::hash::BuildHasher;
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let random = std::collections::hash_map::RandomState::new()
        .hash_one(SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let clock_seq = ((random >> 48) as u16 & 0x3fff) | 0x8000;
    let node = random & 0x0000_ffff_ffff_ffff;
    let high = ((ticks & 0xffff_ffff) << 32) | (((ticks >> 32) & 0xffff) << 16) | ((ticks >> 48) & 0x0fff) | 0x1000;
    uuid::Uuid::from_u64_pair(high, (u64::from(clock_seq) << 48) | node)
}

#[derive(Clone, Copy)]
pub(super) enum Field<'a> {
    Json(&'a Json),
    Text(&'a str),
    /// A record key or header: text as UTF-8, or a blob as is.
    Bytes(&'a [u8]),
    /// A record's timestamp, partition or offset.
    Int(i64),
}

impl Field<'_> {
    /// The field as text: a JSON string as is, a JSON number or boolean as written.
    fn text(&self) -> Result<String, String> {
        match self {
            Field::Text(s) => Ok(s.to_string()),
            Field::Bytes(b) => std::str::from_utf8(b).map(str::to_string).map_err(|_| "not UTF-8 text".to_string()),
            Field::Int(n) => Ok(n.to_string()),
            Field::Json(Json::String(s)) => Ok(s.clone()),
            Field::Json(v @ (Json::Number(_) | Json::Bool(_))) => Ok(v.to_string()),
            Field::Json(v) => Err(format!("expected a scalar, found {}", kind(v))),
        }
    }
}

pub(super) fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

pub(super) fn convert(cql_type: &CqlType, field: Field<'_>) -> Result<CqlValue, String> {
    match cql_type {
        CqlType::Scalar(s) => scalar(*s, field),
        CqlType::List(s) | CqlType::Set(s) => {
            let items: Vec<CqlValue> = match field {
                Field::Json(Json::Array(items)) => {
                    items.iter().map(|i| scalar(*s, Field::Json(i))).collect::<Result<_, _>>()?
                }
                Field::Json(v) => return Err(format!("expected an array, found {}", kind(v))),
                // CSV (and a key or header): items separated by '|'.
                other => other.text()?.split('|').map(|i| scalar(*s, Field::Text(i))).collect::<Result<_, _>>()?,
            };
            Ok(if matches!(cql_type, CqlType::List(_)) { CqlValue::List(items) } else { CqlValue::Set(items) })
        }
        CqlType::Map(k, v) => {
            let Field::Json(Json::Object(entries)) = field else {
                return Err("expected a JSON object for a map".into());
            };
            let pairs = entries
                .iter()
                .map(|(key, value)| Ok((scalar(*k, Field::Text(key))?, scalar(*v, Field::Json(value))?)))
                .collect::<Result<Vec<_>, String>>()?;
            Ok(CqlValue::Map(pairs))
        }
    }
}

pub(super) fn scalar(s: Scalar, field: Field<'_>) -> Result<CqlValue, String> {
    let text = || field.text();
    let number = |what: &str| -> Result<String, String> {
        let t = text()?;
        if let Field::Json(Json::Bool(_)) = field {
            return Err(format!("expected {what}, found a boolean"));
        }
        Ok(t.trim().to_string())
    };
    let int = |what: &'static str| -> Result<i64, String> {
        let t = number(what)?;
        t.parse::<i64>().map_err(|_| format!("{t:?} is not {what}"))
    };
    let bounded = |v: i64, min: i64, max: i64, what: &str| {
        if v < min || v > max { Err(format!("{v} is out of range for {what}")) } else { Ok(v) }
    };
    Ok(match s {
        Scalar::Text => CqlValue::Text(text()?),
        Scalar::Ascii => {
            let t = text()?;
            if !t.is_ascii() {
                return Err(format!("{t:?} is not ASCII"));
            }
            CqlValue::Ascii(t)
        }
        Scalar::Boolean => match field {
            Field::Json(Json::Bool(b)) => CqlValue::Boolean(*b),
            _ => match text()?.trim().to_ascii_lowercase().as_str() {
                "true" => CqlValue::Boolean(true),
                "false" => CqlValue::Boolean(false),
                other => return Err(format!("{other:?} is not a boolean")),
            },
        },
        Scalar::TinyInt => {
            CqlValue::TinyInt(bounded(int("an integer")?, i8::MIN.into(), i8::MAX.into(), "tinyint")? as i8)
        }
        Scalar::SmallInt => {
            CqlValue::SmallInt(bounded(int("an integer")?, i16::MIN.into(), i16::MAX.into(), "smallint")? as i16)
        }
        Scalar::Int => CqlValue::Int(bounded(int("an integer")?, i32::MIN.into(), i32::MAX.into(), "int")? as i32),
        Scalar::BigInt => CqlValue::BigInt(int("an integer")?),
        Scalar::VarInt => {
            let t = number("an integer")?;
            let v: i128 = t.parse().map_err(|_| format!("{t:?} is not an integer"))?;
            CqlValue::Varint(CqlVarint::from_signed_bytes_be_slice(&minimal_be(v)))
        }
        Scalar::Double => {
            let t = number("a number")?;
            CqlValue::Double(t.parse().map_err(|_| format!("{t:?} is not a number"))?)
        }
        Scalar::Float => {
            let t = number("a number")?;
            CqlValue::Float(t.parse().map_err(|_| format!("{t:?} is not a number"))?)
        }
        Scalar::Decimal => {
            let t = number("a decimal")?;
            let (unscaled, scale) = parse_decimal(&t).ok_or_else(|| format!("{t:?} is not a decimal"))?;
            CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_slice_and_exponent(&minimal_be(unscaled), scale))
        }
        Scalar::Timestamp => match field {
            // Epoch milliseconds as a JSON number.
            Field::Json(Json::Number(n)) => {
                CqlValue::Timestamp(CqlTimestamp(n.as_i64().ok_or_else(|| format!("{n} is not epoch milliseconds"))?))
            }
            _ => {
                let t = text()?;
                let t = t.trim();
                let millis = match t.parse::<i64>() {
                    Ok(ms) => ms,
                    Err(_) => t
                        .parse::<Timestamp>()
                        .map_err(|_| format!("{t:?} is not an RFC 3339 timestamp or epoch milliseconds"))?
                        .as_millisecond(),
                };
                CqlValue::Timestamp(CqlTimestamp(millis))
            }
        },
        Scalar::Date => {
            let t = text()?;
            let date: Date = t.trim().parse().map_err(|_| format!("{t:?} is not a date (YYYY-MM-DD)"))?;
            let days = date.since(Date::constant(1970, 1, 1)).map_err(|e| e.to_string())?.get_days();
            CqlValue::Date(CqlDate((1u32 << 31).wrapping_add_signed(days)))
        }
        Scalar::Time => {
            let t = text()?;
            let time: k8s_openapi::jiff::civil::Time =
                t.trim().parse().map_err(|_| format!("{t:?} is not a time (HH:MM:SS[.fff])"))?;
            let nanos = time.since(k8s_openapi::jiff::civil::Time::midnight()).map_err(|e| e.to_string())?;
            CqlValue::Time(scylla::value::CqlTime(
                nanos.total(k8s_openapi::jiff::Unit::Nanosecond).map_err(|e| e.to_string())? as i64,
            ))
        }
        Scalar::Uuid => CqlValue::Uuid(uuid(&text()?)?),
        Scalar::TimeUuid => {
            let u = uuid(&text()?)?;
            if u.get_version_num() != 1 {
                return Err(format!("{u} is not a time-based (version 1) UUID"));
            }
            CqlValue::Timeuuid(CqlTimeuuid::from(u))
        }
        Scalar::Inet => {
            let t = text()?;
            CqlValue::Inet(t.trim().parse::<IpAddr>().map_err(|_| format!("{t:?} is not an IP address"))?)
        }
        // A key or header is bytes already.
        Scalar::Blob => match field {
            Field::Bytes(b) => CqlValue::Blob(b.to_vec()),
            _ => {
                use base64::Engine;
                let t = text()?;
                CqlValue::Blob(
                    base64::engine::general_purpose::STANDARD
                        .decode(t.trim())
                        .map_err(|_| format!("{t:?} is not base64"))?,
                )
            }
        },
    })
}

pub(super) fn uuid(t: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(t.trim()).map_err(|_| format!("{t:?} is not a UUID"))
}

/// Big-endian two's complement in the fewest bytes (what CQL varint/decimal expect).
pub(super) fn minimal_be(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < bytes.len() - 1 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// `-12.345e2` → (unscaled -12345, scale 1). Up to 38 significant digits.
pub(super) fn parse_decimal(t: &str) -> Option<(i128, i32)> {
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let all = format!("{int_part}{frac_part}");
    let unscaled: i128 = all.parse().ok()?;
    let scale = i32::try_from(frac_part.len()).ok()?.checked_sub(exponent)?;
    Some((if negative { -unscaled } else { unscaled }, scale))
}
