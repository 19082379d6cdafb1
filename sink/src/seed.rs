//! Records of the seeds' two datasets, generated deterministically from an index: water
//! quality readings (tenant `water`) and BTS alarm events (tenant `bts`). The same index
//! always gives the same record, so a test can compute what must be in Cassandra.

use std::fmt::Write as _;

/// The seed datasets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    Water,
    Bts,
}

impl std::str::FromStr for Dataset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "water" => Ok(Dataset::Water),
            "bts" => Ok(Dataset::Bts),
            other => Err(format!("unknown dataset {other:?}: use water or bts")),
        }
    }
}

/// 2026-01-01T00:00:00Z in epoch milliseconds: readings start there, one per second.
pub const EPOCH_MS: i64 = 1_767_225_600_000;

/// A record as produced: Kafka key and JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedRecord {
    pub key: String,
    pub value: String,
}

/// splitmix64: a fast, well-mixed hash of the index, for the generated values.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One water reading: station, time, and measurements nested under `reading`.
#[derive(Clone, Debug, PartialEq)]
pub struct WaterReading {
    pub station: String,
    pub ts_ms: i64,
    pub ph: f64,
    pub turbidity: f64,
    pub temperature: f64,
    pub conductivity: i32,
}

/// One BTS alarm event.
#[derive(Clone, Debug, PartialEq)]
pub struct BtsAlarm {
    pub site: String,
    pub event_time_ms: i64,
    pub alarm_id: String,
    pub severity: &'static str,
    pub code: i32,
    /// Decimal as text, exact.
    pub value: String,
    pub region: &'static str,
}

pub fn water(run: &str, i: u64) -> WaterReading {
    let h = mix(i);
    WaterReading {
        station: format!("{run}-st{:03}", i % 40),
        ts_ms: EPOCH_MS + i as i64 * 1000,
        ph: 6.0 + (h % 300) as f64 / 100.0,
        turbidity: ((h >> 16) % 5000) as f64 / 100.0,
        temperature: 4.0 + ((h >> 32) % 2200) as f64 / 100.0,
        conductivity: 100 + ((h >> 40) % 900) as i32,
    }
}

pub fn bts(run: &str, i: u64) -> BtsAlarm {
    const SEVERITIES: [&str; 4] = ["CRITICAL", "MAJOR", "MINOR", "WARNING"];
    const REGIONS: [&str; 3] = ["north", "south", "coast"];
    let h = mix(i ^ 0x5eed);
    let id = mix(h);
    BtsAlarm {
        site: format!("{run}-bts{:03}", i % 60),
        event_time_ms: EPOCH_MS + i as i64 * 500,
        // A version-4-shaped UUID from the hash bits.
        alarm_id: format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            id & 0xfff,
            (id >> 16) & 0xffff_ffff_ffff
        ),
        severity: SEVERITIES[(h % 4) as usize],
        code: 1000 + (h % 250) as i32,
        value: format!("{}.{:02}", (h >> 8) % 1000, (h >> 20) % 100),
        region: REGIONS[((h >> 4) % 3) as usize],
    }
}

/// The record for index `i` of a dataset, as JSON the CassandraSink examples map.
pub fn record(dataset: Dataset, run: &str, i: u64) -> SeedRecord {
    match dataset {
        Dataset::Water => {
            let r = water(run, i);
            SeedRecord {
                key: r.station.clone(),
                value: format!(
                    r#"{{"station":"{}","ts":{},"reading":{{"ph":{},"turbidity":{},"temperature":{}}},"conductivity":{}}}"#,
                    r.station, r.ts_ms, r.ph, r.turbidity, r.temperature, r.conductivity
                ),
            }
        }
        Dataset::Bts => {
            let a = bts(run, i);
            let mut value = String::new();
            write!(
                value,
                r#"{{"site":"{}","time":{},"alarm_id":"{}","severity":"{}","code":{},"value":"{}","tags":{{"region":"{}"}}}}"#,
                a.site, a.event_time_ms, a.alarm_id, a.severity, a.code, a.value, a.region
            )
            .expect("writing to a String");
            SeedRecord { key: a.site, value }
        }
    }
}

/// A record the sink must dead-letter: alternately not JSON at all, and JSON whose number
/// field holds text.
pub fn malformed(dataset: Dataset, run: &str, i: u64) -> SeedRecord {
    let key = format!("{run}-malformed-{i}");
    let value = if i.is_multiple_of(2) {
        format!("{{this is not json #{i}")
    } else {
        match dataset {
            Dataset::Water => format!(r#"{{"station":"{key}","ts":1,"reading":{{"ph":"acidic"}}}}"#),
            Dataset::Bts => format!(r#"{{"site":"{key}","time":1,"alarm_id":"not-a-uuid"}}"#),
        }
    };
    SeedRecord { key, value }
}

/// Whether index `i` is a malformed record when one in `every` is (0: none).
pub fn is_malformed(i: u64, every: u64) -> bool {
    every > 0 && i % every == every - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_deterministic_json_the_examples_can_map() {
        let a = record(Dataset::Water, "r1", 7);
        assert_eq!(a, record(Dataset::Water, "r1", 7));
        let v: serde_json::Value = serde_json::from_str(&a.value).unwrap();
        assert_eq!(v["station"], "r1-st007");
        assert!(v["reading"]["ph"].as_f64().unwrap() >= 6.0);
        let b: serde_json::Value = serde_json::from_str(&record(Dataset::Bts, "r1", 7).value).unwrap();
        assert!(uuid::Uuid::parse_str(b["alarm_id"].as_str().unwrap()).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&malformed(Dataset::Water, "r1", 2).value).is_err());
        assert!(is_malformed(999, 1000) && !is_malformed(1000, 1000) && !is_malformed(5, 0));
    }
}
