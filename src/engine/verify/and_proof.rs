//! The distributed zero-knowledge proof that every recorded AND gate was computed honestly
//! (after Boyle–Gilboa–Ishai–Nof, CCS 2019, with the halving recursion of their fully
//! linear proofs), run by all three parties at once: each proves its own messages to its
//! two neighbours. This module holds the proof only; recording and the mode are in `mod`.
//!
//! **Statement.** Prover P = party i sent t = x_i y_i ⊕ x_i y_{i+1} ⊕ x_{i+1} y_i ⊕ F(k_i)
//! ⊕ F(k_{i+1}) for every gate. Its left verifier V_L = party i − 1 knows x_i, y_i, t and
//! F(k_i); its right verifier V_R = party i + 1 knows x_{i+1}, y_{i+1} and F(k_{i+1}). The
//! relation of a gate is thus x_i y_{i+1} ⊕ y_i x_{i+1} = [t ⊕ F(k_i) ⊕ x_i y_i] ⊕
//! [F(k_{i+1})]: an inner product of a vector V_L knows with one V_R knows, equal to the sum
//! of a value V_L knows and one V_R knows. Statements come from the verifiers' records, so
//! what counts is what P *sent*.
//!
//! **Randomising.** Bit s of word w is weighted by θ_w X^s in GF(2^64), θ_w uniform and
//! drawn from a seed the verifiers share and P does not hold, revealed to P only after
//! every gate message was delivered. A word's errors E_w (bits) then contribute θ_w · E_w
//! read as a field element, which is non-zero exactly when E_w is, so a batch with any
//! wrong gate sums to zero with probability 2^-64.
//!
//! **Recursion.** For vectors u (P, V_L) and v (P, V_R) with <u, v> = τ_L + τ_R, P pairs
//! entries, forms p(X) = Σ_k (u_{2k} + (u_{2k+1} − u_{2k}) X)(v_{2k} + (v_{2k+1} − v_{2k}) X)
//! (p(0) + p(1) = <u, v>), and shares its three coefficients: V_L's part comes from the
//! stream P and V_L share (no bytes), V_R's part is sent. The verifiers keep d = p(0) + p(1)
//! − τ in shares, draw r from their common stream and send it to P; everyone folds to
//! u' = u_even + (u_odd − u_even) r (V_L), v' likewise (V_R), τ' = p(r) in shares. A cheating
//! p* ≠ p agrees with p at r with probability at most 2 / 2^64 (a non-zero polynomial of
//! degree 2 has at most two roots). The first level pairs a gate's two terms and works on
//! whole words (three field products per 64 gates).
//!
//! **End and zero knowledge.** At length one P masks u*, v* with a random point (ρ_u from
//! the P–V_L stream, ρ_v from the P–V_R stream) and proves p(1) = τ for p = u(X) v(X) of
//! the masked lines. The verifiers open u(r), v(r) (uniform: the mask's coefficient 1 − r
//! is non-zero as r ∉ {0, 1}), their parts of p(r) and every d, and check d_L = d_R at each
//! level and u(r) v(r) = p(r). V_R's view of the proof is masked by the P–V_L stream and
//! V_L receives nothing from P, so neither learns more than the verdict.
//!
//! **Soundness error** per proof: (1 + 2 (L + 1)) / 2^64 for L levels (L ≤ 24 at the
//! largest batch), below 2^-58. **Cost**: 2L + 3 rounds, 24 + 16 L bytes sent per party
//! and about 5 field products per gate of local work for the prover.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::and_levels::{
    group_coeffs, level1, pad_even, taus, vec_coeffs, vec_fold, Coeffs, USide, VSide, MAX_TERMS,
};
use super::gf64::Gf64;
use crate::engine::error::{EngineError, Result};
use crate::engine::session::{take, Session};
use crate::engine::transport::{Expect, Outgoing, Peer, Transport};

fn eval(c: &Coeffs, r: Gf64) -> Gf64 {
    c[0] + c[1] * r + c[2] * r * r
}

fn sum01(c: &Coeffs) -> Gf64 {
    // p(0) + p(1) = c0 + (c0 + c1 + c2) = c1 + c2 in characteristic 2.
    c[1] + c[2]
}

