//! The session-side pieces of a proof: the prover's rustls client config (TLS 1.3 with
//! TLS13_AES_128_GCM_SHA256 preferred, TLS 1.2 with ECDHE and AES-128-GCM; no resumption, no
//! 0-RTT), a `KeyLog` that captures the secrets the prover later reveals or keeps (TLS 1.3
//! traffic secrets, the TLS 1.2 master secret) and the TLS 1.2 application keys derived from
//! it, and a stream wrapper that records every byte in both directions (what the notary does
//! while it relays).
//!
//! No protocol decisions live here: what is revealed to whom is the roles' business, and what
//! the recorded bytes mean is `handshake`'s.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use anyhow::Context as _;
use rustls::RootCertStore;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::handshake::HandshakeSummary;
use super::tls12::{self, Tls12Keys, MASTER_SECRET_LEN};

/// `SSLKEYLOGFILE` label of the server handshake traffic secret.
pub const SERVER_HANDSHAKE_LABEL: &str = "SERVER_HANDSHAKE_TRAFFIC_SECRET";
/// Label of the client handshake traffic secret.
pub const CLIENT_HANDSHAKE_LABEL: &str = "CLIENT_HANDSHAKE_TRAFFIC_SECRET";
/// Label of the first client application traffic secret.
pub const CLIENT_APPLICATION_LABEL: &str = "CLIENT_TRAFFIC_SECRET_0";
/// Label of the first server application traffic secret.
pub const SERVER_APPLICATION_LABEL: &str = "SERVER_TRAFFIC_SECRET_0";
/// Label of the TLS 1.2 master secret (`SSLKEYLOGFILE`'s `CLIENT_RANDOM` lines).
pub const TLS12_MASTER_SECRET_LABEL: &str = "CLIENT_RANDOM";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Captures the secrets rustls logs for one connection (TLS 1.3 traffic secrets or the TLS 1.2
/// master secret).
#[derive(Default)]
pub struct SecretCapture {
    secrets: Mutex<Vec<(String, Vec<u8>)>>,
}

impl std::fmt::Debug for SecretCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<String> = lock(&self.secrets).iter().map(|(l, _)| l.clone()).collect();
        f.debug_struct("SecretCapture")
            .field("labels", &labels)
            .finish()
    }
}

impl rustls::KeyLog for SecretCapture {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        lock(&self.secrets).push((label.to_string(), secret.to_vec()));
    }
}

/// The secrets of one session a prover needs.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecrets {
    /// Revealed to the notary.
    pub server_handshake: Vec<u8>,
    /// Never revealed (tests only).
    pub client_handshake: Vec<u8>,
    /// Kept: its key goes into the proof.
    pub client_application: Vec<u8>,
    /// Kept: its key goes into the proof.
    pub server_application: Vec<u8>,
}

impl std::fmt::Debug for SessionSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSecrets").finish_non_exhaustive()
    }
}

impl SecretCapture {
    /// A capture with nothing logged yet.
    pub fn new() -> Arc<SecretCapture> {
        Arc::default()
    }

    /// The secret logged under `label`; `None` if none was, or if it was logged more than
    /// once (a config shared by two connections: the capture cannot tell them apart).
    pub fn get(&self, label: &str) -> Option<Vec<u8>> {
        let secrets = lock(&self.secrets);
        let mut found = secrets.iter().filter(|(l, _)| l == label);
        let first = found.next()?;
        found.next().is_none().then(|| first.1.clone())
    }

    /// The TLS 1.2 master secret of a completed handshake; `None` if none (or several) was
    /// logged, or not 48 bytes.
    pub fn tls12_master_secret(&self) -> Option<[u8; MASTER_SECRET_LEN]> {
        self.get(TLS12_MASTER_SECRET_LABEL)?.try_into().ok()
    }

    /// All four secrets of a completed TLS 1.3 handshake.
    pub fn session_secrets(&self) -> anyhow::Result<SessionSecrets> {
        let get = |label: &str| {
            self.get(label).with_context(|| {
                format!("expected one {label} from the TLS session, found none or several")
            })
        };
        Ok(SessionSecrets {
            server_handshake: get(SERVER_HANDSHAKE_LABEL)?,
            client_handshake: get(CLIENT_HANDSHAKE_LABEL)?,
            client_application: get(CLIENT_APPLICATION_LABEL)?,
            server_application: get(SERVER_APPLICATION_LABEL)?,
        })
    }
}

/// The prover's client config: TLS 1.3 with TLS13_AES_128_GCM_SHA256, or TLS 1.2 with
/// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (TLS 1.3
/// preferred), resumption and early data off (a full handshake every time), ALPN `http/1.1`,
/// secrets logged to `capture`. Use one config per connection.
pub fn client_config(
    roots: RootCertStore,
    capture: Arc<SecretCapture>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::crypto::ring::cipher_suite;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("configuring TLS 1.3 and 1.2")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.key_log = capture;
    Ok(Arc::new(config))
}

/// The TLS 1.2 application keys `(client write, server write)` of a verified session, from its
/// master secret and the randoms the notary saw ([`tls12::key_block`]). Meaningful only for a
/// TLS 1.2 summary; application record `i` of a direction is opened with sequence number
/// `summary.first_app_seq() + i`.
pub fn tls12_application_keys(
    summary: &HandshakeSummary,
    master_secret: &[u8; MASTER_SECRET_LEN],
) -> (Tls12Keys, Tls12Keys) {
    tls12::key_block(
        master_secret,
        &summary.client_random,
        &summary.server_random,
    )
}

