//! The cheating-party property test: one party deviates once (a flipped bit, a δ added to
//! a byte, a replayed, swapped, duplicated, cut or extended message) at a seeded position
//! in a protocol; every honest party must then return the honest answer or abort, never a
//! wrong answer. The same cases in semi-honest mode must produce wrong answers, which
//! shows the deviations matter.
//!
//! Covered: every protocol that the verification layer proves today (AND circuits, AES-128
//! under a shared key, comparisons and equality through the carry-save A2B, products, dot
//! products and resharings in every ring, B2A and bit injection, checked
//! openings of ring and bit shares, the tagged shuffle in Z_2^64 and Z_2^128, quicksort,
//! quickselect (bracketed too) and the maximum, and the TLS oracle's MPC verification of
//! a session).

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::Security;
use crate::engine::binary::tests::test_share;
use crate::engine::binary::{pack, unpack};
use crate::engine::circuits::aes::key_from_xor_pairs;
use crate::engine::circuits::blocks::blocks_from_public;
use crate::engine::convert::tests::share_all;
use crate::engine::error::{EngineError, Result};
use crate::engine::local::{local_transports, run3_secure, Cheater, Tamper};
use crate::engine::ring::{Ring, Z128, Z64};
use crate::engine::session::Session;
use crate::engine::transport::{Peer, Transport};

#[derive(Clone, Copy, Debug)]
enum Proto {
    /// Two levels of ANDs on random bits, opened.
    Ands(usize),
    /// AES-128 of two public blocks under an XOR-shared key, opened.
    Aes,
    /// Openings of Z_2^64 and Z_2^128 shares.
    Open(usize),
    /// x < y on `bits` bits and x = y, in Z_2^128, opened (A2B, carry chains, AND trees).
    Compare(usize, u32),
    /// Products, a dot product and a resharing in Z_2^64, Z_2^128 and Z_2^256, opened.
    Products(usize),
    /// B2A, the sum of bits and bit injection, opened.
    Convert(usize),
    /// The tagged shuffle of two Z_2^64 columns and of one Z_2^128 column, opened and the
    /// rows sorted (the permutation itself is random; the rows must survive it intact).
    Shuffle(usize),
    /// Quicksort of distinct Z_2^64 keys with a payload column, opened.
    Sort(usize),
    /// Quickselect of three ranks and the maximum of Z_2^128 keys, opened.
    Select(usize),
    /// The two middle ranks of Z_2^64 keys, the segment bracketed first (`bracket`), opened.
    Bracketed(usize),
    /// The TLS oracle's MPC verification of a synthetic TLS 1.3 session with a response of
    /// about this many bytes: AES-GCM under shared keys, the opened response and the
    /// parsed value, opened.
    Oracle(usize),
}

/// n distinct keys below 2^62: a random high part and the index.
fn distinct_keys(n: usize, rng: &mut ChaCha20Rng) -> Vec<Z64> {
    (0..n as u64)
        .map(|i| Z64(((rng.gen::<u64>() >> 24) << 22) | i))
        .collect()
}

