//! Tests of the verification layer: honest runs pass and prove every gate; each check
//! fails for a party that deviates at it.

use super::*;
use crate::engine::binary::tests::{rand_bits, test_share};
use crate::engine::binary::unpack;
use crate::engine::error::EngineError;
use crate::engine::local::{local_transports, run3_secure};
use crate::engine::ring::Z64;

fn ok<O>(r: [Result<O>; 3]) -> [O; 3] {
    r.map(|x| x.unwrap())
}

#[tokio::test]
async fn honest_ands_are_proven_and_open_correctly() {
    for len in [1usize, 63, 64, 65, 1000, 64 * 40 + 7] {
        let x = rand_bits(1, len);
        let y = rand_bits(2, len);
        let out = run3_secure(5, Security::Malicious, local_transports(), move |mut s| {
            let (x, y) = (x.clone(), y.clone());
            async move {
                let me = s.id();
                let (xs, ys) = (test_share(me, &x, 3), test_share(me, &y, 4));
                let z = s.and(&xs, &ys).await?;
                let w = s.and(&z, &xs).await?;
                assert_eq!(s.pending_and_words(), 2 * len.div_ceil(64));
                let opened = s.open_bits(&w).await?;
                assert_eq!(s.pending_and_words(), 0);
                Ok((opened, s.proven(), s.counters()))
            }
        })
        .await;
        let out = ok(out);
        let (x, y) = (rand_bits(1, len), rand_bits(2, len));
        let want: Vec<bool> = x.iter().zip(&y).map(|(a, b)| a & b & a).collect();
        for (opened, proven, _) in &out {
            assert_eq!(unpack(opened, len), want, "len {len}");
            assert_eq!(proven.and_words, 2 * len.div_ceil(64) as u64);
            assert_eq!(proven.proofs, 1);
            assert!(
                proven.proof_time > std::time::Duration::ZERO,
                "the proof is timed"
            );
        }
    }
}

/// One round of ANDs longer than a proof may be is proven in chunks: an honest run takes
/// two proofs and opens correctly; a bit flipped in the second chunk's words fails the
/// second proof.
#[tokio::test]
async fn a_round_longer_than_a_proof_is_proven_in_chunks() {
    use crate::engine::local::{Cheater, Tamper};
    use crate::engine::Peer;
    let words = MAX_PENDING_WORDS + 3;
    let len = 64 * words;
    let go = |ts| {
        run3_secure(5, Security::Malicious, ts, move |mut s| async move {
            let me = s.id();
            let (x, y) = (
                test_share(me, &rand_bits(1, len), 3),
                test_share(me, &rand_bits(2, len), 4),
            );
            let z = s.and(&x, &y).await?;
            assert_eq!(s.pending_and_words(), words);
            let opened = s.open_bits(&z).await?;
            Ok((opened, s.proven()))
        })
    };
    let honest = ok(go(
        local_transports().map(|t| Cheater::new(t, usize::MAX, Peer::Prev, Tamper::Flip(0)))
    )
    .await);
    let (x, y) = (rand_bits(1, len), rand_bits(2, len));
    let want: Vec<bool> = x.iter().zip(&y).map(|(a, b)| a & b).collect();
    for (opened, proven) in &honest {
        assert_eq!(unpack(opened, len), want);
        assert_eq!(proven.and_words, words as u64);
        assert_eq!(proven.proofs, 2, "two chunks");
    }
    // Party 1's AND message (round 1, to its previous party), one gate past the first chunk.
    let ts = local_transports().map(|t| {
        let at = if t.id() == 1 { 1 } else { usize::MAX };
        Cheater::new(t, at, Peer::Prev, Tamper::Flip(64 * MAX_PENDING_WORDS + 5))
    });
    let out = go(ts).await;
    for (id, r) in out.iter().enumerate() {
        if id == 1 {
            continue;
        }
        match r {
            Err(EngineError::Verification { check, .. }) => {
                assert!(check.starts_with("AND-gate proof"), "party {id}: {check}")
            }
            other => panic!("party {id} must abort on the second proof: {other:?}"),
        }
    }
}

