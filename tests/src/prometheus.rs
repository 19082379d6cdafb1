//! The stack's Prometheus (`PROMETHEUS_URL`) as the tests use it: its HTTP API, the file_sd
//! targets file that makes it scrape an operator run as a host process, and a rules file
//! loaded for the length of a test (stack/config/prometheus/prometheus.yml).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::http_get;

/// Host and port of `PROMETHEUS_URL` (`http://host:port`).
fn address() -> (String, u16) {
    let url = std::env::var("PROMETHEUS_URL").expect("PROMETHEUS_URL (make stack-env)");
    let authority = url.strip_prefix("http://").expect("PROMETHEUS_URL is http://host:port");
    let (host, port) = authority.split_once(':').expect("host:port");
    (host.to_string(), port.parse().expect("a port"))
}

/// `text` percent-encoded for a query string (everything but unreserved characters).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` of the API: its `data`, or why there is none (Prometheus' own error for a
/// query it refuses).
pub async fn api(path: &str) -> Result<Value, String> {
    let (host, port) = address();
    let body = http_get(&host, port, path).await?;
    let answer: Value = serde_json::from_str(&body).map_err(|e| format!("{path}: {e}: {body}"))?;
    if answer["status"] != "success" {
        return Err(format!("{path}: {body}"));
    }
    Ok(answer["data"].clone())
}

/// The series of an instant query (each with `metric` and `value`).
pub async fn query(promql: &str) -> Result<Vec<Value>, String> {
    let data = api(&format!("/api/v1/query?query={}", encode(promql))).await.map_err(|e| format!("{promql}: {e}"))?;
    Ok(data["result"].as_array().cloned().unwrap_or_default())
}

/// The value of an instant query that returns one series, `None` when it returns none.
pub async fn value(promql: &str) -> Result<Option<f64>, String> {
    let series = query(promql).await?;
    match series.as_slice() {
        [] => Ok(None),
        [one] => one["value"][1].as_str().and_then(|v| v.parse().ok()).map(Some).ok_or(format!("{one}")),
        many => Err(format!("{promql}: {} series, one expected: {many:?}", many.len())),
    }
}

/// `POST /-/reload` (the stack starts Prometheus with --web.enable-lifecycle): it reads its
/// configuration and rules files again. Blocking, so that a guard's `drop` can call it.
pub fn reload() -> Result<(), String> {
    let (host, port) = address();
    let fail = |e: std::io::Error| format!("POST {host}:{port}/-/reload: {e}");
    let mut stream = std::net::TcpStream::connect((host.as_str(), port)).map_err(fail)?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(fail)?;
    write!(stream, "POST /-/reload HTTP/1.0\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n").map_err(fail)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(fail)?;
    let status = response.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") { Ok(()) } else { Err(format!("POST /-/reload: {response}")) }
}

/// A file_sd targets file in `$TRIBUTARY_PROMETHEUS_TARGETS`: Prometheus scrapes `target`
/// (job `tributary-operator-host`) with `labels` while it exists. Removed when dropped, and
/// when the test binary exits for those never dropped (a `static`'s, e.g. the shared operator's).
pub struct TargetsFile(PathBuf);

/// Targets files not removed yet, removed at exit.
static LEFT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

extern "C" fn remove_left_at_exit() {
    if let Ok(left) = LEFT.try_lock() {
        for path in left.iter() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl TargetsFile {
    /// Writes `name.json` naming `target` (`host:port`), when the stack's environment names
    /// the folder (`stack.sh env`); `None` without it.
    pub fn write(name: &str, target: &str, labels: &[(&str, &str)]) -> Option<TargetsFile> {
        let folder = std::env::var_os("TRIBUTARY_PROMETHEUS_TARGETS")?;
        let path = Path::new(&folder).join(format!("{name}.json"));
        let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect();
        let content = serde_json::json!([{"targets": [target], "labels": labels}]);
        std::fs::write(&path, content.to_string()).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        static AT_EXIT: std::sync::Once = std::sync::Once::new();
        // SAFETY: registers a plain function without arguments; it only removes files.
        AT_EXIT.call_once(|| unsafe {
            libc::atexit(remove_left_at_exit);
        });
        LEFT.lock().unwrap().push(path.clone());
        Some(TargetsFile(path))
    }

    /// Prometheus stops scraping the target (within the file_sd refresh, 10 s).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.0);
        LEFT.lock().unwrap().retain(|p| p != &self.0);
    }
}

impl Drop for TargetsFile {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A rules file in `$TRIBUTARY_PROMETHEUS_RULES`, loaded by a reload; removed, and
/// Prometheus reloaded, when dropped.
pub struct RulesFile(PathBuf);

impl RulesFile {
    /// Writes `name.yaml` with `groups` (Prometheus' rules file format, as JSON) and reloads.
    pub fn load(name: &str, groups: &Value) -> RulesFile {
        let folder = std::env::var_os("TRIBUTARY_PROMETHEUS_RULES")
            .expect("TRIBUTARY_PROMETHEUS_RULES (stack.sh env): a stack script older than this test?");
        let path = Path::new(&folder).join(format!("{name}.yaml"));
        // JSON is YAML.
        std::fs::write(&path, serde_json::json!({ "groups": groups }).to_string())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        let file = RulesFile(path);
        reload().unwrap_or_else(|e| panic!("{e}"));
        file
    }
}

impl Drop for RulesFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Err(e) = reload() {
            eprintln!("{} removed, but Prometheus did not reload: {e}", self.0.display());
        }
    }
}