async fn run<T: Transport>(p: Proto, seed: u64, s: &mut Session<T>) -> Result<Vec<u8>> {
    let me = s.id();
    match p {
        Proto::Ands(len) => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let x: Vec<bool> = (0..len).map(|_| rng.gen()).collect();
            let y: Vec<bool> = (0..len).map(|_| rng.gen()).collect();
            let (xs, ys) = (test_share(me, &x, seed), test_share(me, &y, seed + 1));
            let z = s.and(&xs, &ys).await?;
            let w = s.and_many(&[(&z, &xs.xor(&ys)?), (&z, &ys)]).await?;
            let o = s.open_bits(&w[0].xor(&w[1])?).await?;
            Ok(unpack(&o, len).into_iter().map(u8::from).collect())
        }
        Proto::Aes => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let comps: [[u8; 16]; 3] = [0; 3].map(|_| rng.gen());
            let key = key_from_xor_pairs(comps[me], comps[(me + 1) % 3]);
            let blocks = [[1u8; 16], rng.gen()];
            let x = blocks_from_public(me, &blocks);
            let (_, ct) = s.aes128_expand_and_encrypt(&key, &[0, 0], &x).await?;
            Ok(s.open_blocks(&ct).await?.concat())
        }
        Proto::Open(n) => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let a: Vec<Z64> = (0..n).map(|_| Z64(rng.gen())).collect();
            let b: Vec<Z128> = (0..n).map(|_| Z128(rng.gen())).collect();
            let sa = share_all(&a, seed)[me].clone();
            let sb = share_all(&b, seed + 1)[me].clone();
            let bits = test_share(me, &(0..n).map(|_| rng.gen()).collect::<Vec<bool>>(), seed);
            let mut out = Vec::new();
            for v in s.open(&sa).await? {
                out.extend(v.0.to_le_bytes());
            }
            for v in s.open(&sb).await? {
                out.extend(v.0.to_le_bytes());
            }
            out.extend(
                pack(&unpack(&s.open_bits(&bits).await?, n))
                    .iter()
                    .flat_map(|w| w.to_le_bytes()),
            );
            Ok(out)
        }
        Proto::Products(n) => {
            let mut out = Vec::new();
            out.extend(products::<Z64, T>(s, n, seed).await?);
            out.extend(products::<Z128, T>(s, n, seed + 1).await?);
            out.extend(products::<crate::engine::Z256, T>(s, n, seed + 2).await?);
            Ok(out)
        }
        Proto::Convert(n) => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let b: Vec<bool> = (0..n).map(|_| rng.gen()).collect();
            let v: Vec<Z64> = (0..n).map(|_| Z64(rng.gen())).collect();
            let (bs, vs) = (test_share(me, &b, seed), share_all(&v, seed)[me].clone());
            let mut a: Vec<crate::engine::Share<Z64>> = s.b2a(&bs).await?;
            a.push(s.b2a_sum(&bs).await?);
            a.extend(s.bit_inject(&bs, &vs).await?);
            Ok(Z64::encode_slice(&s.open(&a).await?))
        }
        Proto::Shuffle(n) => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let x: Vec<Z64> = (0..n).map(|_| Z64(rng.gen())).collect();
            let y: Vec<Z64> = (0..n).map(|_| Z64(rng.gen())).collect();
            let z: Vec<Z128> = (0..n).map(|_| Z128(rng.gen())).collect();
            let cols = [
                share_all(&x, seed)[me].clone(),
                share_all(&y, seed + 1)[me].clone(),
            ];
            let sh = s.shuffle(&cols).await?;
            let sz = s.shuffle(&[share_all(&z, seed + 2)[me].clone()]).await?;
            let (ox, oy) = (s.open(&sh[0]).await?, s.open(&sh[1]).await?);
            let mut rows: Vec<(u64, u64)> = ox.iter().zip(&oy).map(|(a, b)| (a.0, b.0)).collect();
            rows.sort_unstable();
            let mut oz: Vec<u128> = s.open(&sz[0]).await?.iter().map(|v| v.0).collect();
            oz.sort_unstable();
            let mut out: Vec<u8> = rows
                .iter()
                .flat_map(|(a, b)| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
                .collect();
            out.extend(oz.iter().flat_map(|v| v.to_le_bytes()));
            Ok(out)
        }
        Proto::Sort(n) => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let k = distinct_keys(n, &mut rng);
            let p: Vec<Z64> = (0..n).map(|_| Z64(rng.gen())).collect();
            let (sk, sp) = (
                share_all(&k, seed)[me].clone(),
                share_all(&p, seed + 1)[me].clone(),
            );
            let (keys, pay) = s.sort_by_key(&sk, &[sp], 63).await?;
            let mut out = Z64::encode_slice(&s.open(&keys).await?);
            out.extend(Z64::encode_slice(&s.open(&pay[0]).await?));
            Ok(out)
        }
        Proto::Select(n) => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let k: Vec<Z128> = (0..n as u128)
                .map(|i| Z128(((rng.gen::<u128>() >> 70) << 10) | i))
                .collect();
            let sk = share_all(&k, seed)[me].clone();
            let picked = s.select_ranks(&sk, &[], &[0, n / 2, n - 1], 64).await?;
            let mut v: Vec<crate::engine::Share<Z128>> = picked.into_iter().map(|p| p.0).collect();
            v.push(s.max_min(&sk, 64, true).await?);
            // Keys are guaranteed on the 64 bits they are compared on.
            let low: Vec<Z128> = s
                .open(&v)
                .await?
                .iter()
                .map(|k| Z128(k.0 as u64 as u128))
                .collect();
            Ok(Z128::encode_slice(&low))
        }
        Proto::Bracketed(n) => {
            use crate::engine::sort::{PivotRule, SELECT_RULE};
            let k = distinct_keys(n, &mut ChaCha20Rng::seed_from_u64(seed));
            let sk = share_all(&k, seed)[me].clone();
            let rule = PivotRule {
                bracket: crate::engine::bracket::MIN_BRACKET,
                ..SELECT_RULE
            };
            let (picked, _) = s
                .select_with_rule(&sk, &[], &[n / 2 - 1, n / 2], 63, rule)
                .await?;
            let v: Vec<crate::engine::Share<Z64>> = picked.into_iter().map(|p| p.0).collect();
            Ok(Z64::encode_slice(&s.open(&v).await?))
        }
        Proto::Oracle(len) => {
            use crate::oracle::handshake::TlsVersion;
            use crate::oracle::mpc::local::{key_pairs, synthetic_with, xor_shares};
            let syn = synthetic_with(len, seed, TlsVersion::Tls13);
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 1);
            let pairs = key_pairs(
                &xor_shares(syn.client_keys.key, &mut rng),
                &xor_shares(syn.server_keys.key, &mut rng),
            );
            let v = crate::oracle::mpc::verify_session(s, &syn.inputs.public(), &pairs[me])
                .await
                .map_err(|e| match e {
                    crate::oracle::mpc::VerifyError::Engine(e) => e,
                    other => EngineError::Invalid(format!("oracle refused: {other}")),
                })?;
            let mut out = v.response.clone();
            out.extend(Z128::encode_slice(&s.open(&[v.value]).await?));
            Ok(out)
        }
        Proto::Compare(n, bits) => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let top = (1u128 << (bits - 1)) - 1;
            let x: Vec<Z128> = (0..n).map(|_| Z128(rng.gen::<u128>() & top)).collect();
            // Half equal to x, the rest random.
            let y: Vec<Z128> = x
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if i % 2 == 0 {
                        *v
                    } else {
                        Z128(rng.gen::<u128>() & top)
                    }
                })
                .collect();
            let sx = share_all(&x, seed)[me].clone();
            let sy = share_all(&y, seed + 1)[me].clone();
            let lt = s.lt(&sx, &sy, bits).await?;
            let eq = s.eq(&sx, &sy, bits).await?;
            let both = crate::engine::BitShares::concat(&[&lt, &eq]);
            let o = s.open_bits(&both).await?;
            Ok(unpack(&o, 2 * n).into_iter().map(u8::from).collect())
        }
    }
}