#[tokio::test]
async fn semi_honest_sessions_record_nothing() {
    let x = rand_bits(1, 100);
    let x2 = x.clone();
    let out = run3_secure(5, Security::SemiHonest, local_transports(), move |mut s| {
        let x = x2.clone();
        async move {
            let xs = test_share(s.id(), &x, 3);
            let z = s.and(&xs, &xs).await?;
            assert_eq!(s.pending_and_words(), 0);
            s.verify().await?;
            Ok((s.open_bits(&z).await?, s.proven()))
        }
    })
    .await;
    for (o, p) in ok(out) {
        assert_eq!(unpack(&o, 100), x);
        assert_eq!(p, Proven::default());
    }
}

#[tokio::test]
async fn checked_ring_opening_and_explicit_verify() {
    let vals: Vec<Z64> = (0..50).map(|i| Z64(i * 0x9e37_79b9_7f4a_7c15)).collect();
    let shares = crate::engine::convert::tests::share_all(&vals, 9);
    let out = run3_secure(6, Security::Malicious, local_transports(), move |mut s| {
        let shares = shares.clone();
        async move {
            let me = s.id();
            let b = test_share(me, &[true, false, true], 1);
            let _ = s.and(&b, &b).await?;
            s.verify().await?;
            assert_eq!(s.pending_and_words(), 0);
            s.verify().await?; // nothing pending: no rounds
            let before = s.counters().rounds;
            s.verify().await?;
            assert_eq!(s.counters().rounds, before);
            s.open(&shares[me]).await
        }
    })
    .await;
    for o in ok(out) {
        assert_eq!(o, vals);
    }
}

/// Runs and + open with party 1 flipping one bit of what it sends to `to` in round `at`
/// (counted from the end when `from_end`).
async fn flip_at(
    at_from_end: Option<usize>,
    at: usize,
    to: crate::engine::Peer,
) -> [Result<Vec<u64>>; 3] {
    use crate::engine::local::{Cheater, Tamper};
    let go = |ts| {
        run3_secure(5, Security::Malicious, ts, move |mut s| async move {
            let me = s.id();
            let x = test_share(me, &rand_bits(1, 100), 3);
            let z = s.and(&x, &x.not(me)).await?;
            let o = s.open_bits(&z.not(me)).await?;
            Ok((o, s.counters().rounds))
        })
    };
    let honest =
        go(local_transports().map(|t| Cheater::new(t, usize::MAX, to, Tamper::Flip(0)))).await;
    let total = honest[0].as_ref().unwrap().1 as usize;
    let at = at_from_end.map_or(at, |k| total - k);
    let ts = local_transports().map(|t| {
        let round = if t.id() == 1 { at } else { usize::MAX };
        Cheater::new(t, round, to, Tamper::Flip(3))
    });
    go(ts).await.map(|r| r.map(|(o, _)| o))
}

fn check_name(r: &Result<Vec<u64>>) -> Option<(&'static str, usize, [usize; 2])> {
    match r {
        Err(EngineError::Verification {
            check,
            by,
            suspects,
        }) => Some((check, *by, *suspects)),
        _ => None,
    }
}

#[tokio::test]
async fn a_wrong_and_message_fails_the_proof_at_both_verifiers() {
    // Round 1 is the AND round; party 1 sends its t to party 0, its left verifier.
    let out = flip_at(None, 1, crate::engine::Peer::Prev).await;
    let (check, by, suspects) = check_name(&out[0]).expect("party 0 aborts on a check");
    assert!(check.starts_with("AND-gate proof"), "{check}");
    assert_eq!((by, suspects), (0, [1, 2]));
    // Party 2 either sees the same failure as V_R or loses its link to an aborted peer.
    assert!(out[2].is_err());
}

#[tokio::test]
async fn a_wrong_opened_copy_fails_the_opening_check() {
    // The last round is the opening; party 1 sends party 2 a wrong copy of component 1.
    let out = flip_at(Some(1), 0, crate::engine::Peer::Next).await;
    let (check, by, suspects) = check_name(&out[2]).expect("party 2 aborts on a check");
    assert_eq!(check, "opening: the two copies of a component differ");
    assert_eq!((by, suspects), (2, [0, 1]));
    // Party 0 was not affected and opens the right bits.
    let want: Vec<bool> = vec![true; 100];
    assert_eq!(unpack(out[0].as_ref().unwrap(), 100), want);
}