fn draw3(rng: &mut ChaCha20Rng) -> Coeffs {
    [0; 3].map(|_| Gf64::random(rng))
}

fn sub3(a: &Coeffs, b: &Coeffs) -> Coeffs {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// A challenge outside {0, 1}, so that masked lines stay masked at it.
fn challenge(rng: &mut ChaCha20Rng) -> Gf64 {
    loop {
        let r = Gf64::random(rng);
        if r.0 > 1 {
            return r;
        }
    }
}

/// The word weights θ_w from a revealed seed.
fn thetas(seed: [u8; 32], n: usize) -> Vec<Gf64> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    (0..n).map(|_| Gf64::random(&mut rng)).collect()
}

/// What a verifier reveals at the end: its folded entry at r, its part of p(r) and its
/// parts d of every level's check.
struct Reveal {
    entry: Gf64,
    p_at_r: Gf64,
    ds: Vec<Gf64>,
}

impl Reveal {
    fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.entry, self.p_at_r];
        v.extend(&self.ds);
        Gf64::encode_slice(&v)
    }

    fn decode(bytes: &[u8], levels: usize, peer: Peer) -> Result<Reveal> {
        let v = Gf64::decode_vec(bytes, levels + 2).ok_or_else(|| EngineError::Malformed {
            peer: peer.name(),
            expected: format!("{} field elements of 8 bytes", levels + 2),
            found: format!("{} bytes", bytes.len()),
        })?;
        Ok(Reveal {
            entry: v[0],
            p_at_r: v[1],
            ds: v[2..].to_vec(),
        })
    }
}

fn decode_coeffs(msg: Option<Vec<u8>>, peer: Peer) -> Result<Coeffs> {
    let bytes = take(msg, peer)?;
    let v = Gf64::decode_vec(&bytes, 3).ok_or_else(|| EngineError::Malformed {
        peer: peer.name(),
        expected: "3 field elements of 8 bytes".into(),
        found: format!("{} bytes", bytes.len()),
    })?;
    Ok([v[0], v[1], v[2]])
}

fn decode_challenge(msg: Option<Vec<u8>>, peer: Peer) -> Result<Gf64> {
    let bytes = take(msg, peer)?;
    Gf64::decode_vec(&bytes, 1)
        .map(|v| v[0])
        .ok_or_else(|| EngineError::Malformed {
            peer: peer.name(),
            expected: "one field element of 8 bytes".into(),
            found: format!("{} bytes", bytes.len()),
        })
}

const BOTH: Expect = Expect {
    next: true,
    prev: true,
};

impl<T: Transport> Session<T> {
    /// Proves and verifies every pending AND gate, then forgets them. No-op when nothing is
    /// pending (all parties have the same record, so all skip together).
    pub(crate) async fn prove_ands(&mut self) -> Result<()> {
        let words = std::mem::take(&mut self.verifier_mut().pending);
        if words.is_empty() {
            return Ok(());
        }
        let me = self.id();
        // Round 0: as V_R of the previous party's proof, reveal its weight seed to it.
        let (seed_prev, seed_next) = {
            let v = self.verifier_mut();
            let mut s_next = [0u8; 32];
            let mut s_prev = [0u8; 32];
            v.chal_own.fill_bytes(&mut s_next); // next's proof: I am its V_L
            v.chal_next.fill_bytes(&mut s_prev); // prev's proof: I am its V_R
            (s_prev, s_next)
        };
        let inc = self
            .exchange(
                Outgoing {
                    next: None,
                    prev: Some(seed_prev.to_vec()),
                },
                Expect {
                    next: true,
                    prev: false,
                },
            )
            .await?;
        let bytes = take(inc.next, Peer::Next)?;
        let seed_own: [u8; 32] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| EngineError::Malformed {
                    peer: Peer::Next.name(),
                    expected: "a 32-byte proof seed".into(),
                    found: format!("{} bytes", bytes.len()),
                })?;
        let n = words.len();
        let th_p = thetas(seed_own, n); // my proof
        let th_l = thetas(seed_next, n); // next's proof (I am V_L)
        let th_r = thetas(seed_prev, n); // prev's proof (I am V_R)