async fn products<R: crate::engine::Ring, T: Transport>(
    s: &mut Session<T>,
    n: usize,
    seed: u64,
) -> Result<Vec<u8>> {
    let me = s.id();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let x: Vec<R> = (0..n).map(|_| R::random(&mut rng)).collect();
    let y: Vec<R> = (0..n).map(|_| R::random(&mut rng)).collect();
    let (sx, sy) = (
        share_all(&x, seed)[me].clone(),
        share_all(&y, seed + 7)[me].clone(),
    );
    let mut p = s.mul(&sx, &sy).await?;
    p.extend(s.dots(&[(&sx[..], &sy[..])]).await?);
    let r = s.reshare(&p).await?;
    Ok(R::encode_slice(&s.open(&r).await?))
}

type Outcome = [Result<(Vec<u8>, u64)>; 3];

async fn run_all<T: Transport + 'static>(
    p: Proto,
    seed: u64,
    security: Security,
    ts: [T; 3],
) -> Outcome {
    let go = run3_secure(seed, security, ts, move |mut s| async move {
        let v = run(p, seed, &mut s).await?;
        Ok((v, s.counters().rounds))
    });
    tokio::time::timeout(Duration::from_secs(30), go)
        .await
        .expect("a deviation must never make the session hang")
}

/// One case: the protocol, its seed, who cheats, where and how.
#[derive(Clone, Copy, Debug)]
struct Case {
    p: Proto,
    seed: u64,
    cheater: usize,
    at: usize,
    to: Peer,
    how: Tamper,
}

