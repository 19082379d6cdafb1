//! The stack's schema registry (`SCHEMA_REGISTRY_URL`, Confluent's Schema Registry API as
//! Apicurio Registry serves it; stack/scripts/lib/registry.sh) as the tests use it: one call
//! at a time over plain HTTP with the registry's basic-auth user (`SCHEMA_REGISTRY_USER`,
//! `SCHEMA_REGISTRY_PASSWORD`).

use std::time::Duration;

use serde_json::Value;

use crate::env;

/// Confluent's media type for request bodies (its clients send it; plain JSON works too).
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// An answer: the HTTP status and the body (JSON in every answer the registry gives, save a
/// refused password's, which is empty).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as JSON, or why it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// The registry at `SCHEMA_REGISTRY_URL`, called as one user (or none).
#[derive(Clone, Debug)]
pub struct Registry {
    host: String,
    port: u16,
    /// The API's path on the server: `/apis/ccompat/v7`.
    base: String,
    authorization: Option<String>,
}

impl Registry {
    /// The stack's registry, as its user.
    pub fn from_env() -> Self {
        Self::anonymous().with_login(&env("SCHEMA_REGISTRY_USER"), &env("SCHEMA_REGISTRY_PASSWORD"))
    }

    /// The stack's registry, with no credentials.
    pub fn anonymous() -> Self {
        let url = env("SCHEMA_REGISTRY_URL");
        let rest = url.strip_prefix("http://").expect("SCHEMA_REGISTRY_URL is http://host:port/path");
        let (authority, base) = rest.split_once('/').map_or((rest, String::new()), |(a, p)| (a, format!("/{p}")));
        let (host, port) = authority.split_once(':').expect("SCHEMA_REGISTRY_URL names a port");
        Registry { host: host.to_string(), port: port.parse().expect("a port"), base, authorization: None }
    }

    /// The same registry, called with HTTP basic auth as `user`.
    pub fn with_login(mut self, user: &str, password: &str) -> Self {
        self.authorization = Some(format!("Basic {}", base64(format!("{user}:{password}").as_bytes())));
        self
    }

    /// `METHOD base+path` with `body` as JSON. Each step waits at most 10 s.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let step = Duration::from_secs(10);
        let (host, port) = (self.host.as_str(), self.port);
        let mut stream = tokio::time::timeout(step, tokio::net::TcpStream::connect((host, port)))
            .await
            .map_err(|_| format!("{host}:{port}: connect timed out"))?
            .map_err(|e| format!("{host}:{port}: {e}"))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut request =
            format!("{method} {}{path} HTTP/1.0\r\nHost: {host}:{port}\r\nAccept: application/json\r\n", self.base);
        if let Some(authorization) = &self.authorization {
            request.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        if !body.is_empty() {
            request.push_str(&format!("Content-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("{method} {path}: {e}"))?;
        let mut response = Vec::new();
        tokio::time::timeout(step, stream.read_to_end(&mut response))
            .await
            .map_err(|_| format!("{method} {path}: read timed out"))?
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("{method} {path}: no HTTP body"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{method} {path}: no status in {head:?}"))?;
        Ok(Answer { status, body: body.to_string() })
    }

    /// [`Registry::call`] that must answer 200; its body as JSON.
    pub async fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let answer = self.call(method, path, body).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
        answer.json()
    }

    /// Registers `schema` (Avro, as JSON) under `subject` (`POST /subjects/{subject}/versions`)
    /// and returns its id.
    pub async fn register(&self, subject: &str, schema: &Value) -> u64 {
        let answer = self.ok("POST", &format!("/subjects/{subject}/versions"), Some(&schema_body(schema))).await;
        answer["id"].as_u64().unwrap_or_else(|| panic!("no id in {answer}"))
    }

    /// Deletes `subject` for good (Confluent's soft delete, then `?permanent=true`); a subject
    /// that is not there is no error.
    pub async fn delete_subject(&self, subject: &str) -> Result<(), String> {
        for query in ["", "?permanent=true"] {
            let answer = self.call("DELETE", &format!("/subjects/{subject}{query}"), None).await?;
            if answer.status != 200 && answer.status != 404 {
                return Err(format!("DELETE /subjects/{subject}{query}: {} {}", answer.status, answer.body));
            }
        }
        Ok(())
    }
}

/// The body Confluent's API takes for a schema: `{"schema": "<the schema as a string>"}`
/// (no `schemaType`: Avro is the default).
pub fn schema_body(schema: &Value) -> Value {
    serde_json::json!({ "schema": schema.to_string() })
}

/// Standard base64 with padding (RFC 4648), for the basic-auth header.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_pads_as_rfc_4648_says() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"registry:registry-secret"), "cmVnaXN0cnk6cmVnaXN0cnktc2VjcmV0");
    }
}
