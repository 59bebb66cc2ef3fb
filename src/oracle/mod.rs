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
//! * [`template`] — dataset templates: the server and port, the request query parameter by
//!   parameter, where the value must be, and the checks of a response against them.
//! * [`signing`] — the provider's API key file and the request signing schemes.
//! * [`admit`] — the public checks of a proven contribution (signature, server, age, records).
//! * [`exchange`] — a local HTTPS exchange API with its own CA (tests, demo, example).
//! * [`sources`] — local HTTPS sources in the shapes of real APIs: a signed exchange
//!   (Binance's shape) and a profile API with numeric fields and chunked bodies.
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
pub mod signing;
pub mod sources;
pub mod template;
pub mod tls12;
pub mod tls13;

#[cfg(test)]
pub(crate) mod testutil {
    //! One real recorded session per server key type, shared by the tests: an in-process
    //! exchange, the prover's client through a recording stream, and the captured secrets.
    //! TLS 1.3 sessions ([`session`]) and TLS 1.2 sessions ([`session12`]).

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

    fn unix_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// The request every recorded session sends.
    pub fn request(server_name: &str) -> String {
        format!(
            "GET /api/v1/account HTTP/1.1\r\nHost: {server_name}\r\nX-API-KEY: key-3\r\nConnection: close\r\n\r\n"
        )
    }

    /// Runs one session of the prover's client against an exchange served with `tls`:
    /// returns the recording, the captured secrets and the response the client read.
    fn record(
        tls: Arc<rustls::ServerConfig>,
        roots: &RootCertStore,
        server_name: &str,
    ) -> (Recording, Arc<SecretCapture>, Vec<u8>) {
        let accounts = exchange::generate_accounts(5, 42);
        let config = ExchangeConfig {
            tls,
            exchange: Arc::new(Exchange::new(accounts)),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(exchange::serve(listener, config));
            let capture = SecretCapture::new();
            let client = client_config(roots.clone(), capture.clone()).unwrap();
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let recorder = RecordingStream::new(tcp, 1 << 20);
            let log = recorder.handle();
            let name = ServerName::try_from(server_name.to_string()).unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(client)
                .connect(name, recorder)
                .await
                .unwrap();
            tls.write_all(request(server_name).as_bytes())
                .await
                .unwrap();
            tls.flush().await.unwrap();
            let mut response = Vec::new();
            tls.read_to_end(&mut response).await.unwrap();
            server.abort();
            let recording = log.lock().unwrap().clone();
            (recording, capture, response)
        })
    }

    fn run(leaf: LeafKey) -> Session {
        let server_name = exchange::DEFAULT_NAME.to_string();
        let now = unix_now();
        let pki = ExchangePki::generate(&server_name, now, 30, leaf).unwrap();
        let accounts = exchange::generate_accounts(5, 42);
        let eth_balance = accounts[3].balance("ETH").unwrap().to_string();
        let roots = roots_from_pem(pki.ca_pem.as_bytes()).unwrap();
        let (recording, capture, response) =
            record(pki.server_config().unwrap(), &roots, &server_name);
        Session {
            pki,
            server_name,
            now,
            roots,
            recording,
            secrets: capture.session_secrets().unwrap(),
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

    /// The server key of a TLS 1.2 session: it selects the cipher suite.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Leaf12 {
        /// ECDSA P-256: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.
        Ecdsa,
        /// RSA 2048: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.
        Rsa,
    }

    /// A recorded TLS 1.2 session (the exchange served TLS 1.2 only).
    pub struct Session12 {
        pub pki: ExchangePki,
        pub server_name: String,
        pub now: u64,
        pub roots: RootCertStore,
        pub recording: Recording,
        /// The master secret the client logged.
        pub master_secret: [u8; 48],
        /// The request the client sent.
        pub request: Vec<u8>,
        /// The application data the client read.
        pub response: Vec<u8>,
    }

    impl Session12 {
        /// The notary's check of this session (no secret revealed).
        pub fn check(&self) -> super::handshake::HandshakeCheck<'_> {
            super::handshake::HandshakeCheck {
                client_to_server: &self.recording.client_to_server,
                server_to_client: &self.recording.server_to_client,
                server_handshake_secret: &[],
                server_name: &self.server_name,
                now: self.now,
                roots: &self.roots,
            }
        }

        /// The notary's check of this genuine session, which must pass.
        pub fn verified(&self) -> super::handshake::HandshakeSummary {
            super::handshake::verify(&self.check()).expect("the genuine TLS 1.2 session verifies")
        }
    }

    /// A 2048-bit RSA key pair (generated: ring cannot), as rcgen loads it from PKCS#8.
    fn rsa_key() -> rcgen::KeyPair {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        rcgen::KeyPair::try_from(der.as_bytes()).unwrap()
    }

    fn run12(leaf: Leaf12) -> Session12 {
        let server_name = exchange::DEFAULT_NAME.to_string();
        let now = unix_now();
        let pki = match leaf {
            Leaf12::Ecdsa => ExchangePki::generate(&server_name, now, 30, LeafKey::EcdsaP256),
            Leaf12::Rsa => ExchangePki::generate_with_leaf_key(&server_name, now, 30, rsa_key()),
        }
        .unwrap();
        let roots = roots_from_pem(pki.ca_pem.as_bytes()).unwrap();
        let (recording, capture, response) =
            record(pki.server_config_tls12().unwrap(), &roots, &server_name);
        let master_secret = capture
            .tls12_master_secret()
            .expect("one TLS 1.2 master secret logged");
        Session12 {
            pki,
            request: request(&server_name).into_bytes(),
            server_name,
            now,
            roots,
            recording,
            master_secret,
            response,
        }
    }

    /// The shared TLS 1.2 session for `leaf` (run once per test binary).
    pub fn session12(leaf: Leaf12) -> &'static Session12 {
        static ECDSA: OnceLock<Session12> = OnceLock::new();
        static RSA: OnceLock<Session12> = OnceLock::new();
        match leaf {
            Leaf12::Ecdsa => ECDSA.get_or_init(|| run12(leaf)),
            Leaf12::Rsa => RSA.get_or_init(|| run12(leaf)),
        }
    }
}
