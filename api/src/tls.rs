//! Client TLS from a CA bundle in PEM for every client that is not librdkafka (which takes
//! the PEM itself as `ssl.ca.pem`): the operator's and the sinks' Cassandra sessions and the
//! operator's client-quota connection. OpenSSL, as librdkafka: one TLS library on the data
//! path, and the same certificate checks (chain to the CA, then the name or IP address).

use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVersion};
use openssl::x509::X509;

/// The certificates of a PEM bundle; an error that says what is wrong with it when it holds
/// none or a block is malformed. `origin` names where the bundle came from (a file, a field).
pub fn certificates(origin: &str, pem: &str) -> Result<Vec<X509>, String> {
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("{origin} holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)"));
    }
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