        // Level 1 on words. Prover: my a are x_i, y_i and my b are x_{i+1}, y_{i+1}.
        // V_L of next: next's x_i, y_i are my b. V_R of prev: prev's x_{i+1}, y_{i+1} are my a.
        let c_p = level1(&words, &th_p);
        let (mut tau_l, mut tau_r) = taus(&words, &th_l, &th_r);
        let mut ds_l = Vec::new();
        let mut ds_r = Vec::new();

        let (c_l, c_r_in, r_l, r_r, r_p) = self.level_round(&c_p).await?;
        ds_l.push(sum01(&c_l) + tau_l);
        tau_l = eval(&c_l, r_l);
        ds_r.push(sum01(&c_r_in) + tau_r);
        tau_r = eval(&c_r_in, r_r);
        let mut gu = USide::from_words(words.iter().map(|w| (w.ax, w.ay)), &th_p, r_p);
        let mut gv = VSide::from_words(words.iter().map(|w| (w.by, w.bx)), r_p);
        let mut gl = USide::from_words(words.iter().map(|w| (w.bx, w.by)), &th_l, r_l);
        let mut gr = VSide::from_words(words.iter().map(|w| (w.ay, w.ax)), r_r);
        drop(words);

        // Levels in group form while it is cheaper than plain vectors.
        while gu.groups() > 1 && gu.q < MAX_TERMS {
            gu.pad();
            gv.pad();
            gl.pad();
            gr.pad();
            let c_p = group_coeffs(&gu, &gv);
            let (c_l, c_r_in, r_l, r_r, r_p) = self.level_round(&c_p).await?;
            ds_l.push(sum01(&c_l) + tau_l);
            tau_l = eval(&c_l, r_l);
            ds_r.push(sum01(&c_r_in) + tau_r);
            tau_r = eval(&c_r_in, r_r);
            gu.fold(r_p);
            gv.fold(r_p);
            gl.fold(r_l);
            gr.fold(r_r);
        }
        let (mut pu, mut pv) = (gu.materialise(), gv.materialise());
        let (mut lu, mut rv) = (gl.materialise(), gr.materialise());
        drop((gu, gv, gl, gr));

        while pu.len() > 1 {
            for x in [&mut pu, &mut pv, &mut lu, &mut rv] {
                pad_even(x);
            }
            let c_p = vec_coeffs(&pu, &pv);
            let (c_l, c_r_in, r_l, r_r, r_p) = self.level_round(&c_p).await?;
            ds_l.push(sum01(&c_l) + tau_l);
            tau_l = eval(&c_l, r_l);
            ds_r.push(sum01(&c_r_in) + tau_r);
            tau_r = eval(&c_r_in, r_r);
            vec_fold(&mut pu, r_p);
            vec_fold(&mut pv, r_p);
            vec_fold(&mut lu, r_l);
            vec_fold(&mut rv, r_r);
        }
        let levels = ds_l.len();