#[tokio::test]
async fn a_wrong_digest_also_fails_the_opening_check() {
    // Party 1's digest goes to party 0 (its previous party) in the opening round.
    let out = flip_at(Some(1), 0, crate::engine::Peer::Prev).await;
    let (check, by, _) = check_name(&out[0]).expect("party 0 aborts on a check");
    assert_eq!(
        (check, by),
        ("opening: the two copies of a component differ", 0)
    );
}

#[tokio::test]
async fn comparisons_in_malicious_mode_are_exact_at_the_edges() {
    use crate::engine::ring::Z128;
    for bits in [2u32, 3, 4, 5, 6, 64, 65, 127, 128] {
        let max = if bits == 128 {
            u128::MAX >> 1
        } else {
            (1u128 << (bits - 1)) - 1
        };
        let xs: Vec<u128> = vec![0, 0, 1, max, max, max - 1, 0, max];
        let ys: Vec<u128> = vec![0, 1, 0, max, max - 1, max, max, 0];
        let (x, y): (Vec<Z128>, Vec<Z128>) = (
            xs.iter().map(|v| Z128(*v)).collect(),
            ys.iter().map(|v| Z128(*v)).collect(),
        );
        let (sx, sy) = (
            crate::engine::convert::tests::share_all(&x, 1),
            crate::engine::convert::tests::share_all(&y, 2),
        );
        let out = run3_secure(3, Security::Malicious, local_transports(), move |mut s| {
            let (sx, sy) = (sx.clone(), sy.clone());
            async move {
                let me = s.id();
                let lt = s.lt(&sx[me], &sy[me], bits).await?;
                let eq = s.eq(&sx[me], &sy[me], bits).await?;
                let a = s.a2b(&sx[me], bits).await?;
                let lt = unpack(&s.open_bits(&lt).await?, lt.len);
                let eq = unpack(&s.open_bits(&eq).await?, eq.len);
                let mut planes = Vec::new();
                for p in &a.planes {
                    planes.push(s.open_bits(p).await?);
                }
                Ok((lt, eq, crate::engine::planes_to_values(&planes, a.len)))
            }
        })
        .await;
        for (lt, eq, vals) in ok(out) {
            let want_lt: Vec<bool> = xs.iter().zip(&ys).map(|(a, b)| a < b).collect();
            let want_eq: Vec<bool> = xs.iter().zip(&ys).map(|(a, b)| a == b).collect();
            assert_eq!(lt, want_lt, "{bits} bits");
            assert_eq!(eq, want_eq, "{bits} bits");
            assert_eq!(vals, xs, "{bits} bits");
        }
    }
}

#[tokio::test]
async fn unproven_steps_are_refused_in_malicious_mode_by_name() {
    let out = run3_secure(
        3,
        Security::Malicious,
        local_transports(),
        |mut s| async move {
            let v = [Z64(1); 4];
            let me = s.id();
            let mul = s
                .input(0, (me == 0).then_some(&v[..]), 4)
                .await
                .err()
                .map(|e| e.to_string());
            let wide: Vec<crate::engine::Share<crate::engine::Z256>> =
                s.correlated().random_shares(3);
            let shuffle = s
                .shuffle(std::slice::from_ref(&wide))
                .await
                .err()
                .map(|e| e.to_string());
            Ok((mul, shuffle, s.counters().rounds))
        },
    )
    .await;
    for (mul, shuffle, rounds) in ok(out) {
        assert!(mul.unwrap().contains("input by one party is not proven"));
        assert!(shuffle
            .unwrap()
            .contains("the shuffle of this ring is not proven"));
        assert_eq!(rounds, 1, "refused before any message");
    }
}

