//! TLS for PostgreSQL connections with rustls (ring; no system OpenSSL), in libpq's
//! modes: `require` encrypts without checking the certificate (as libpq does without
//! a root file), `verify-ca` checks its chain, `verify-full` its chain and host name.
//! The roots are `sslrootcert`'s PEM file, else Mozilla's (webpki-roots).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::location::{PgLocation, SslMode};

/// The connector for `location`'s mode; the error is one line for the user.
pub(super) fn connector(location: &PgLocation) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = match location.ssl {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => None,
        SslMode::VerifyCa | SslMode::VerifyFull => Some(
            WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(location)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("cannot set up TLS verification: {e}"))?,
        ),
    };
    let verifier = Verifier {
        provider: provider.clone(),
        chain,
        any_name: location.ssl != SslMode::VerifyFull,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn roots(location: &PgLocation) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match &location.root_cert {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    format!("sslrootcert {} is not a PEM file: {e}", path.display())
                })?;
                store.add(cert).map_err(|e| {
                    format!(
                        "sslrootcert {} holds a bad certificate: {e}",
                        path.display()
                    )
                })?;
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(store)
}

/// The server's certificate checked as the mode says: not at all (`require`: the
/// session is still encrypted to whoever holds the certificate's key, whose handshake
/// signatures are checked), its chain (`verify-ca`: any name), or chain and name.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
    any_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.any_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_builds_a_connector_and_a_missing_root_file_is_one_line() {
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            let pg = PgLocation::parse(&format!("postgres://h/db?sslmode={mode}")).unwrap();
            assert!(connector(&pg).is_ok(), "{mode}");
        }
        let pg =
            PgLocation::parse("postgres://h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
                .unwrap();
        let err = connector(&pg).err().unwrap();
        assert!(
            err.starts_with("cannot read sslrootcert /nonexistent/ca.pem"),
            "{err}"
        );
    }
}