/// A random deviation in one of `rounds` (protocol k of [`PROTOS`] has `rounds[k]`).
fn random_case(rng: &mut ChaCha20Rng, rounds: &[u64]) -> (Case, usize) {
    let k = rng.gen_range(0..PROTOS.len());
    let how = match rng.gen_range(0..7) {
        0 => Tamper::Flip(rng.gen()),
        1 => Tamper::Add(rng.gen(), rng.gen_range(1..=255)),
        2 => Tamper::Replay,
        3 => Tamper::Swap,
        4 => Tamper::CopyToOther,
        5 => Tamper::Truncate,
        _ => Tamper::Extend,
    };
    let case = Case {
        p: PROTOS[k],
        seed: 1000 + k as u64,
        cheater: rng.gen_range(0..3),
        at: rng.gen_range(0..rounds[k] as usize),
        to: if rng.gen() { Peer::Next } else { Peer::Prev },
        how,
    };
    (case, k)
}

async fn run_case(c: Case, security: Security) -> (Outcome, bool) {
    let ts = local_transports().map(|t| {
        let at = if t.id() == c.cheater {
            c.at
        } else {
            usize::MAX
        };
        Cheater::new(t, at, c.to, c.how)
    });
    let fired = ts[c.cheater].fired.clone();
    let out = run_all(c.p, c.seed, security, ts).await;
    (out, fired.load(Ordering::SeqCst))
}

/// An abort an honest party may report: a failed check, a malformed message, or a link
/// that its peer closed after aborting.
/// The oracle's key check is an abort too: a neighbour that sends a false verdict (or
/// a wrong hash) cannot be told from a provider whose shares do not fit, and either way
/// the provider is refused before any MPC runs, which is a refusal, not a wrong verdict.
fn is_abort(e: &EngineError) -> bool {
    let key_check = crate::oracle::mpc::VerifyError::KeySharesInconsistent.to_string();
    match e {
        EngineError::Verification { .. }
        | EngineError::Malformed { .. }
        | EngineError::Transport { .. } => true,
        EngineError::Invalid(m) => m.strip_prefix("oracle refused: ") == Some(&key_check),
    }
}

const PROTOS: [Proto; 19] = [
    Proto::Oracle(200),
    Proto::Shuffle(1),
    Proto::Shuffle(25),
    Proto::Sort(2),
    Proto::Sort(40),
    Proto::Select(33),
    Proto::Bracketed(600),
    Proto::Convert(1),
    Proto::Convert(70),
    Proto::Products(1),
    Proto::Products(30),
    Proto::Ands(1),
    Proto::Ands(200),
    Proto::Aes,
    Proto::Open(1),
    Proto::Open(40),
    Proto::Compare(1, 64),
    Proto::Compare(70, 64),
    Proto::Compare(20, 128),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cheating_party_never_causes_a_wrong_answer() {
    // The honest answers and round counts.
    let mut honest = Vec::new();
    for (k, p) in PROTOS.into_iter().enumerate() {
        let out = run_all(p, 1000 + k as u64, Security::Malicious, local_transports()).await;
        let [a, b, c] = out.map(|r| r.expect("honest run"));
        assert!(a == b && b == c);
        honest.push(a);
    }
    let rounds: Vec<u64> = honest.iter().map(|h| h.1).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed);
    let (mut fired, mut aborted, mut wrong_semi) = (0, 0, 0);
    const CASES: usize = 2000;
    for _ in 0..CASES {
        let (case, k) = random_case(&mut rng, &rounds);
        let want = &honest[k].0;
        let (out, did) = run_case(case, Security::Malicious).await;
        fired += did as usize;
        let mut any_abort = false;
        for (id, r) in out.iter().enumerate() {
            if id == case.cheater {
                continue;
            }
            match r {
                Ok((v, _)) => assert_eq!(v, want, "wrong answer at party {id} in {case:?}"),
                Err(e) => {
                    assert!(is_abort(e), "{case:?}: {e}");
                    any_abort = true;
                }
            }
        }
        aborted += any_abort as usize;
        // Control: the same deviation without verification.
        if did && matches!(case.how, Tamper::Flip(_) | Tamper::Add(..)) {
            let (out, _) = run_case(case, Security::SemiHonest).await;
            let wrong = out
                .iter()
                .enumerate()
                .any(|(id, r)| id != case.cheater && matches!(r, Ok((v, _)) if v != want));
            wrong_semi += wrong as usize;
        }
    }
    eprintln!("{CASES} cases: {fired} deviations fired, {aborted} aborted, {wrong_semi} wrong answers in semi-honest mode");
    assert!(fired > CASES * 2 / 5, "many cases must deviate");
    assert!(aborted > CASES / 3, "deviations must be caught");
    assert!(
        wrong_semi > 50,
        "the control must show deviations that change answers"
    );
}
