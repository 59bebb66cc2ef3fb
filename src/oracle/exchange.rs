//! A local HTTPS "exchange": the data source of the demo and of the oracle's tests.
//!
//! It holds its own CA (rcgen), a server certificate for one name signed by it, seeded
//! accounts, and a rustls server restricted to TLS 1.3 with TLS13_AES_128_GCM_SHA256 (or, for
//! the TLS 1.2 tests, to TLS 1.2 with ECDHE and AES-128-GCM) that answers one HTTP/1.1
//! request per connection (`Connection: close`):
//!
//! * `GET /api/v1/account` with `X-API-KEY: key-<i>` → 200 and
//!   `{"account":"acct-<i>","balances":[{"asset":"BTC","free":"0.10000000"},…]}`;
//! * a missing or unknown key → 401 with a JSON error; other paths → 404; other methods → 405.
//!
//! The HTTP logic ([`Exchange::respond`]) is a pure function of the request bytes; [`serve`]
//! is the thin network layer around it. Nothing here is trusted by the oracle: it is the
//! "website" whose answers are proven. Used in-process by tests and by `examples/exchange`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::{Rng, SeedableRng};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The account endpoint.
pub const ACCOUNT_PATH: &str = "/api/v1/account";
/// The header carrying the API key.
pub const API_KEY_HEADER: &str = "X-API-KEY";
/// The exchange's default DNS name.
pub const DEFAULT_NAME: &str = "api.exchange.test";
/// Largest request head accepted.
const MAX_REQUEST: usize = 16 << 10;
/// A connection that has not sent its request by then is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The key type of the server certificate (selects the CertificateVerify scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeafKey {
    /// ECDSA P-256 (ecdsa_secp256r1_sha256).
    EcdsaP256,
    /// Ed25519 (ed25519).
    Ed25519,
}

/// The exchange's CA and server certificate.
pub struct ExchangePki {
    /// The CA certificate, PEM (what clients and the notary trust).
    pub ca_pem: String,
    /// The CA certificate, DER.
    pub ca_der: CertificateDer<'static>,
    /// The server certificate, DER.
    pub leaf_der: CertificateDer<'static>,
    /// The server certificate's private key.
    pub leaf_key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for ExchangePki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangePki").finish_non_exhaustive()
    }
}

/// Civil date (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

impl ExchangePki {
    /// A fresh CA and a server certificate for `name`, both valid from the midnight (UTC)
    /// before the day of `now` (unix seconds) to the midnight `validity_days` after it.
    pub fn generate(
        name: &str,
        now: u64,
        validity_days: u32,
        leaf_key: LeafKey,
    ) -> anyhow::Result<ExchangePki> {
        let alg = match leaf_key {
            LeafKey::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            LeafKey::Ed25519 => &rcgen::PKCS_ED25519,
        };
        let key = rcgen::KeyPair::generate_for(alg).context("generating the server key")?;
        Self::generate_with_leaf_key(name, now, validity_days, key)
    }

    /// As [`ExchangePki::generate`], with a server key made elsewhere (e.g. an RSA key, which
    /// ring cannot generate, loaded from PKCS#8 with `rcgen::KeyPair::try_from`).
    pub fn generate_with_leaf_key(
        name: &str,
        now: u64,
        validity_days: u32,
        key: rcgen::KeyPair,
    ) -> anyhow::Result<ExchangePki> {
        let today = (now / 86_400) as i64;
        let (y, m, d) = civil_from_days(today - 1);
        let not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = civil_from_days(today + i64::from(validity_days));
        let not_after = rcgen::date_time_ymd(y, m, d);

        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .context("generating the CA key")?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .context("CA certificate parameters")?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("mpcstats test CA for {name}"),
        );
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = not_before;
        ca.not_after = not_after;
        let ca_cert = ca.self_signed(&ca_key).context("self-signing the CA")?;

