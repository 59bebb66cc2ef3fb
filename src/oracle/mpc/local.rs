//! The check with three parties in one process: XOR-sharing the keys as a provider does,
//! running [`verify_session`] over the in-process transport, synthetic sessions sealed under
//! random keys, and [`cost_of`], the figures a benchmark reports.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::engine::local::{local_transports, run3_secure};
use crate::engine::ring::Z128;
use crate::engine::session::Counters;
use crate::engine::share::reconstruct;
use crate::engine::Security;
use crate::oracle::handshake::TlsVersion;
use crate::oracle::proof::{tls12_keys, traffic_keys_of_tls12};
use crate::oracle::template::{RequestLayout, Template};
use crate::oracle::tls12::Tls12Keys;
use crate::oracle::tls13::{TrafficKeys, CONTENT_ALERT, CONTENT_APPLICATION_DATA};

use super::{verify_session, KeyPairs, PublicSession, Verified, VerifyError};

/// Owned public inputs of one session (see [`PublicSession`]).
#[derive(Clone, Debug)]
pub struct Inputs {
    pub version: TlsVersion,
    pub client_records: Vec<Vec<u8>>,
    pub server_records: Vec<Vec<u8>>,
    pub client_iv: [u8; 12],
    pub server_iv: [u8; 12],
    pub request: RequestLayout,
    pub value: Range<usize>,
    pub decimals: u32,
    pub scale: u32,
}

impl Inputs {
    /// The borrowed view [`verify_session`] takes.
    pub fn public(&self) -> PublicSession<'_> {
        PublicSession {
            version: self.version,
            client_records: &self.client_records,
            server_records: &self.server_records,
            client_iv: self.client_iv,
            server_iv: self.server_iv,
            request: &self.request,
            value: self.value.clone(),
            decimals: self.decimals,
            scale: self.scale,
        }
    }
}

/// A random XOR sharing k = k_0 ⊕ k_1 ⊕ k_2 of a key.
pub fn xor_shares<G: RngCore>(key: [u8; 16], rng: &mut G) -> [[u8; 16]; 3] {
    let k1: [u8; 16] = rng.gen();
    let k2: [u8; 16] = rng.gen();
    let k0 = std::array::from_fn(|j| key[j] ^ k1[j] ^ k2[j]);
    [k0, k1, k2]
}

/// The pairs of every party: party i gets (k_i, k_{i+1}) of each key.
pub fn key_pairs(client: &[[u8; 16]; 3], server: &[[u8; 16]; 3]) -> [KeyPairs; 3] {
    std::array::from_fn(|i| KeyPairs {
        client: (client[i], client[(i + 1) % 3]),
        server: (server[i], server[(i + 1) % 3]),
    })
}

/// One party's result and communication.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Verified, VerifyError>,
    pub counters: Counters,
}

/// Runs [`verify_session`] for the three parties in-process (semi-honest sessions).
pub async fn run_local(inputs: Arc<Inputs>, pairs: [KeyPairs; 3], seed: u64) -> [Outcome; 3] {
    run_local_in(inputs, pairs, seed, Security::SemiHonest).await
}

/// [`run_local`] in sessions of `security`; a malicious session proves everything before
/// it returns.
pub async fn run_local_in(
    inputs: Arc<Inputs>,
    pairs: [KeyPairs; 3],
    seed: u64,
    security: Security,
) -> [Outcome; 3] {
    let pairs = Arc::new(pairs);
    let out = run3_secure(seed, security, local_transports(), move |mut s| {
        let (inputs, pairs) = (inputs.clone(), pairs.clone());
        async move {
            let keys = &pairs[s.id()];
            let mut result = verify_session(&mut s, &inputs.public(), keys).await;
            if result.is_ok() {
                if let Err(e) = s.verify().await {
                    result = Err(e.into());
                }
            }
            Ok((result, s.counters()))
        }
    })
    .await;
    out.map(|r| match r {
        Ok((result, counters)) => Outcome { result, counters },
        Err(e) => Outcome {
            result: Err(e.into()),
            counters: Counters::default(),
        },
    })
}

/// The value reconstructed from the three parties' shares (tests and benchmarks only).
pub fn reconstruct_value(outcomes: &[Outcome; 3]) -> Option<u128> {
    let shares: Vec<_> = outcomes
        .iter()
        .map(|o| o.result.as_ref().ok().map(|v| v.value))
        .collect::<Option<_>>()?;
    let shares: [_; 3] = shares.try_into().ok()?;
    reconstruct::<Z128>(&shares).ok().map(|z| z.0)
}

