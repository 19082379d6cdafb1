//! Client quotas (KIP-546: DescribeClientQuotas / AlterClientQuotas), which librdkafka does
//! not implement at all, and a group's committed offsets (OffsetFetch), which librdkafka
//! reads only through a consumer client of that group.
//!
//! The `kafka-protocol` crate encodes and decodes the requests; this module only frames
//! them on SASL/SCRAM-authenticated TCP connections (rsasl computes the SCRAM exchange),
//! kept open between calls: one to any bootstrap broker (reopened on the next after an
//! error), whose requests any broker accepts (forwarded to the KRaft controller), and one
//! per group coordinator that OffsetFetch needed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, DescribeClientQuotasRequest, DescribeUserScramCredentialsRequest, FindCoordinatorRequest,
    OffsetFetchRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
    alter_client_quotas_request as alter, describe_client_quotas_request as describe,
    describe_user_scram_credentials_request::UserName,
    describe_user_scram_credentials_response::DescribeUserScramCredentialsResult,
    offset_fetch_request::OffsetFetchRequestTopic,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rsasl::prelude::{Mechname, SASLClient, SASLConfig, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::ClientSettings;

/// Quota keys as Kafka names them.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";

/// Quotas of one user: key → value (absent key: no quota).
pub type Quotas = BTreeMap<String, f64>;

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("cannot reach any broker of {bootstrap} for client quotas: {message}")]
    Unreachable { bootstrap: String, message: String },
    #[error("{call}: Kafka answered error code {code}: {message}")]
    Kafka { call: &'static str, code: i16, message: String },
    #[error("{call}: {message}")]
    Protocol { call: &'static str, message: String },
}

impl QuotaError {
    /// Unreachable brokers and broken connections are worth retrying; Kafka's refusals are not.
    pub fn transient(&self) -> bool {
        match self {
            QuotaError::Unreachable { .. } | QuotaError::Protocol { .. } => true,
            // NOT_CONTROLLER (41), REQUEST_TIMED_OUT (7), COORDINATOR_NOT_AVAILABLE (15), and
            // SASL_AUTHENTICATION_FAILED (58): the operator's own login, which no spec can
            // fix (a broker that has just restarted may refuse it for a moment).
            // COORDINATOR_LOAD_IN_PROGRESS (14) and NOT_COORDINATOR (16) while a group's
            // coordinator moves (a broker restarting).
            QuotaError::Kafka { code, .. } => matches!(code, 7 | 14 | 15 | 16 | 41 | 58),
        }
    }
}

// Versions every Kafka since 2.8 accepts (Kafka 4 dropped older ones of some APIs).
const FIND_COORDINATOR_VERSION: i16 = 3;
const OFFSET_FETCH_VERSION: i16 = 7;
const HANDSHAKE_VERSION: i16 = 1;
const AUTHENTICATE_VERSION: i16 = 2;
const QUOTAS_VERSION: i16 = 1;

/// Describes and alters the quotas of users over one long-lived admin connection.
pub struct QuotaClient {
    settings: ClientSettings,
    timeout: Duration,
    connection: Mutex<Option<Connection>>,
    /// Idle connections to group coordinators, by address (taken out while in use, up to
    /// [`IDLE_PER_BROKER`] kept). With one kept per address, concurrent sink reconciles each
    /// opened their own TLS + SCRAM connection and all but one were dropped after one call:
    /// the handshakes were a sixth of the operator's CPU at 500 tenants.
    coordinators: Mutex<HashMap<String, Vec<Connection>>>,
    /// The TLS set-up, made once (each new one parsed the system's CA bundle).
    tls: tokio::sync::OnceCell<openssl::ssl::SslConnector>,
}

/// Idle connections kept per coordinator.
const IDLE_PER_BROKER: usize = 4;

/// Plain TCP, or TLS over it under `SASL_SSL`.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

struct Connection {
    stream: Box<dyn Stream>,
    next_correlation_id: i32,
}

impl QuotaClient {
    pub fn new(settings: ClientSettings, timeout: Duration) -> Self {
        QuotaClient {
            settings,
            timeout,
            connection: Mutex::new(None),
            coordinators: Mutex::new(HashMap::new()),
            tls: tokio::sync::OnceCell::new(),
        }
    }

    /// The offsets `group` committed on partitions `0..partitions` of `topic` (absent: no
    /// commit yet), by OffsetFetch at the group's coordinator, which FindCoordinator names.
    /// (A librdkafka consumer of the group per call, as before, cost a TLS handshake and a
    /// SCRAM login with 4,096 PBKDF2 rounds at two brokers each time: most of the
    /// operator's CPU at steady state.)
    pub async fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> Result<BTreeMap<i32, i64>, QuotaError> {
        const FIND: &str = "FindCoordinator";
        const CALL: &str = "OffsetFetch";
        let find =
            FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())).with_key_type(0);
        let found = self.call(FIND, &find, FIND_COORDINATOR_VERSION).await?;
        if found.error_code != 0 {
            let message = found.error_message.map(|m| m.to_string()).unwrap_or_default();
            return Err(QuotaError::Kafka { call: FIND, code: found.error_code, message });
        }
        let address = format!("{}:{}", found.host.as_str(), found.port);
        let request = OffsetFetchRequest::default()
            .with_group_id(StrBytes::from_string(group.to_string()).into())
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(StrBytes::from_string(topic.to_string()).into())
                    .with_partition_indexes((0..partitions).collect()),
            ]));
        let response = self.call_at(&address, CALL, &request, OFFSET_FETCH_VERSION).await?;
        if response.error_code != 0 {
            return Err(QuotaError::Kafka { call: CALL, code: response.error_code, message: format!("group {group}") });
        }
        let mut committed = BTreeMap::new();
        for partition in response.topics.into_iter().flat_map(|t| t.partitions) {
            match partition.error_code {
                // -1: nothing committed on this partition yet.
                0 if partition.committed_offset >= 0 => {
                    committed.insert(partition.partition_index, partition.committed_offset);
                }
                // UNKNOWN_TOPIC_OR_PARTITION: nothing committed there either.
                0 | 3 => {}
                code => {
                    let message = format!("group {group}, {topic} partition {}", partition.partition_index);
                    return Err(QuotaError::Kafka { call: CALL, code, message });
                }
            }
        }
        Ok(committed)
    }

    /// The quotas set on exactly this user (not defaults).
    pub async fn describe_user(&self, user: &str) -> Result<Quotas, QuotaError> {
        const CALL: &str = "DescribeClientQuotas";
        let request = DescribeClientQuotasRequest::default().with_strict(true).with_components(vec![
            describe::ComponentData::default()
                .with_entity_type(StrBytes::from_static_str("user"))
                .with_match_type(0) // exact name
                .with_match(Some(StrBytes::from_string(user.to_string()))),
        ]);
        let response = self.call(CALL, &request, QUOTAS_VERSION).await?;
        if response.error_code != 0 {
            let message = response.error_message.map(|m| m.to_string()).unwrap_or_default();
            return Err(QuotaError::Kafka { call: CALL, code: response.error_code, message });
        }
        Ok(response
            .entries
            .unwrap_or_default()
            .into_iter()
            .flat_map(|entry| entry.values)
            .map(|v| (v.key.to_string(), v.value))
            .collect())
    }

    /// Sets `set` and removes `remove` on the user, in one request.
    pub async fn alter_user(&self, user: &str, set: &Quotas, remove: &[String]) -> Result<(), QuotaError> {
        const CALL: &str = "AlterClientQuotas";
        let mut ops: Vec<alter::OpData> = set
            .iter()
            .map(|(k, v)| alter::OpData::default().with_key(StrBytes::from_string(k.clone())).with_value(*v))
            .collect();
        ops.extend(
            remove
                .iter()
                .map(|k| alter::OpData::default().with_key(StrBytes::from_string(k.clone())).with_remove(true)),
        );
        let entity = alter::EntityData::default()
            .with_entity_type(StrBytes::from_static_str("user"))
            .with_entity_name(Some(StrBytes::from_string(user.to_string())));
        let request = AlterClientQuotasRequest::default()
            .with_entries(vec![alter::EntryData::default().with_entity(vec![entity]).with_ops(ops)]);
        let response = self.call(CALL, &request, QUOTAS_VERSION).await?;
        for entry in response.entries {
            if entry.error_code != 0 {
                let message = entry.error_message.map(|m| m.to_string()).unwrap_or_default();
                return Err(QuotaError::Kafka { call: CALL, code: entry.error_code, message });
            }
        }
        Ok(())
    }

    /// Every user that has a SCRAM credential (DescribeUserScramCredentials for all users;
    /// librdkafka has the call but rdkafka does not wrap it, and this connection is here).
    pub async fn scram_users(&self) -> Result<std::collections::BTreeSet<String>, QuotaError> {
        Ok(self.describe_scram(None).await?.into_iter().map(|r| r.user.to_string()).collect())
    }

    /// The SCRAM mechanisms `user` holds a credential for (none: no such user).
    pub async fn scram_mechanisms(
        &self,
        user: &str,
    ) -> Result<std::collections::BTreeSet<super::ScramMechanism>, QuotaError> {
        let names = vec![UserName::default().with_name(StrBytes::from_string(user.to_string()))];
        let held = self.describe_scram(Some(names)).await?.into_iter().filter(|r| r.user.as_str() == user);
        let codes: Vec<i8> = held.flat_map(|r| r.credential_infos.into_iter().map(|c| c.mechanism)).collect();
        let all = [super::ScramMechanism::Sha256, super::ScramMechanism::Sha512];
        Ok(all.into_iter().filter(|m| codes.contains(&m.code())).collect())
    }

    /// The users' SCRAM credentials (`None`: every user's); users without any are left out.
    async fn describe_scram(
        &self,
        users: Option<Vec<UserName>>,
    ) -> Result<Vec<DescribeUserScramCredentialsResult>, QuotaError> {
        const CALL: &str = "DescribeUserScramCredentials";
        let response = self.call(CALL, &DescribeUserScramCredentialsRequest::default().with_users(users), 0).await?;
        if response.error_code != 0 {
            let message = response.error_message.map(|m| m.to_string()).unwrap_or_default();
            return Err(QuotaError::Kafka { call: CALL, code: response.error_code, message });
        }
        Ok(response.results.into_iter().filter(|r| r.error_code == 0).collect())
    }

    /// One request on the shared connection, (re)connecting first if needed. A failed
    /// exchange drops the connection, so the next call starts clean.
    async fn call<R: Request>(&self, call: &'static str, request: &R, version: i16) -> Result<R::Response, QuotaError> {
        let mut guard = self.connection.lock().await;
        if guard.is_none() {
            *guard = Some(self.connect().await?);
        }
        let connection = guard.as_mut().expect("connected above");
        match tokio::time::timeout(self.timeout, connection.exchange(call, request, version)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                *guard = None;
                Err(e)
            }
            Err(_) => {
                *guard = None;
                Err(QuotaError::Protocol { call, message: format!("no answer within {:?}", self.timeout) })
            }
        }
    }

    /// One request to the broker at `address` on an idle connection to it, or a new one. A
    /// failed exchange drops the connection.
    async fn call_at<R: Request>(
        &self,
        address: &str,
        call: &'static str,
        request: &R,
        version: i16,
    ) -> Result<R::Response, QuotaError> {
        let idle = self.coordinators.lock().await.get_mut(address).and_then(Vec::pop);
        let mut connection = match idle {
            Some(connection) => connection,
            None => self.connect_to(address).await?,
        };
        match tokio::time::timeout(self.timeout, connection.exchange(call, request, version)).await {
            Ok(Ok(response)) => {
                let mut idle = self.coordinators.lock().await;
                let kept = idle.entry(address.to_string()).or_default();
                if kept.len() < IDLE_PER_BROKER {
                    kept.push(connection);
                }
                Ok(response)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(QuotaError::Protocol { call, message: format!("no answer within {:?}", self.timeout) }),
        }
    }

    /// Logs in on a new connection and closes it: whether the brokers take these credentials.
    pub async fn login(&self) -> Result<(), QuotaError> {
        self.connect().await.map(drop)
    }

    /// Connects to the first bootstrap broker that answers and authenticates.
    async fn connect(&self) -> Result<Connection, QuotaError> {
        self.connect_to(&self.settings.bootstrap_servers).await
    }

    /// Connects to the first broker of `brokers` (comma-separated) that answers, and
    /// authenticates.
    async fn connect_to(&self, brokers: &str) -> Result<Connection, QuotaError> {
        let bootstrap = brokers.to_string();
        let tls = if self.settings.tls() {
            let made = self.tls.get_or_try_init(|| async {
                crate::api::tls::connector("KAFKA_CA_FILE", self.settings.ca_pem.as_deref()).map(|b| b.build())
            });
            Some(made.await.map_err(|message| QuotaError::Unreachable { bootstrap: bootstrap.clone(), message })?)
        } else {
            None
        };
        let mut failures = Vec::new();
        for broker in bootstrap.split(',').map(str::trim).filter(|b| !b.is_empty()) {
            let attempt = async {
                let tcp = TcpStream::connect(broker).await.map_err(|e| e.to_string())?;
                tcp.set_nodelay(true).map_err(|e| e.to_string())?;
                let stream: Box<dyn Stream> = match &tls {
                    None => Box::new(tcp),
                    Some(connector) => Box::new(
                        crate::api::tls::handshake(connector, broker, tcp).await.map_err(|e| format!("TLS: {e}"))?,
                    ),
                };
                let mut connection = Connection { stream, next_correlation_id: 1 };
                connection.authenticate(&self.settings).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(connection)
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(connection)) => return Ok(connection),
                Ok(Err(e)) => failures.push(format!("{broker}: {e}")),
                Err(_) => failures.push(format!("{broker}: no answer within {:?}", self.timeout)),
            }
        }
        Err(QuotaError::Unreachable { bootstrap: bootstrap.clone(), message: failures.join("; ") })
    }
}