        let mut leaf = rcgen::CertificateParams::new(vec![name.to_string()])
            .with_context(|| format!("server name {name:?} is not a valid DNS name"))?;
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, name);
        leaf.is_ca = rcgen::IsCa::ExplicitNoCa;
        leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = not_before;
        leaf.not_after = not_after;
        let leaf_cert = leaf
            .signed_by(&key, &ca_cert, &ca_key)
            .context("signing the server certificate")?;
        Ok(ExchangePki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            leaf_der: leaf_cert.der().clone(),
            leaf_key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// The server's rustls config: TLS 1.3 only, TLS13_AES_128_GCM_SHA256 only, no 0-RTT.
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("configuring TLS 1.3")?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.leaf_der.clone()],
                PrivateKeyDer::Pkcs8(self.leaf_key.clone_key()),
            )
            .context("the server key does not fit its certificate")?;
        config.max_early_data_size = 0;
        Ok(Arc::new(config))
    }

    /// A TLS 1.2-only server config (tests of the TLS 1.2 oracle): the ECDHE AES-128-GCM suite
    /// that fits the server key (ECDSA or RSA).
    pub fn server_config_tls12(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        use rustls::crypto::ring::cipher_suite;
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ];
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .context("configuring TLS 1.2")?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.leaf_der.clone()],
                PrivateKeyDer::Pkcs8(self.leaf_key.clone_key()),
            )
            .context("the server key does not fit its certificate")?;
        Ok(Arc::new(config))
    }
}

/// One balance line: asset symbol and amount as a decimal string with 8 decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    /// Asset symbol, e.g. `ETH`.
    pub asset: String,
    /// Amount, e.g. `12.34500000`.
    pub free: String,
}

/// One exchange account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Account id, `acct-<i>`.
    pub id: String,
    /// API key, `key-<i>`.
    pub api_key: String,
    /// Balances in asset order BTC, ETH, USDT.
    pub balances: Vec<Balance>,
}

impl Account {
    /// The response body of the account endpoint.
    pub fn to_json(&self) -> String {
        let balances: Vec<String> = self
            .balances
            .iter()
            .map(|b| format!("{{\"asset\":\"{}\",\"free\":\"{}\"}}", b.asset, b.free))
            .collect();
        format!(
            "{{\"account\":\"{}\",\"balances\":[{}]}}",
            self.id,
            balances.join(",")
        )
    }

    /// The balance of `asset`, if held.
    pub fn balance(&self, asset: &str) -> Option<&str> {
        self.balances
            .iter()
            .find(|b| b.asset == asset)
            .map(|b| b.free.as_str())
    }
}

/// `n` accounts `acct-0 … acct-(n-1)` with keys `key-<i>` and balances drawn from a ChaCha20
/// stream seeded with `seed` (the same seed gives the same accounts on every platform):
/// BTC below 100, ETH below 10 000, USDT below 1 000 000, each with 8 decimals.
pub fn generate_accounts(n: usize, seed: u64) -> Vec<Account> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    const UNIT: u64 = 100_000_000;
    (0..n)
        .map(|i| {
            let balances = [("BTC", 100u64), ("ETH", 10_000), ("USDT", 1_000_000)]
                .into_iter()
                .map(|(asset, max)| {
                    let units = rng.gen_range(0..max * UNIT);
                    Balance {
                        asset: asset.to_string(),
                        free: format!("{}.{:08}", units / UNIT, units % UNIT),
                    }
                })
                .collect();
            Account {
                id: format!("acct-{i}"),
                api_key: format!("key-{i}"),
                balances,
            }
        })
        .collect()
}

/// The exchange's accounts and its HTTP behaviour.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    by_key: HashMap<String, Account>,
}

impl Exchange {
    /// An exchange serving `accounts`.
    pub fn new(accounts: Vec<Account>) -> Exchange {
        Exchange {
            by_key: accounts
                .into_iter()
                .map(|a| (a.api_key.clone(), a))
                .collect(),
        }
    }

    /// The complete HTTP/1.1 response to a request head (request line and headers).
    pub fn respond(&self, head: &[u8]) -> Vec<u8> {
        let (status, body) = self.route(head);
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            _ => "Method Not Allowed",
        };
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn route(&self, head: &[u8]) -> (u16, String) {
        let error = |msg: &str| format!("{{\"error\":\"{msg}\"}}");
        let Ok(head) = std::str::from_utf8(head) else {
            return (400, error("request is not UTF-8"));
        };
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let parts: Vec<&str> = request_line.split(' ').collect();
        let [method, target, version] = parts[..] else {
            return (400, error("malformed request line"));
        };
        if version != "HTTP/1.1" {
            return (400, error("expected HTTP/1.1"));
        }
        if target != ACCOUNT_PATH {
            return (404, error("not found"));
        }
        if method != "GET" {
            return (405, error("method not allowed"));
        }
        let key = lines.find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case(API_KEY_HEADER)
                .then(|| value.trim())
        });
        match key.and_then(|k| self.by_key.get(k)) {
            Some(account) => (200, account.to_json()),
            None => (401, error("invalid or missing API key")),
        }
    }
}