/// A session sealed under random keys: one request, a response of a chosen length holding a
/// value, close_notify both ways.
#[derive(Clone, Debug)]
pub struct Synthetic {
    pub inputs: Inputs,
    pub client_keys: TrafficKeys,
    pub server_keys: TrafficKeys,
    /// The plaintext application data of each direction.
    pub request: Vec<u8>,
    pub response: Vec<u8>,
    /// The value's text (in the window).
    pub value_text: String,
}

/// The head of the synthetic request.
pub const SYNTHETIC_PREFIX: &str = "GET /api/v1/account HTTP/1.1\r\nHost: exchange.example\r\n";

/// The layout of a request `GET path HTTP/1.1` to `host` without query parameters.
pub fn plain_layout(host: &str, path: &str) -> RequestLayout {
    let template = Template {
        server_name: host.into(),
        port: 443,
        method: "GET".into(),
        path: path.into(),
        query: vec![],
        signing: None,
        value: "v".into(),
        account: "a".into(),
        decimals: 8,
        max_age_secs: 60,
    };
    template
        .request_layout(&[])
        .expect("a template without parameters has a layout")
}

/// Seals `data` into application-data records of at most 2^14 bytes, then a close_notify.
pub fn seal_stream(keys: &TrafficKeys, data: &[u8]) -> Vec<Vec<u8>> {
    let mut records: Vec<Vec<u8>> = data
        .chunks(1 << 14)
        .enumerate()
        .map(|(seq, chunk)| {
            keys.seal(seq as u64, CONTENT_APPLICATION_DATA, chunk)
                .expect("chunk fits a record")
                .to_bytes()
        })
        .collect();
    let seq = records.len() as u64;
    records.push(
        keys.seal(seq, CONTENT_ALERT, &[1, 0])
            .expect("alert fits")
            .to_bytes(),
    );
    records
}

/// TLS 1.2: seals `data` into application-data records (sequence numbers from 1, after the
/// Finished), then a close_notify alert.
pub fn seal_stream12(keys: &Tls12Keys, data: &[u8]) -> Vec<Vec<u8>> {
    let mut records: Vec<Vec<u8>> = data
        .chunks(1 << 14)
        .enumerate()
        .map(|(i, chunk)| {
            keys.seal(i as u64 + 1, CONTENT_APPLICATION_DATA, chunk)
                .expect("chunk fits a record")
                .to_bytes()
        })
        .collect();
    let seq = records.len() as u64 + 1;
    records.push(
        keys.seal(seq, CONTENT_ALERT, &[1, 0])
            .expect("alert fits")
            .to_bytes(),
    );
    records
}

/// A synthetic TLS 1.3 session whose response is `response_len` bytes (at least about 200).
pub fn synthetic(response_len: usize, seed: u64) -> Synthetic {
    synthetic_with(response_len, seed, TlsVersion::Tls13)
}

/// A synthetic session of `version` whose response is `response_len` bytes.
pub fn synthetic_with(response_len: usize, seed: u64, version: TlsVersion) -> Synthetic {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut keys = || match version {
        TlsVersion::Tls13 => TrafficKeys {
            key: rng.gen(),
            iv: rng.gen(),
        },
        TlsVersion::Tls12 => traffic_keys_of_tls12(&Tls12Keys {
            key: rng.gen(),
            salt: rng.gen(),
        }),
    };
    let client_keys = keys();
    let server_keys = keys();
    let request = format!("{SYNTHETIC_PREFIX}X-API-KEY: key-{seed}\r\nConnection: close\r\n\r\n")
        .into_bytes();
    let value_text = format!(
        "{}.{:08}",
        rng.gen_range(0..1_000_000u64),
        rng.gen_range(0..100_000_000u64)
    );
    let body_start = format!("{{\"account\":\"acct-1\",\"balances\":[{{\"asset\":\"ETH\",\"free\":\"{value_text}\"}}],\"pad\":\"");
    let body_end = "\"}";
    let head = |body_len: usize| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n"
        )
    };
    let fixed = body_start.len() + body_end.len();
    // The head's length depends on the body length's digits; two passes settle it.
    let mut pad = response_len.saturating_sub(head(response_len).len() + fixed);
    pad = response_len.saturating_sub(head(fixed + pad).len() + fixed);
    let body = format!("{body_start}{}{body_end}", "x".repeat(pad));
    let head = head(body.len());
    let response = format!("{head}{body}").into_bytes();
    let free = "\"free\":\"";
    let value_start = head.len() + body_start.find(free).expect("value field") + free.len();
    let seal = |k: &TrafficKeys, data: &[u8]| match version {
        TlsVersion::Tls13 => seal_stream(k, data),
        TlsVersion::Tls12 => seal_stream12(&tls12_keys(k), data),
    };
    let inputs = Inputs {
        version,
        client_records: seal(&client_keys, &request),
        server_records: seal(&server_keys, &response),
        client_iv: client_keys.iv,
        server_iv: server_keys.iv,
        request: plain_layout("exchange.example", "/api/v1/account"),
        value: value_start..value_start + value_text.len(),
        decimals: 8,
        scale: 8,
    };
    Synthetic {
        inputs,
        client_keys,
        server_keys,
        request,
        response,
        value_text,
    }
}