/// Products, dot products and resharings in all three rings: exact, and proven.
#[tokio::test]
async fn ring_products_are_proven_in_every_ring() {
    use crate::engine::ring::{Ring, Z128};
    use crate::engine::wide::Z256;
    async fn case<R: Ring>(seed: u64) {
        let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(seed);
        let x: Vec<R> = (0..37).map(|_| R::random(&mut rng)).collect();
        let y: Vec<R> = (0..37).map(|_| R::random(&mut rng)).collect();
        let (sx, sy) = (
            crate::engine::convert::tests::share_all(&x, seed),
            crate::engine::convert::tests::share_all(&y, seed + 1),
        );
        let out = run3_secure(
            seed,
            Security::Malicious,
            local_transports(),
            move |mut s| {
                let (sx, sy) = (sx.clone(), sy.clone());
                async move {
                    let me = s.id();
                    let p = s.mul(&sx[me], &sy[me]).await?;
                    let d = s
                        .dots(&[(&sx[me][..], &sy[me][..]), (&p[..5], &sx[me][..5])])
                        .await?;
                    let r = s.reshare(&p).await?;
                    assert_eq!(s.pending_products(), 37 + 2 + 37);
                    let mut all = r.clone();
                    all.extend(d);
                    let opened = s.open(&all).await?;
                    Ok((opened, s.proven()))
                }
            },
        )
        .await;
        for (opened, proven) in ok(out) {
            let p: Vec<R> = x.iter().zip(&y).map(|(a, b)| *a * *b).collect();
            let d0 = x
                .iter()
                .zip(&y)
                .fold(R::zero(), |acc, (a, b)| acc + *a * *b);
            let d1 = p[..5]
                .iter()
                .zip(&x[..5])
                .fold(R::zero(), |acc, (a, b)| acc + *a * *b);
            let mut want = p.clone();
            want.extend([d0, d1]);
            assert_eq!(opened, want);
            assert_eq!(proven.product_gates, 76);
        }
    }
    case::<Z64>(11).await;
    case::<Z128>(12).await;
    case::<Z256>(13).await;
}

#[tokio::test]
async fn a_wrong_product_message_fails_the_ring_proof() {
    use crate::engine::local::{Cheater, Tamper};
    let ts = local_transports().map(|t| {
        // Round 1 is the product round; party 2 adds δ to a byte of its t.
        let at = if t.id() == 2 { 1 } else { usize::MAX };
        Cheater::new(t, at, crate::engine::Peer::Prev, Tamper::Add(3, 1))
    });
    let out = run3_secure(4, Security::Malicious, ts, |mut s| async move {
        let x: Vec<crate::engine::Share<Z64>> = s.correlated().random_shares(10);
        let p = s.mul(&x, &x).await?;
        s.open(&p).await
    })
    .await;
    match &out[1] {
        Err(EngineError::Verification {
            check,
            by,
            suspects,
        }) => {
            assert_eq!(*check, "ring-product proof: sum of a level");
            assert_eq!((*by, *suspects), (1, [0, 2]));
        }
        other => panic!("party 1 must abort on the ring proof, got {other:?}"),
    }
}

/// B2A, its sum and bit injection in malicious mode, built on products only.
#[tokio::test]
async fn conversions_in_malicious_mode_are_exact_and_proven() {
    use crate::engine::ring::Z128;
    let bits = rand_bits(8, 150);
    let vals: Vec<Z128> = (0..150u128)
        .map(|v| Z128(v.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c)))
        .collect();
    let shares = crate::engine::convert::tests::share_all(&vals, 4);
    let b2 = bits.clone();
    let out = run3_secure(9, Security::Malicious, local_transports(), move |mut s| {
        let (bits, shares) = (b2.clone(), shares.clone());
        async move {
            let me = s.id();
            let b = test_share(me, &bits, 5);
            let a: Vec<crate::engine::Share<Z64>> = s.b2a(&b).await?;
            let total: crate::engine::Share<Z64> = s.b2a_sum(&b).await?;
            let inj = s.bit_inject(&b, &shares[me]).await?;
            let mut opened: Vec<u128> = s.open(&a).await?.iter().map(|v| v.0 as u128).collect();
            opened.push(s.open(&[total]).await?[0].0 as u128);
            opened.extend(s.open(&inj).await?.iter().map(|v| v.0));
            Ok((opened, s.proven().product_gates))
        }
    })
    .await;
    for (opened, gates) in ok(out) {
        let mut want: Vec<u128> = bits.iter().map(|b| *b as u128).collect();
        want.push(bits.iter().filter(|b| **b).count() as u128);
        want.extend(
            bits.iter()
                .zip(&vals)
                .map(|(b, v)| if *b { v.0 } else { 0 }),
        );
        assert_eq!(opened, want);
        assert!(gates > 0);
    }
}