impl Connection {
    /// SaslHandshake, then the SCRAM exchange in SaslAuthenticate frames (KIP-152).
    async fn authenticate(&mut self, settings: &ClientSettings) -> Result<(), QuotaError> {
        const CALL: &str = "SaslAuthenticate";
        let protocol = |message: String| QuotaError::Protocol { call: CALL, message };
        // The settings' SCRAM mechanism (SCRAM-SHA-512 unless set otherwise).
        let name = settings.sasl_mechanism.as_str();
        let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(name.to_string()));
        let response = self.exchange("SaslHandshake", &handshake, HANDSHAKE_VERSION).await?;
        if response.error_code != 0 {
            let offered: Vec<String> = response.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(QuotaError::Kafka {
                call: "SaslHandshake",
                code: response.error_code,
                message: format!("the broker offers {offered:?}"),
            });
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
                let message = response.error_message.map(|m| m.to_string()).unwrap_or_default();
                return Err(QuotaError::Kafka { call: CALL, code: response.error_code, message });
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
    ) -> Result<R::Response, QuotaError> {
        let protocol = |message: String| QuotaError::Protocol { call, message };
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
        let length = usize::try_from(length).map_err(|_| protocol(format!("bad frame length {length}")))?;
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

/// What to change so the user's live quotas become `desired`: values to set (missing or
/// different) and keys to remove (set in Kafka, not wanted). Both empty when they match.
pub fn quota_changes(desired: &Quotas, live: &Quotas) -> (Quotas, Vec<String>) {
    let set = desired.iter().filter(|(k, v)| live.get(*k) != Some(v)).map(|(k, v)| (k.clone(), *v)).collect();
    let remove = live.keys().filter(|k| !desired.contains_key(*k)).cloned().collect();
    (set, remove)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differences_become_changes() {
        let q = |pairs: &[(&str, f64)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect::<Quotas>();
        let desired = q(&[(PRODUCER_BYTE_RATE, 1_048_576.0), (REQUEST_PERCENTAGE, 50.0)]);
        assert_eq!(quota_changes(&desired, &desired), (Quotas::new(), vec![]));
        let live = q(&[(PRODUCER_BYTE_RATE, 2048.0), (CONSUMER_BYTE_RATE, 4096.0), (REQUEST_PERCENTAGE, 50.0)]);
        let (set, remove) = quota_changes(&desired, &live);
        assert_eq!(set, q(&[(PRODUCER_BYTE_RATE, 1_048_576.0)]));
        assert_eq!(remove, vec![CONSUMER_BYTE_RATE.to_string()]);
    }

    #[test]
    fn requests_encode_in_the_versions_the_client_sends() {
        let request = DescribeClientQuotasRequest::default().with_strict(true);
        let mut buf = BytesMut::new();
        request.encode(&mut buf, QUOTAS_VERSION).expect("DescribeClientQuotas v1 encodes");
        let decoded = DescribeClientQuotasRequest::decode(&mut buf.freeze(), QUOTAS_VERSION).unwrap();
        assert_eq!(decoded, request);
    }

    #[tokio::test]
    async fn an_unreachable_cluster_is_a_transient_error_naming_every_broker() {
        // Port 1 on localhost refuses connections at once.
        let settings = ClientSettings::new("127.0.0.1:1,127.0.0.1:1", "admin", "x");
        let client = QuotaClient::new(settings, Duration::from_secs(2));
        let err = client.describe_user("water").await.unwrap_err();
        assert!(err.transient(), "{err}");
        assert_eq!(err.to_string().matches("127.0.0.1:1:").count(), 2, "{err}");
    }
}