/// The cost of checking one session, as seen by the busiest party.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    /// Bytes of server application data.
    pub response_len: usize,
    /// Communication rounds, including the seed agreement.
    pub rounds: u64,
    /// Boolean AND gates.
    pub and_gates: u64,
    /// Bytes sent and received by the party that sent the most.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Wall-clock time of the whole check, three parties in one process.
    pub seconds: f64,
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "response {} B: {} rounds, {} AND gates, {} B sent / {} B received per party, {:.2} s",
            self.response_len,
            self.rounds,
            self.and_gates,
            self.bytes_sent,
            self.bytes_received,
            self.seconds
        )
    }
}

/// Runs the check on `inputs` with the keys shared at random and measures it. Errors if any
/// party refuses the session.
pub async fn measure(
    inputs: Inputs,
    client_key: [u8; 16],
    server_key: [u8; 16],
    seed: u64,
) -> Result<(Cost, [Outcome; 3]), VerifyError> {
    measure_in(inputs, client_key, server_key, seed, Security::SemiHonest).await
}

/// [`measure`] in sessions of `security`.
pub async fn measure_in(
    inputs: Inputs,
    client_key: [u8; 16],
    server_key: [u8; 16],
    seed: u64,
    security: Security,
) -> Result<(Cost, [Outcome; 3]), VerifyError> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    let pairs = key_pairs(
        &xor_shares(client_key, &mut rng),
        &xor_shares(server_key, &mut rng),
    );
    let inputs = Arc::new(inputs);
    let t = Instant::now();
    let outcomes = run_local_in(inputs, pairs, seed, security).await;
    let seconds = t.elapsed().as_secs_f64();
    if let Some(i) = outcomes.iter().position(|o| o.result.is_err()) {
        let failed = outcomes.into_iter().nth(i).expect("a failed outcome");
        return Err(failed.result.expect_err("an error"));
    }
    let busiest = outcomes
        .iter()
        .max_by_key(|o| o.counters.bytes_sent)
        .expect("three outcomes");
    let cost = Cost {
        response_len: outcomes[0].result.as_ref().map_or(0, |v| v.response.len()),
        rounds: busiest.counters.rounds,
        and_gates: outcomes[0]
            .result
            .as_ref()
            .map(|v| v.and_gates)
            .unwrap_or(0),
        bytes_sent: busiest.counters.bytes_sent,
        bytes_received: busiest.counters.bytes_received,
        seconds,
    };
    Ok((cost, outcomes))
}

/// The cost of checking a synthetic session of `version` with a response of about
/// `response_len` bytes (for benchmarks).
pub async fn cost_of(
    response_len: usize,
    seed: u64,
    version: TlsVersion,
) -> Result<Cost, VerifyError> {
    cost_in(response_len, seed, version, Security::SemiHonest).await
}

/// [`cost_of`] in sessions of `security`.
pub async fn cost_in(
    response_len: usize,
    seed: u64,
    version: TlsVersion,
    security: Security,
) -> Result<Cost, VerifyError> {
    let syn = synthetic_with(response_len, seed, version);
    let (cost, _) = measure_in(
        syn.inputs,
        syn.client_keys.key,
        syn.server_keys.key,
        seed,
        security,
    )
    .await?;
    Ok(cost)
}