/// Per-group bit counts in rounds that do not grow with the number of groups: two in
/// semi-honest mode; in malicious mode one per AND level of the population count (widths
/// 1, 2, …, L for L halvings of the group) and the two of the totals' B2A.
#[tokio::test]
async fn grouped_bit_counts_take_rounds_independent_of_the_number_of_groups() {
    let bits = rand_bits(21, 1000);
    for security in [Security::SemiHonest, Security::Malicious] {
        for group in [1usize, 7, 100, 999, 1000, 5000] {
            let b2 = bits.clone();
            let out = run3_secure(2, security, local_transports(), move |mut s| {
                let bits = b2.clone();
                async move {
                    let b = test_share(s.id(), &bits, 6);
                    let before = s.counters().rounds;
                    let sums: Vec<crate::engine::Share<Z64>> = s.b2a_sums(&b, group).await?;
                    let rounds = s.counters().rounds - before;
                    Ok((s.open(&sums).await?, rounds))
                }
            })
            .await;
            for (sums, rounds) in ok(out) {
                let want: Vec<Z64> = bits
                    .chunks(group)
                    .map(|c| Z64(c.iter().filter(|b| **b).count() as u64))
                    .collect();
                assert_eq!(sums, want, "{security:?}, groups of {group}");
                let expected = match security {
                    Security::SemiHonest => 2,
                    Security::Malicious => {
                        let (mut cnt, mut levels) = (group.min(bits.len()), 0u64);
                        while cnt > 1 {
                            cnt = cnt.div_ceil(2);
                            levels += 1;
                        }
                        levels * (levels + 1) / 2 + 2
                    }
                };
                assert_eq!(rounds, expected, "{security:?}, groups of {group}");
            }
        }
    }
}

/// A record larger than one proof takes is proven in several: honest products past the
/// first chunk open correctly, and a δ of 2^63 (the error hardest to catch in Z_2^64) on
/// a product in the second chunk fails its proof.
#[tokio::test]
async fn ring_records_beyond_one_proof_are_proven_in_chunks() {
    use crate::engine::local::{Cheater, Tamper};
    use ring_proof::MAX_PROOF_PAIRS;
    let n = MAX_PROOF_PAIRS + 3;
    let run = |cheat: bool| {
        let ts = local_transports().map(|t| {
            // Round 1 is the product round; byte 7 of element n − 2 is its top byte.
            let at = if cheat && t.id() == 2 { 1 } else { usize::MAX };
            Cheater::new(
                t,
                at,
                crate::engine::Peer::Prev,
                Tamper::Add(8 * (n - 2) + 7, 0x80),
            )
        });
        run3_secure(6, Security::Malicious, ts, move |mut s| async move {
            let x: Vec<crate::engine::Share<Z64>> = s.correlated().random_shares(n);
            let y: Vec<crate::engine::Share<Z64>> = s.correlated().random_shares(n);
            let p = s.mul(&x, &y).await?;
            let (xo, yo) = (s.open(&x).await?, s.open(&y).await?);
            let po = s.open(&p).await?;
            Ok((xo, yo, po, s.proven().product_gates))
        })
    };
    for (xo, yo, po, gates) in ok(run(false).await) {
        assert_eq!(gates, n as u64);
        for ((x, y), p) in xo.iter().zip(&yo).zip(&po) {
            assert_eq!(*x * *y, *p);
        }
    }
    let out = run(true).await;
    match &out[1] {
        Err(EngineError::Verification { check, .. }) => {
            assert!(check.starts_with("ring-product proof"), "{check}");
        }
        other => panic!(
            "party 1 must abort on the ring proof, got {:?}",
            other.as_ref().err()
        ),
    }
}