        // The masked last step.
        let (p_rho_u, p_rho_v) = {
            let v = self.verifier_mut();
            (Gf64::random(&mut v.mask_own), Gf64::random(&mut v.rho_next))
        };
        let (u1, v1) = (pu[0] + p_rho_u, pv[0] + p_rho_v);
        let c_final = [p_rho_u * p_rho_v, p_rho_u * v1 + u1 * p_rho_v, u1 * v1];
        let c_r_in = {
            let v = self.verifier_mut();
            let mine_l = draw3(&mut v.mask_own);
            sub3(&c_final, &mine_l)
        };
        let inc = self
            .exchange(
                Outgoing {
                    next: Some(Gf64::encode_slice(&c_r_in)),
                    prev: None,
                },
                Expect {
                    next: false,
                    prev: true,
                },
            )
            .await?;
        let c_r = decode_coeffs(inc.prev, Peer::Prev)?;
        // V_L of next's proof: the mask, then the coefficients, in the prover's order.
        let (rho_u, c_l, r_fl) = {
            let v = self.verifier_mut();
            let rho = Gf64::random(&mut v.mask_next);
            (rho, draw3(&mut v.mask_next), challenge(&mut v.chal_own))
        };
        let reveal_l = {
            let u_line = lu[0] + rho_u;
            ds_l.push(c_l[0] + sum01(&c_l) + tau_l);
            Reveal {
                entry: rho_u + u_line * r_fl,
                p_at_r: eval(&c_l, r_fl),
                ds: ds_l,
            }
        };
        // V_R of prev's proof.
        let (rho_v, r_fr) = {
            let v = self.verifier_mut();
            (Gf64::random(&mut v.rho_own), challenge(&mut v.chal_next))
        };
        let reveal_r = {
            let v_line = rv[0] + rho_v;
            ds_r.push(c_r[0] + sum01(&c_r) + tau_r);
            Reveal {
                entry: rho_v + v_line * r_fr,
                p_at_r: eval(&c_r, r_fr),
                ds: ds_r,
            }
        };
        let inc = self
            .exchange(
                Outgoing {
                    next: Some(reveal_r.encode()),
                    prev: Some(reveal_l.encode()),
                },
                BOTH,
            )
            .await?;
        let from_prev = Reveal::decode(&take(inc.prev, Peer::Prev)?, levels + 1, Peer::Prev)?;
        let from_next = Reveal::decode(&take(inc.next, Peer::Next)?, levels + 1, Peer::Next)?;
        let next = Peer::Next.of(me);
        let prev = Peer::Prev.of(me);
        // I am V_L of next's proof; its V_R is my previous party.
        check(
            &reveal_l,
            &from_prev,
            reveal_l.entry * from_prev.entry,
            me,
            next,
            prev,
        )?;
        // I am V_R of prev's proof; its V_L is my next party.
        check(
            &reveal_r,
            &from_next,
            from_next.entry * reveal_r.entry,
            me,
            prev,
            next,
        )?;
        let v = self.verifier_mut();
        v.proven_words += n as u64;
        v.proofs += 1;
        Ok(())
    }

    /// One level's two rounds: send my proof's V_R part, receive prev's; draw the
    /// challenges I know (as V_L of next's proof and V_R of prev's), send prev its
    /// challenge and receive mine. Returns (V_L part of next's proof, V_R part of prev's
    /// proof, challenge of next's proof, challenge of prev's proof, challenge of mine).
    async fn level_round(&mut self, c_p: &Coeffs) -> Result<(Coeffs, Coeffs, Gf64, Gf64, Gf64)> {
        let (sent, c_l) = {
            let v = self.verifier_mut();
            let mine_l = draw3(&mut v.mask_own);
            (sub3(c_p, &mine_l), draw3(&mut v.mask_next))
        };
        let inc = self
            .exchange(
                Outgoing {
                    next: Some(Gf64::encode_slice(&sent)),
                    prev: None,
                },
                Expect {
                    next: false,
                    prev: true,
                },
            )
            .await?;
        let c_r = decode_coeffs(inc.prev, Peer::Prev)?;
        let (r_l, r_r) = {
            let v = self.verifier_mut();
            (challenge(&mut v.chal_own), challenge(&mut v.chal_next))
        };
        let inc = self
            .exchange(
                Outgoing {
                    next: None,
                    prev: Some(Gf64::encode_slice(&[r_r])),
                },
                Expect {
                    next: true,
                    prev: false,
                },
            )
            .await?;
        let r_p = decode_challenge(inc.next, Peer::Next)?;
        Ok((c_l, c_r, r_l, r_r, r_p))
    }
}

/// The verifiers' final check of one proof: every level's parts agree and the opened
/// lines multiply to p(r). Fails naming the prover and the other verifier as suspects.
fn check(
    mine: &Reveal,
    theirs: &Reveal,
    product: Gf64,
    me: usize,
    prover: usize,
    other: usize,
) -> Result<()> {
    let levels_ok = mine.ds == theirs.ds;
    let product_ok = product == mine.p_at_r + theirs.p_at_r;
    if levels_ok && product_ok {
        Ok(())
    } else {
        Err(EngineError::Verification {
            check: if levels_ok {
                "AND-gate proof: final product"
            } else {
                "AND-gate proof: sum of a level"
            },
            by: me,
            suspects: [prover.min(other), prover.max(other)],
        })
    }
}
