//! Client TLS from a CA bundle in PEM for every client that is not librdkafka (which takes
//! the PEM itself as `ssl.ca.pem`): the operator's and the sinks' Cassandra sessions and the
//! operator's client-quota connection. OpenSSL, as librdkafka: one TLS library on the data
//! path, and the same certificate checks (chain to the CA, then the name or IP address).

use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVersion};
use openssl::x509::X509;

/// The certificates of a PEM bundle; an error that says what is wrong with it when it holds
/// none or a block is malformed. `origin` names where the bundle came from (a file, a field).
pub fn certificates(origin: &str, pem: &str) -> Result<Vec<X509>, String> {
    let certificates =
        X509::stack_from_pem(pem.as_bytes()).map_err(|e| format!("{origin} is not a PEM certificate bundle ({e})"))?;
    if certificates.is_empty() {
        return Err(format!("{origin} holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)"));
    }
    Ok(certificates)
}

/// A client TLS connector (TLS 1.2 or newer) that trusts exactly the CAs in `pem` (`None`: the
/// system's CAs) and checks the server's certificate chain. The name check is the caller's:
/// the Cassandra driver sets the node's IP address on each connection, and
/// [`SslConnector::connect`] / `configure().into_ssl(host)` set the host dialled.
pub fn connector(origin: &str, pem: Option<&str>) -> Result<SslConnectorBuilder, String> {
    let failed = |e: openssl::error::ErrorStack| format!("TLS set-up for {origin} failed: {e}");
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(failed)?;
    builder.set_min_proto_version(Some(SslVersion::TLS1_2)).map_err(failed)?;
    match pem {
        Some(pem) => {
            // Only these CAs: a fresh store, not the system's.
            let mut store = openssl::x509::store::X509StoreBuilder::new().map_err(failed)?;
            for certificate in certificates(origin, pem)? {
                store.add_cert(certificate).map_err(|e| format!("{origin}: a certificate is not a usable CA ({e})"))?;
            }
            builder.set_verify_cert_store(store.build()).map_err(failed)?;
        }
        None => builder.set_default_verify_paths().map_err(failed)?,
    }
    Ok(builder)
}

/// A TLS handshake over `tcp` with the server dialled at `address` (`host:port`), checking
/// its certificate against `connector`'s CAs and `host`; the error says what failed: the
/// certificate (with OpenSSL's verdict), or the handshake itself.
pub async fn handshake<S>(
    connector: &SslConnector,
    address: &str,
    tcp: S,
) -> Result<tokio_openssl::SslStream<S>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ssl = connector.configure().and_then(|c| c.into_ssl(host)).map_err(|e| format!("TLS set-up failed: {e}"))?;
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| format!("TLS set-up failed: {e}"))?;
    match std::pin::Pin::new(&mut stream).connect().await {
        Ok(()) => Ok(stream),
        Err(e) => {
            let verify = stream.ssl().verify_result();
            Err(if verify == openssl::x509::X509VerifyResult::OK {
                format!("the TLS handshake with {address} failed ({e}): does it serve TLS on that port?")
            } else {
                format!(
                    "{address} presents a certificate that does not pass: {verify} ({e}); the server's certificate \
                     must be signed by the configured CA and name {host}"
                )
            })
        }
    }
}

/// Checks the certificate each server in `addresses` (`host:port`, comma-separated) presents,
/// against the CAs in `pem` (`None`: the system's) and the host dialled, so a wrong CA or a
/// certificate that does not name the address is found at start-up, said plainly, instead
/// of as calls that time out. A server that cannot be reached or does not finish the
/// handshake in time is not an error here (it may be starting); only a failed handshake is.
/// `what` names the setting, e.g. `Kafka (KAFKA_CA_FILE)`.
pub async fn check_certificates(what: &str, pem: Option<&str>, addresses: &str) -> Result<(), String> {
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
    let connector = connector(what, pem)?.build();
    for address in addresses.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let Ok(Ok(tcp)) = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(address)).await else {
            continue;
        };
        if let Ok(Err(e)) = tokio::time::timeout(TIMEOUT, handshake(&connector, address, tcp)).await {
            return Err(format!("{what}: {e}"));
        }
    }
    Ok(())
}

