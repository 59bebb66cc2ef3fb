//! The TLS oracle ("proxy notary"): everything that proves a value came from an HTTPS server,
//! as plain data and functions (DESIGN.md §4). The network roles (`roles/notary.rs`,
//! `roles/prove.rs`) drive these pieces over QUIC; nothing here opens a QUIC stream.
//!
//! # Layout
//!
//! * [`tls13`] — TLS 1.3 record framing, HKDF-Expand-Label, traffic key/IV derivation,
//!   AES-128-GCM record open/seal, inner plaintext, handshake message framing.
//! * [`tls12`] — TLS 1.2 PRF (SHA-256), key block, AES-128-GCM record open/seal with the
//!   explicit nonce (RFC 5288).
//! * [`handshake`] — the notary's check of a recorded handshake: the hellos of both versions,
//!   then for TLS 1.3 with the revealed server handshake traffic secret the certificate chain,
//!   CertificateVerify and Finished.
//! * [`handshake12`] — the TLS 1.2 part of that check, on the plaintext handshake alone:
//!   ServerHello, certificate chain, ServerKeyExchange signature, the shape of both flights.
//! * [`attestation`] — the notary's signed statement, its exact byte encoding, and the
//!   notary's Ed25519 key.
//! * [`proof`] — the prover's private proof file and the plaintext reference of the
//!   application-data decryption the parties run in MPC.
//! * [`prover`] — the prover's rustls client config, a `KeyLog` capturing the secrets, and the
//!   recording stream wrapper the notary relays through.
//! * [`mpc`] — the parties' MPC check of a proven session (AES-GCM on shared keys, request
//!   and response checks, the value's share), over the engine's abstract transport.
//! * [`template`] — dataset templates: where a value must come from, and the checks of a
//!   response against them.
//! * [`admit`] — the public checks of a proven contribution (signature, server, age, records).
//! * [`exchange`] — a local HTTPS exchange API with its own CA (tests, demo, example).
//!
//! Must not hold: QUIC or role orchestration (those live in `roles/`). Trusts nothing it is
//! handed: every parser refuses malformed input with an error that names the failed check.

pub mod admit;
pub mod attestation;
pub mod exchange;
pub mod handshake;
pub mod handshake12;
pub mod mpc;
pub mod proof;
pub mod prover;
pub mod template;
pub mod tls12;
pub mod tls13;

#[cfg(test)]
pub(crate) mod testutil {
    //! One real recorded session per server key type, shared by the tests: an in-process
    //! exchange, the prover's client through a recording stream, and the captured secrets.

    use std::sync::{Arc, OnceLock};

    use rustls::pki_types::ServerName;
    use rustls::RootCertStore;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::exchange::{self, Exchange, ExchangeConfig, ExchangePki, LeafKey};
    use super::handshake::roots_from_pem;
    use super::prover::{client_config, Recording, RecordingStream, SecretCapture, SessionSecrets};

    pub struct Session {
        pub pki: ExchangePki,
        pub server_name: String,
        pub now: u64,
        pub roots: RootCertStore,
        pub recording: Recording,
        pub secrets: SessionSecrets,
        /// The application data the client read.
        pub response: Vec<u8>,
        /// The ETH balance of the account queried (acct-3).
        pub eth_balance: String,
    }

    impl Session {
        /// The notary's check of this genuine session, which must pass.
        pub fn verified(&self) -> super::handshake::HandshakeSummary {
            super::handshake::verify(&super::handshake::HandshakeCheck {
                client_to_server: &self.recording.client_to_server,
                server_to_client: &self.recording.server_to_client,
                server_handshake_secret: &self.secrets.server_handshake,
                server_name: &self.server_name,
                now: self.now,
                roots: &self.roots,
            })
            .expect("the genuine session verifies")
        }
    }

    fn run(leaf: LeafKey) -> Session {
        let server_name = exchange::DEFAULT_NAME.to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let pki = ExchangePki::generate(&server_name, now, 30, leaf).unwrap();
        let accounts = exchange::generate_accounts(5, 42);
        let eth_balance = accounts[3].balance("ETH").unwrap().to_string();
        let config = ExchangeConfig {
            tls: pki.server_config().unwrap(),
            exchange: Arc::new(Exchange::new(accounts)),
        };
        let roots = roots_from_pem(pki.ca_pem.as_bytes()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (recording, secrets, response) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(exchange::serve(listener, config));
            let capture = SecretCapture::new();
            let client = client_config(roots.clone(), capture.clone()).unwrap();
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let recorder = RecordingStream::new(tcp, 1 << 20);
            let log = recorder.handle();
            let name = ServerName::try_from(server_name.clone()).unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(client)
                .connect(name, recorder)
                .await
                .unwrap();
            let request = format!(
                "GET /api/v1/account HTTP/1.1\r\nHost: {server_name}\r\nX-API-KEY: key-3\r\nConnection: close\r\n\r\n"
            );
            tls.write_all(request.as_bytes()).await.unwrap();
            tls.flush().await.unwrap();
            let mut response = Vec::new();
            tls.read_to_end(&mut response).await.unwrap();
            server.abort();
            let recording = log.lock().unwrap().clone();
            (recording, capture.session_secrets().unwrap(), response)
        });
        Session {
            pki,
            server_name,
            now,
            roots,
            recording,
            secrets,
            response,
            eth_balance,
        }
    }

    /// The shared session for `leaf` (run once per test binary).
    pub fn session(leaf: LeafKey) -> &'static Session {
        static ECDSA: OnceLock<Session> = OnceLock::new();
        static ED25519: OnceLock<Session> = OnceLock::new();
        match leaf {
            LeafKey::EcdsaP256 => ECDSA.get_or_init(|| run(leaf)),
            LeafKey::Ed25519 => ED25519.get_or_init(|| run(leaf)),
        }
    }
}