/// Both directions of a relayed session, byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    /// Bytes written towards the server.
    pub client_to_server: Vec<u8>,
    /// Bytes read from the server.
    pub server_to_client: Vec<u8>,
}

/// Wraps the stream to the server: bytes written are recorded as client→server, bytes read as
/// server→client. Past `limit` bytes in total, reads and writes fail.
#[derive(Debug)]
pub struct RecordingStream<S> {
    inner: S,
    log: Arc<Mutex<Recording>>,
    limit: usize,
}

impl<S> RecordingStream<S> {
    /// Wraps `inner`; `limit` bounds the memory a session can take.
    pub fn new(inner: S, limit: usize) -> Self {
        RecordingStream {
            inner,
            log: Arc::default(),
            limit,
        }
    }

    /// A handle to the recording, readable while and after the stream is used.
    pub fn handle(&self) -> Arc<Mutex<Recording>> {
        self.log.clone()
    }

    /// A copy of what was recorded so far.
    pub fn recording(&self) -> Recording {
        lock(&self.log).clone()
    }

    fn over_limit(&self, more: usize) -> bool {
        let log = lock(&self.log);
        log.client_to_server.len() + log.server_to_client.len() + more > self.limit
    }
}

fn limit_error() -> io::Error {
    io::Error::other("recorded session exceeds its size limit")
}

impl<S: AsyncRead + Unpin> AsyncRead for RecordingStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if this.over_limit(new.len()) {
                    return Poll::Ready(Err(limit_error()));
                }
                lock(&this.log).server_to_client.extend_from_slice(new);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RecordingStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.over_limit(data.len()) {
            return Poll::Ready(Err(limit_error()));
        }
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                lock(&this.log)
                    .client_to_server
                    .extend_from_slice(&data[..n]);
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn recording_stream_records_both_ways_and_limits() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut rec = RecordingStream::new(a, 10);
        rec.write_all(b"hello").await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 3];
        rec.read_exact(&mut buf).await.unwrap();
        let r = rec.recording();
        assert_eq!(r.client_to_server, b"hello");
        assert_eq!(r.server_to_client, b"abc");
        assert_eq!(*rec.handle().lock().unwrap(), r);
        assert!(rec.write_all(b"toolong").await.is_err());
        assert_eq!(rec.recording().client_to_server, b"hello");
    }

    #[test]
    fn capture_refuses_duplicates() {
        use rustls::KeyLog;
        let c = SecretCapture::new();
        c.log("A", &[], &[1]);
        assert_eq!(c.get("A"), Some(vec![1]));
        assert_eq!(c.get("B"), None);
        c.log("A", &[], &[2]);
        assert_eq!(c.get("A"), None);
        assert!(c.session_secrets().is_err());
    }

    #[tokio::test]
    async fn client_prefers_tls13_and_speaks_tls12() {
        use crate::oracle::exchange::{ExchangePki, LeafKey};
        use crate::oracle::handshake::roots_from_pem;
        use rustls::pki_types::{PrivateKeyDer, ServerName};
        use rustls::ProtocolVersion;

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let name = "api.exchange.test";
        let pki = ExchangePki::generate(name, now, 30, LeafKey::EcdsaP256).unwrap();
        let roots = roots_from_pem(pki.ca_pem.as_bytes()).unwrap();
        let both = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![pki.leaf_der.clone()],
                PrivateKeyDer::Pkcs8(pki.leaf_key.clone_key()),
            )
            .unwrap();
        for (server, expected) in [
            (Arc::new(both), ProtocolVersion::TLSv1_3),
            (pki.server_config_tls12().unwrap(), ProtocolVersion::TLSv1_2),
        ] {
            let (a, b) = tokio::io::duplex(1 << 16);
            let capture = SecretCapture::new();
            let connector = tokio_rustls::TlsConnector::from(
                client_config(roots.clone(), capture.clone()).unwrap(),
            );
            let acceptor = tokio_rustls::TlsAcceptor::from(server);
            let server_name = ServerName::try_from(name).unwrap();
            let (client, server) =
                tokio::join!(connector.connect(server_name, a), acceptor.accept(b));
            let (client, _server) = (client.unwrap(), server.unwrap());
            let (_, connection) = client.get_ref();
            assert_eq!(connection.protocol_version(), Some(expected));
            let tls12 = expected == ProtocolVersion::TLSv1_2;
            assert_eq!(capture.tls12_master_secret().is_some(), tls12);
            assert_eq!(capture.session_secrets().is_ok(), !tls12);
        }
    }

    #[test]
    fn tls12_master_secret_is_one_48_byte_secret() {
        use rustls::KeyLog;
        let c = SecretCapture::new();
        assert_eq!(c.tls12_master_secret(), None);
        c.log(TLS12_MASTER_SECRET_LABEL, &[0; 32], &[5; 48]);
        assert_eq!(c.tls12_master_secret(), Some([5; 48]));
        c.log(TLS12_MASTER_SECRET_LABEL, &[0; 32], &[6; 48]);
        assert_eq!(c.tls12_master_secret(), None, "two sessions on one capture");
        let short = SecretCapture::new();
        short.log(TLS12_MASTER_SECRET_LABEL, &[0; 32], &[5; 47]);
        assert_eq!(short.tls12_master_secret(), None);
    }
}