/// What [`serve`] needs: the TLS config and the exchange.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// From [`ExchangePki::server_config`].
    pub tls: Arc<rustls::ServerConfig>,
    /// The accounts.
    pub exchange: Arc<Exchange>,
}

/// Accepts connections forever, one task each: TLS handshake, one request, one response,
/// close_notify. Per-connection failures are logged to stderr, not returned.
pub async fn serve(listener: TcpListener, config: ExchangeConfig) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config.tls.clone());
    loop {
        let (tcp, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let exchange = config.exchange.clone();
        tokio::spawn(async move {
            let work = async {
                let mut tls = acceptor.accept(tcp).await?;
                let head = read_head(&mut tls).await?;
                tls.write_all(&exchange.respond(&head)).await?;
                tls.shutdown().await?;
                Ok::<_, std::io::Error>(())
            };
            match tokio::time::timeout(REQUEST_TIMEOUT, work).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("exchange: connection from {peer}: {e}"),
                Err(_) => eprintln!("exchange: connection from {peer}: timed out"),
            }
        });
    }
}

/// Reads up to and including the blank line ending the request head.
pub(crate) async fn read_head<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end + 4);
            return Ok(head);
        }
        if head.len() > MAX_REQUEST {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }

    #[test]
    fn accounts_are_seeded_and_formatted() {
        let a = generate_accounts(5, 7);
        assert_eq!(a, generate_accounts(5, 7));
        assert_ne!(a, generate_accounts(5, 8));
        assert_eq!(a[3].id, "acct-3");
        assert_eq!(a[3].api_key, "key-3");
        for account in &a {
            let assets: Vec<&str> = account.balances.iter().map(|b| b.asset.as_str()).collect();
            assert_eq!(assets, ["BTC", "ETH", "USDT"]);
            for b in &account.balances {
                let (int, frac) = b.free.split_once('.').unwrap();
                assert_eq!(frac.len(), 8, "{}", b.free);
                assert!(int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()));
            }
        }
        let json = a[3].to_json();
        assert!(json
            .starts_with("{\"account\":\"acct-3\",\"balances\":[{\"asset\":\"BTC\",\"free\":\""));
        assert!(json.contains(&format!(
            "{{\"asset\":\"ETH\",\"free\":\"{}\"}}",
            a[3].balance("ETH").unwrap()
        )));
    }

    #[test]
    fn http_routes() {
        let ex = Exchange::new(generate_accounts(3, 1));
        let ok = ex.respond(b"GET /api/v1/account HTTP/1.1\r\nHost: x\r\nx-api-key: key-2\r\n\r\n");
        let ok = String::from_utf8(ok).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Connection: close\r\n"));
        let body = ok.split_once("\r\n\r\n").unwrap().1;
        assert!(ok.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(body.contains("\"acct-2\""));
        for (req, status) in [
            (
                &b"GET /api/v1/account HTTP/1.1\r\nHost: x\r\n\r\n"[..],
                "401",
            ),
            (
                b"GET /api/v1/account HTTP/1.1\r\nX-API-KEY: key-9\r\n\r\n",
                "401",
            ),
            (b"GET /other HTTP/1.1\r\nX-API-KEY: key-1\r\n\r\n", "404"),
            (
                b"POST /api/v1/account HTTP/1.1\r\nX-API-KEY: key-1\r\n\r\n",
                "405",
            ),
            (b"GET /api/v1/account HTTP/1.0\r\n\r\n", "400"),
            (b"garbage\r\n\r\n", "400"),
            (b"\xff\xfe\r\n\r\n", "400"),
        ] {
            let r = String::from_utf8(ex.respond(req)).unwrap();
            assert!(r.starts_with(&format!("HTTP/1.1 {status} ")), "{r}");
            assert!(r.ends_with("\"}"), "{r}");
        }
    }
}
