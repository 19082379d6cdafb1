//! The operator's one way to reach Kafka: requests that the `kafka-protocol` crate encodes
//! and decodes, framed on SASL/SCRAM-authenticated TCP (or TLS) connections that rsasl logs
//! in, kept open between calls.
//!
//! Connections are pooled by destination: "any broker" (the bootstrap list, tried from a
//! rotating start; KRaft brokers forward every admin write to the controller) and one
//! address (a partition leader, a group coordinator). A call takes an idle connection or
//! opens one, so concurrent reconciles never queue behind each other's calls; at most
//! [`IDLE_PER_BROKER`] idle connections are kept per destination. (Each new connection
//! costs a TLS handshake and a SCRAM login with 4,096 PBKDF2 rounds on both sides: opened
//! per call, they were a sixth of the operator's CPU at 500 tenants.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rsasl::prelude::{Mechname, SASLClient, SASLConfig, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ClientSettings;
use super::error::{KafkaCallError, answer_error};

/// Where a request goes.
#[derive(Clone, Copy, Debug)]
pub enum Broker<'a> {
    /// Any broker of the bootstrap list.
    Any,
    /// The broker at `host:port` (a leader or coordinator that Kafka named).
    At(&'a str),
}

impl Broker<'_> {
    fn key(&self) -> &str {
        match self {
            Broker::Any => "",
            Broker::At(address) => address,
        }
    }
}

/// Idle connections kept per destination.
const IDLE_PER_BROKER: usize = 8;

/// The largest answer the operator reads (a Metadata answer for 5,000 topics is ~1 MiB).
const MAX_FRAME: usize = 256 * 1024 * 1024;

// Versions every Kafka since 3.0 accepts (Kafka 4 dropped older ones of some APIs).
const HANDSHAKE_VERSION: i16 = 1;
const AUTHENTICATE_VERSION: i16 = 2;

/// Pooled, authenticated connections to the brokers of one cluster, as one principal.
pub struct Wire {
    settings: ClientSettings,
    timeout: Duration,
    idle: std::sync::Mutex<HashMap<String, Vec<Connection>>>,
    /// Where the next connection to "any broker" starts in the bootstrap list.
    rotate: AtomicUsize,
    /// The TLS set-up, made once (each new one parsed the system's CA bundle).
    tls: tokio::sync::OnceCell<openssl::ssl::SslConnector>,
}

/// Plain TCP, or TLS over it under `SASL_SSL`.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

struct Connection {
    stream: Box<dyn Stream>,
    next_correlation_id: i32,
}

