//! Certificate pinning: a [`Pin`] is the SHA-256 of a certificate's DER encoding, and the two
//! rustls verifiers here accept a peer by its pin alone.
//!
//! Every server role has a self-signed certificate whose pin is published in `cluster.toml`.
//! There is no web PKI, no certificate authority, no name or validity-period check: a peer is
//! who it claims to be exactly when its certificate hashes to the expected pin and it proves
//! possession of the certificate's key in the TLS 1.3 handshake. TLS 1.2 is refused.
//!
//! This module holds no networking code; `endpoint` builds the QUIC configs from it.

use std::fmt;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use sha2::{Digest, Sha256};

/// SHA-256 of a certificate's DER encoding.
pub type Pin = [u8; 32];

/// The pin of a DER-encoded certificate.
pub fn pin_of(cert_der: &[u8]) -> Pin {
    Sha256::digest(cert_der).into()
}

/// The pin as 64 lower-case hex digits (the form used in `cluster.toml`).
pub fn pin_to_hex(pin: &Pin) -> String {
    hex::encode(pin)
}

/// Parses 64 hex digits (either case, surrounding whitespace ignored) into a pin.
pub fn pin_from_hex(s: &str) -> anyhow::Result<Pin> {
    let s = s.trim();
    if s.len() != 64 {
        bail!(
            "certificate pin must be 64 hex digits (SHA-256), found {} characters",
            s.len()
        );
    }
    let bytes = hex::decode(s).with_context(|| format!("certificate pin {s:?} is not hex"))?;
    let mut pin = [0u8; 32];
    pin.copy_from_slice(&bytes);
    Ok(pin)
}

/// A shortened hex pin for messages: the first 8 bytes.
pub fn short_pin(pin: &Pin) -> String {
    format!("{}…", hex::encode(&pin[..8]))
}

/// A peer presented a certificate other than the pinned one(s).
///
/// `Debug` prints the same text as `Display`, because rustls shows this error through
/// `Debug` inside its own message.
pub struct PinMismatch {
    /// What the peer was (`server` or `client`).
    pub role: &'static str,
    /// The acceptable pins.
    pub expected: Vec<Pin>,
    /// The pin of the certificate actually presented.
    pub found: Pin,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = match self.expected.as_slice() {
            [] => "no certificate (none allowed)".to_string(),
            [one] => short_pin(one),
            many => format!(
                "one of [{}]",
                many.iter().map(short_pin).collect::<Vec<_>>().join(", ")
            ),
        };
        write!(
            f,
            "{} certificate pin mismatch: expected {expected}, found {}",
            self.role,
            short_pin(&self.found)
        )
    }
}

impl fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PinMismatch {}

fn mismatch(role: &'static str, expected: Vec<Pin>, found: Pin) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(PinMismatch {
        role,
        expected,
        found,
    }))))
}

fn refuse_tls12() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

/// Accepts exactly one server certificate: the one whose pin is `expected`.
#[derive(Debug)]
pub struct PinnedServerVerifier {
    expected: Pin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedServerVerifier {
    /// A verifier for the server pinned as `expected`, checking handshake signatures with
    /// `provider`'s algorithms.
    pub fn new(expected: Pin, provider: &CryptoProvider) -> Self {
        Self {
            expected,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::General(format!(
                "server sent a certificate chain of {} certificates; expected a single \
                 self-signed certificate",
                intermediates.len() + 1
            )));
        }
        let found = pin_of(end_entity);
        if found != self.expected {
            return Err(mismatch("server", vec![self.expected], found));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(refuse_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Accepts client certificates whose pin is in an allowed set; clients without a certificate
/// are accepted too (anonymous). The application decides what a peer may do by
/// [`super::endpoint::peer_pin`].
#[derive(Debug)]
pub struct PinnedClientVerifier {
    allowed: Vec<Pin>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientVerifier {
    /// A verifier admitting the certificates pinned in `allowed`, checking handshake
    /// signatures with `provider`'s algorithms.
    pub fn new(allowed: Vec<Pin>, provider: &CryptoProvider) -> Self {
        Self {
            allowed,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::General(format!(
                "client sent a certificate chain of {} certificates; expected a single \
                 self-signed certificate",
                intermediates.len() + 1
            )));
        }
        let found = pin_of(end_entity);
        if !self.allowed.contains(&found) {
            return Err(mismatch("client", self.allowed.clone(), found));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(refuse_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let pin = pin_of(b"some certificate");
        let hex = pin_to_hex(&pin);
        assert_eq!(hex.len(), 64);
        assert_eq!(pin_from_hex(&hex).unwrap(), pin);
        assert_eq!(pin_from_hex(&hex.to_uppercase()).unwrap(), pin);
        assert!(pin_from_hex(&hex[..62]).is_err());
        let mut bad = hex.clone();
        bad.replace_range(0..1, "z");
        assert!(pin_from_hex(&bad).is_err());
    }

    #[test]
    fn server_verifier_checks_pin() {
        let provider = rustls::crypto::ring::default_provider();
        let good = CertificateDer::from(b"cert-a".to_vec());
        let other = CertificateDer::from(b"cert-b".to_vec());
        let v = PinnedServerVerifier::new(pin_of(&good), &provider);
        let name = ServerName::try_from("mpcstats").unwrap();
        assert!(v
            .verify_server_cert(&good, &[], &name, &[], UnixTime::now())
            .is_ok());
        let err = v
            .verify_server_cert(&other, &[], &name, &[], UnixTime::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&short_pin(&pin_of(&good))), "{err}");
        assert!(err.contains(&short_pin(&pin_of(&other))), "{err}");
    }

    #[test]
    fn client_verifier_checks_set() {
        let provider = rustls::crypto::ring::default_provider();
        let a = CertificateDer::from(b"cert-a".to_vec());
        let b = CertificateDer::from(b"cert-b".to_vec());
        let v = PinnedClientVerifier::new(vec![pin_of(&a)], &provider);
        assert!(!v.client_auth_mandatory());
        assert!(v.root_hint_subjects().is_empty());
        assert!(v.verify_client_cert(&a, &[], UnixTime::now()).is_ok());
        assert!(v.verify_client_cert(&b, &[], UnixTime::now()).is_err());
    }
}