/// Empties this thread's OpenSSL error queue. librdkafka, parsing `ssl.ca.pem` when a client
/// is created, leaves its final "no start line" on the calling thread's queue; OpenSSL reads a
/// non-empty queue as the failure of the next TLS read or handshake on that thread (SSL_get_error
/// needs an empty queue), so a Cassandra connection or the quota client running there later
/// broke with that PEM error. Called right after every Kafka client is created.
pub fn clear_thread_errors() {
    let _ = openssl::error::ErrorStack::get();
}

/// What to check when a connection failed on its TLS handshake: the CA, or the names in the
/// server's certificate. Empty for any other error.
pub fn hint(error: &str) -> &'static str {
    if error.to_ascii_lowercase().contains("certificate") {
        " (TLS: the server's certificate must be signed by the configured CA and name the address connected to)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_refused_with_its_origin() {
        let err = connector("CASSANDRA_CA_FILE /etc/ca.crt", Some("not a certificate")).err().unwrap();
        assert!(err.contains("CASSANDRA_CA_FILE /etc/ca.crt holds no PEM certificate"), "{err}");
        let err = connector("x", Some("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")).err().unwrap();
        assert!(err.starts_with("x is not a PEM certificate bundle"), "{err}");
    }
}

#[cfg(test)]
mod handshake_tests {
    //! Against an in-process TLS server whose certificate this test makes: the name check is
    //! on, and an address the server cannot be reached at is left to the caller.

    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::ssl::{SslAcceptor, SslMethod};
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509, X509NameBuilder};

    use super::*;

    fn certificate(
        cn: &str,
        key: &PKey<Private>,
        issuer: Option<(&X509, &PKey<Private>)>,
        san_ip: Option<&str>,
    ) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut builder = X509::builder().unwrap();
        builder.set_version(2).unwrap();
        builder.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap()).unwrap();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(issuer.map_or(&name, |(ca, _)| ca.subject_name())).unwrap();
        builder.set_pubkey(key).unwrap();
        builder.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        builder.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
        match san_ip {
            None => builder.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap(),
            Some(ip) => {
                let san =
                    SubjectAlternativeName::new().ip(ip).build(&builder.x509v3_context(issuer.map(|i| &**i.0), None));
                builder.append_extension(san.unwrap()).unwrap();
            }
        }
        builder.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256()).unwrap();
        builder.build()
    }

    /// A TLS server on 127.0.0.1 whose certificate (signed by the returned CA) names `san_ip`.
    async fn server(san_ip: &str) -> (String, String) {
        let ca_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let ca = certificate("test-ca", &ca_key, None, None);
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let cert = certificate("server", &key, Some((&ca, &ca_key)), Some(san_ip));
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        acceptor.set_private_key(&key).unwrap();
        acceptor.set_certificate(&cert).unwrap();
        let acceptor = acceptor.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
                let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
                let _ = std::pin::Pin::new(&mut stream).accept().await;
            }
        });
        (address, String::from_utf8(ca.to_pem().unwrap()).unwrap())
    }

    #[tokio::test]
    async fn a_certificate_must_name_the_address_dialled_and_chain_to_the_ca() {
        let (good, ca) = server("127.0.0.1").await;
        assert_eq!(check_certificates("Kafka", Some(&ca), &good).await, Ok(()));

        // Signed by the CA, but for another address: refused, saying which name it must carry.
        let (other, other_ca) = server("10.9.9.9").await;
        let err = check_certificates("Kafka", Some(&other_ca), &other).await.unwrap_err();
        assert!(err.contains("does not pass") && err.contains("name 127.0.0.1"), "{err}");

        // A CA that did not sign it: refused too.
        let err = check_certificates("Kafka", Some(&ca), &other).await.unwrap_err();
        assert!(err.contains("does not pass") && err.contains("signed by the configured CA"), "{err}");

        // Nobody listening: not a TLS problem, left to the caller's retries.
        assert_eq!(check_certificates("Kafka", Some(&ca), "127.0.0.1:1").await, Ok(()));
    }
}