impl Wire {
    /// `timeout` bounds each connection attempt and each request's answer.
    pub fn new(settings: ClientSettings, timeout: Duration) -> Self {
        Wire {
            settings,
            timeout,
            idle: std::sync::Mutex::new(HashMap::new()),
            rotate: AtomicUsize::new(0),
            tls: tokio::sync::OnceCell::new(),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request` to `to` and reads its answer. A request on a kept connection that
    /// fails (a broker that restarted closed it) is sent once more on a new one; a request
    /// that got no answer within the timeout is not (its connection is dropped).
    pub async fn call<R: Request>(
        &self,
        to: Broker<'_>,
        call: &'static str,
        request: &R,
        version: i16,
    ) -> Result<R::Response, KafkaCallError> {
        if let Some(mut kept) = self.take_idle(to) {
            match tokio::time::timeout(self.timeout, kept.exchange(call, request, version)).await {
                Ok(Ok(response)) => {
                    self.keep(to, kept);
                    return Ok(response);
                }
                Ok(Err(_)) => {} // broken: try a new connection
                Err(_) => return Err(self.no_answer(call)),
            }
        }
        let mut fresh = self.connect(to).await?;
        match tokio::time::timeout(self.timeout, fresh.exchange(call, request, version)).await {
            Ok(Ok(response)) => {
                self.keep(to, fresh);
                Ok(response)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.no_answer(call)),
        }
    }

    /// Logs in on a new connection and closes it: whether the brokers take these credentials.
    pub async fn login(&self) -> Result<(), KafkaCallError> {
        self.connect(Broker::Any).await.map(drop)
    }

    fn no_answer(&self, call: &'static str) -> KafkaCallError {
        unreachable(call, format!("no answer within {:?}", self.timeout))
    }

    fn take_idle(&self, to: Broker<'_>) -> Option<Connection> {
        self.idle.lock().expect("idle connections").get_mut(to.key()).and_then(Vec::pop)
    }

    fn keep(&self, to: Broker<'_>, connection: Connection) {
        let mut idle = self.idle.lock().expect("idle connections");
        let kept = idle.entry(to.key().to_string()).or_default();
        if kept.len() < IDLE_PER_BROKER {
            kept.push(connection);
        }
    }

    /// Connects to `to` (for any broker: the first of the bootstrap list that answers,
    /// from a rotating start) and authenticates.
    async fn connect(&self, to: Broker<'_>) -> Result<Connection, KafkaCallError> {
        let candidates: Vec<&str> = match to {
            Broker::At(address) => vec![address],
            Broker::Any => {
                let all: Vec<&str> =
                    self.settings.bootstrap_servers.split(',').map(str::trim).filter(|b| !b.is_empty()).collect();
                let start = self.rotate.fetch_add(1, Ordering::Relaxed) % all.len().max(1);
                all.iter().cycle().skip(start).take(all.len()).copied().collect()
            }
        };
        let tls = self.tls_connector().await?;
        let mut failures = Vec::new();
        for broker in candidates {
            match tokio::time::timeout(self.timeout, self.open(broker, tls)).await {
                Ok(Ok(connection)) => return Ok(connection),
                Ok(Err(e)) => failures.push(format!("{broker}: {e}")),
                Err(_) => failures.push(format!("{broker}: no answer within {:?}", self.timeout)),
            }
        }
        Err(unreachable("connect", format!("cannot reach a broker ({})", failures.join("; "))))
    }

    async fn tls_connector(&self) -> Result<Option<&openssl::ssl::SslConnector>, KafkaCallError> {
        if !self.settings.tls() {
            return Ok(None);
        }
        let made = self.tls.get_or_try_init(|| async {
            crate::api::tls::connector("KAFKA_CA_FILE", self.settings.ca_pem.as_deref()).map(|b| b.build())
        });
        made.await.map(Some).map_err(|message| unreachable("connect", message))
    }

    async fn open(&self, broker: &str, tls: Option<&openssl::ssl::SslConnector>) -> Result<Connection, String> {
        let tcp = TcpStream::connect(broker).await.map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let stream: Box<dyn Stream> = match tls {
            None => Box::new(tcp),
            Some(connector) => {
                Box::new(crate::api::tls::handshake(connector, broker, tcp).await.map_err(|e| format!("TLS: {e}"))?)
            }
        };
        let mut connection = Connection { stream, next_correlation_id: 1 };
        connection.authenticate(&self.settings).await.map_err(|e| e.to_string())?;
        Ok(connection)
    }
}

/// Kafka could not be asked: no broker reached, or the exchange broke.
fn unreachable(call: &'static str, message: String) -> KafkaCallError {
    KafkaCallError { call, message, transient: true, answered: false }
}

impl Connection {
    /// SaslHandshake, then the SCRAM exchange in SaslAuthenticate frames (KIP-152).
    async fn authenticate(&mut self, settings: &ClientSettings) -> Result<(), KafkaCallError> {
        const CALL: &str = "SaslAuthenticate";
        let protocol = |message: String| unreachable(CALL, message);
        // The settings' SCRAM mechanism (SCRAM-SHA-512 unless set otherwise).
        let name = settings.sasl_mechanism.as_str();
        let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(name.to_string()));
        let response = self.exchange("SaslHandshake", &handshake, HANDSHAKE_VERSION).await?;
        if response.error_code != 0 {
            let offered: Vec<String> = response.mechanisms.iter().map(|m| m.to_string()).collect();
            let message = format!("the broker offers {offered:?}");
            return Err(answer_error("SaslHandshake", name, response.error_code, Some(message)));
        }

        let config = SASLConfig::with_credentials(None, settings.username.clone(), settings.password.clone())
            .map_err(|e| protocol(e.to_string()))?;
        let mechanism = Mechname::parse(name.as_bytes()).map_err(|e| protocol(e.to_string()))?;
        let mut session = SASLClient::new(config).start_suggested(&[mechanism]).map_err(|e| protocol(e.to_string()))?;
        let mut input: Option<Bytes> = None;
        loop {
            let mut out = Vec::new();
            let state = session.step(input.as_deref(), &mut out).map_err(|e| protocol(e.to_string()))?;
            if state == State::Finished(rsasl::prelude::MessageSent::No) {
                // The server's final message was verified; nothing left to send.
                return Ok(());
            }
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(out));
            let response = self.exchange(CALL, &request, AUTHENTICATE_VERSION).await?;
            if response.error_code != 0 {
                let message = response.error_message.map(|m| m.to_string());
                return Err(answer_error(CALL, &settings.username, response.error_code, message));
            }
            if matches!(state, State::Finished(_)) {
                return Ok(());
            }
            input = Some(response.auth_bytes);
        }
    }

    async fn exchange<R: Request>(
        &mut self,
        call: &'static str,
        request: &R,
        version: i16,
    ) -> Result<R::Response, KafkaCallError> {
        let protocol = |message: String| unreachable(call, message);
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("tributary-operator")));
        let mut frame = BytesMut::new();
        header.encode(&mut frame, R::header_version(version)).map_err(|e| protocol(e.to_string()))?;
        request.encode(&mut frame, version).map_err(|e| protocol(e.to_string()))?;
        let length = i32::try_from(frame.len()).map_err(|e| protocol(e.to_string()))?;
        self.stream.write_i32(length).await.map_err(|e| protocol(e.to_string()))?;
        self.stream.write_all(&frame).await.map_err(|e| protocol(e.to_string()))?;

        let length = self.stream.read_i32().await.map_err(|e| protocol(format!("connection closed: {e}")))?;
        let length = usize::try_from(length)
            .ok()
            .filter(|l| *l <= MAX_FRAME)
            .ok_or_else(|| protocol(format!("bad frame length {length}")))?;
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await.map_err(|e| protocol(e.to_string()))?;
        let mut body = Bytes::from(body);
        let response_header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| protocol(e.to_string()))?;
        if response_header.correlation_id != correlation_id {
            return Err(protocol(format!(
                "answer to request {} arrived for request {correlation_id}",
                response_header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version).map_err(|e| protocol(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_cluster_is_a_transient_error_naming_every_broker() {
        // Port 1 on localhost refuses connections at once.
        let settings = ClientSettings::new("127.0.0.1:1,127.0.0.2:1", "admin", "x");
        let wire = Wire::new(settings, Duration::from_secs(2));
        let err = wire.login().await.unwrap_err();
        assert!(err.transient && !err.answered, "{err}");
        assert!(err.message.contains("127.0.0.1:1:") && err.message.contains("127.0.0.2:1:"), "{err}");
    }
}
