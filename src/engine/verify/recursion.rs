//! The part of the batch proofs that does not depend on what is proven: the weight seeds,
//! one level's two rounds, the verifiers' ledger, the halving of plain vectors, and the
//! masked last step with the final check (see `and_proof` for the argument). Generic over
//! the proof's ring: GF(2^64) for AND gates, GR(2^k, 48) for ring products. All three
//! parties run every proof at once, each as prover of its own messages and as left and
//! right verifier of its neighbours'. This module holds no statement.

use crate::engine::prf::Prg;
use rand::RngCore;

use crate::engine::error::{EngineError, Result};
use crate::engine::session::{take, Session};
use crate::engine::transport::{Expect, Outgoing, Peer, Transport};

/// A ring the proofs can run in.
pub(crate) trait ProofElem:
    Copy
    + PartialEq
    + Send
    + Sync
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
{
    fn zero() -> Self;
    /// A uniformly random element (masks).
    fn random(rng: &mut Prg) -> Self;
    /// A challenge from an exceptional set, never 0 or 1 (nor 1 mod the maximal ideal), so
    /// that r and 1 − r are units.
    fn challenge(rng: &mut Prg) -> Self;
    fn encode(v: &[Self]) -> Vec<u8>;
    fn decode(bytes: &[u8], n: usize) -> Option<Vec<Self>>;
    /// Bytes per element, for error messages.
    fn bytes() -> usize;

    /// The prover's coefficients over pairs of a plain vector of even length:
    /// p(X) = Σ_k (u_{2k} + (u_{2k+1} − u_{2k}) X)(v_{2k} + (v_{2k+1} − v_{2k}) X).
    fn coeffs(u: &[Self], v: &[Self]) -> [Self; 3] {
        let mut c = [Self::zero(); 3];
        for (pu, pv) in u.chunks_exact(2).zip(v.chunks_exact(2)) {
            let (bu, bv) = (pu[1] - pu[0], pv[1] - pv[0]);
            let c0 = pu[0] * pv[0];
            let c2 = bu * bv;
            c[0] = c[0] + c0;
            c[2] = c[2] + c2;
            // a_u b_v + b_u a_v = (a_u + b_u)(a_v + b_v) − c0 − c2.
            c[1] = c[1] + pu[1] * pv[1] - c0 - c2;
        }
        c
    }

    /// x · r for a challenge r (drawn by [`ProofElem::challenge`]), which a ring may
    /// compute faster than a general product.
    fn mul_challenge(self, r: Self) -> Self {
        self * r
    }

    /// Folds a plain vector of even length in place: x'_k = x_{2k} + (x_{2k+1} − x_{2k}) r
    /// for a challenge r.
    fn fold(x: &mut Vec<Self>, r: Self) {
        let half = x.len() / 2;
        for k in 0..half {
            let (a, b) = (x[2 * k], x[2 * k + 1]);
            x[k] = a + (b - a).mul_challenge(r);
        }
        x.truncate(half);
    }
}

pub(crate) type Coeffs<E> = [E; 3];

/// A verifier's vector of a proof (the U side of the next party's, or the V side of the
/// previous party's), which the verifier needs only at the end: folded at every plain
/// level, then read once. A plain vector folds at once ([`Vec`]); a side may instead
/// record the challenges and compute its last entries in one pass (`deferred`).
pub(crate) trait VerifierSide<E>: Send {
    /// A plain level's fold at r, after padding an odd length with a zero.
    fn fold(&mut self, r: E);
    /// Makes [`VerifierSide::entries`] the entries after every fold; a side that is
    /// empty becomes one zero entry, as the prover's vectors do.
    fn finish(&mut self);
    fn entries(&self) -> &[E];
}

impl<E: ProofElem> VerifierSide<E> for Vec<E> {
    fn fold(&mut self, r: E) {
        if self.len() % 2 == 1 {
            self.push(E::zero());
        }
        E::fold(self, r);
    }

    fn finish(&mut self) {
        if self.is_empty() {
            self.push(E::zero());
        }
    }

    fn entries(&self) -> &[E] {
        self
    }
}

/// The sum of two coefficient triples (of parts of one sum).
pub(crate) fn add3<E: ProofElem>(a: Coeffs<E>, b: Coeffs<E>) -> Coeffs<E> {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub(crate) fn eval<E: ProofElem>(c: &Coeffs<E>, r: E) -> E {
    c[0] + c[1] * r + c[2] * r * r
}

/// p(0) + p(1).
pub(crate) fn sum01<E: ProofElem>(c: &Coeffs<E>) -> E {
    c[0] + c[0] + c[1] + c[2]
}

fn draw3<E: ProofElem>(rng: &mut Prg) -> Coeffs<E> {
    [0; 3].map(|_| E::random(rng))
}

fn sub3<E: ProofElem>(a: &Coeffs<E>, b: &Coeffs<E>) -> Coeffs<E> {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// What the verifiers keep: the claimed sums τ of the two proofs this party verifies (as
/// V_L of the next party's, as V_R of the previous party's) and the differences d of every
/// level's check, which the two verifiers of a proof compare at the end.
pub(crate) struct Ledger<E> {
    pub tau_l: E,
    pub tau_r: E,
    ds_l: Vec<E>,
    ds_r: Vec<E>,
}

impl<E: ProofElem> Ledger<E> {
    pub fn new(tau_l: E, tau_r: E) -> Self {
        Ledger {
            tau_l,
            tau_r,
            ds_l: Vec::new(),
            ds_r: Vec::new(),
        }
    }

    /// One level seen by the verifiers: check p(0) + p(1) = τ in parts, τ' = p(r).
    pub fn level(&mut self, step: &Step<E>) {
        self.ds_l.push(sum01(&step.c_l) - self.tau_l);
        self.tau_l = eval(&step.c_l, step.r_l);
        self.ds_r.push(sum01(&step.c_r) - self.tau_r);
        self.tau_r = eval(&step.c_r, step.r_r);
    }
}

/// One level's outcome: this party's V_L part of the next party's polynomial, its V_R part
/// of the previous party's, the challenges of those two proofs and of its own.
pub(crate) struct Step<E> {
    pub c_l: Coeffs<E>,
    pub c_r: Coeffs<E>,
    pub r_l: E,
    pub r_r: E,
    pub r_p: E,
}

/// Bytes a verifier may reveal of the masked last vector: halving stops once a vector
/// has at most [`final_len`] entries, which saves two rounds per level skipped (ten for
/// GF(2^64) at 1,024 entries) for 8 KiB more per verifier and proof.
const FINAL_BYTES: usize = 8192;

/// Entries of the last vector: the largest power of two whose entries fit [`FINAL_BYTES`].
pub(crate) fn final_len<E: ProofElem>() -> usize {
    let n = (FINAL_BYTES / E::bytes()).max(1);
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// What a verifier reveals at the end: its side of the masked lines at r, entry by entry.
struct Reveal<E> {
    entries: Vec<E>,
    p_at_r: E,
    ds: Vec<E>,
}

impl<E: ProofElem> Reveal<E> {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.entries.clone();
        v.push(self.p_at_r);
        v.extend(&self.ds);
        E::encode(&v)
    }

    fn decode(bytes: &[u8], len: usize, levels: usize, peer: Peer) -> Result<Self> {
        let n = len + 1 + levels;
        let mut v = E::decode(bytes, n).ok_or_else(|| malformed::<E>(peer, n, bytes))?;
        let ds = v.split_off(len + 1);
        let p_at_r = v.pop().expect("len + 1 elements");
        Ok(Reveal {
            entries: v,
            p_at_r,
            ds,
        })
    }
}

/// Σ_j a_j b_j.
fn dot<E: ProofElem>(a: &[E], b: &[E]) -> E {
    a.iter().zip(b).fold(E::zero(), |acc, (x, y)| acc + *x * *y)
}

fn malformed<E: ProofElem>(peer: Peer, n: usize, bytes: &[u8]) -> EngineError {
    EngineError::Malformed {
        peer: peer.name(),
        expected: format!("{n} proof elements of {} bytes", E::bytes()),
        found: format!("{} bytes", bytes.len()),
    }
}

const ONLY_NEXT: Expect = Expect {
    next: true,
    prev: false,
};
const ONLY_PREV: Expect = Expect {
    next: false,
    prev: true,
};

impl<T: Transport> Session<T> {
    /// Round 0 of a proof: draws the weight seeds of the two proofs this party verifies,
    /// reveals the previous party's to it (as its V_R) and receives its own from the next
    /// party. Returns (own, next's proof, previous party's proof).
    pub(crate) async fn weight_seeds(&mut self) -> Result<[[u8; 32]; 3]> {
        let (seed_prev, seed_next) = {
            let v = self.verifier_mut();
            let (mut s_next, mut s_prev) = ([0u8; 32], [0u8; 32]);
            v.chal_own.fill_bytes(&mut s_next);
            v.chal_next.fill_bytes(&mut s_prev);
            (s_prev, s_next)
        };
        let out = Outgoing {
            next: None,
            prev: Some(seed_prev.to_vec()),
        };
        let inc = self.exchange(out, ONLY_NEXT).await?;
        let bytes = take(inc.next, Peer::Next)?;
        let own: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| EngineError::Malformed {
                peer: Peer::Next.name(),
                expected: "a 32-byte proof seed".into(),
                found: format!("{} bytes", bytes.len()),
            })?;
        Ok([own, seed_next, seed_prev])
    }

    /// Sends this party's V_R part of its own polynomial to its next party and returns the
    /// previous party's, the V_R part of the proof this party checks on the right.
    async fn swap_coeffs<E: ProofElem>(&mut self, sent: &Coeffs<E>) -> Result<Coeffs<E>> {
        let out = Outgoing {
            next: Some(E::encode(sent)),
            prev: None,
        };
        let inc = self.exchange(out, ONLY_PREV).await?;
        let bytes = take(inc.prev, Peer::Prev)?;
        let c = E::decode(&bytes, 3).ok_or_else(|| malformed::<E>(Peer::Prev, 3, &bytes))?;
        Ok([c[0], c[1], c[2]])
    }

    /// One level's two rounds: my proof's V_R part goes to my next party, the previous
    /// party's comes in; then I send the previous party its challenge and get mine.
    pub(crate) async fn level_round<E: ProofElem>(&mut self, c_p: &Coeffs<E>) -> Result<Step<E>> {
        let (sent, c_l) = {
            let v = self.verifier_mut();
            let mine_l = draw3::<E>(&mut v.mask_own);
            (sub3(c_p, &mine_l), draw3::<E>(&mut v.mask_next))
        };
        let c_r = self.swap_coeffs(&sent).await?;
        let (r_l, r_r) = {
            let v = self.verifier_mut();
            (
                E::challenge(&mut v.chal_own),
                E::challenge(&mut v.chal_next),
            )
        };
        let out = Outgoing {
            next: None,
            prev: Some(E::encode(&[r_r])),
        };
        let inc = self.exchange(out, ONLY_NEXT).await?;
        let bytes = take(inc.next, Peer::Next)?;
        let r_p = E::decode(&bytes, 1).ok_or_else(|| malformed::<E>(Peer::Next, 1, &bytes))?[0];
        Ok(Step {
            c_l,
            c_r,
            r_l,
            r_r,
            r_p,
        })
    }

    /// Halves plain vectors down to at most [`final_len`] entries, then runs the masked last
    /// step and the final check. The prover's two vectors are `[pu, pv]`; `lu` is the U
    /// side of the next party's proof and `rv` the V side of the previous party's, all of
    /// the same length. Returns the prover's vectors emptied (their allocations can be
    /// reused) and the two sides.
    pub(crate) async fn finish_proof<E, L, R>(
        &mut self,
        what: &'static str,
        vectors: [Vec<E>; 2],
        mut lu: L,
        mut rv: R,
        mut ledger: Ledger<E>,
    ) -> Result<([Vec<E>; 2], L, R)>
    where
        E: ProofElem,
        L: VerifierSide<E>,
        R: VerifierSide<E>,
    {
        let [mut pu, mut pv] = vectors;
        if pu.is_empty() {
            pu.push(E::zero());
            pv.push(E::zero());
        }
        let start_len = pu.len();
        while pu.len() > final_len::<E>() {
            for x in [&mut pu, &mut pv] {
                if x.len() % 2 == 1 {
                    x.push(E::zero());
                }
            }
            let len = pu.len();
            let c_p = super::heavy(|| {
                crate::engine::par::sum_ranges(
                    len,
                    2,
                    &|s, e| E::coeffs(&pu[s..e], &pv[s..e]),
                    &add3,
                )
            });
            let step = self.level_round(&c_p).await?;
            ledger.level(&step);
            super::heavy(|| {
                crate::engine::par::join4(
                    len,
                    || E::fold(&mut pu, step.r_p),
                    || E::fold(&mut pv, step.r_p),
                    || lu.fold(step.r_l),
                    || rv.fold(step.r_r),
                )
            });
        }
        let len = pu.len();
        super::heavy(|| crate::engine::par::join(start_len, || lu.finish(), || rv.finish()));
        assert!(
            lu.entries().len() == len && rv.entries().len() == len,
            "a verifier's side ends with as many entries as the prover's"
        );
        let levels = ledger.ds_l.len();

        // The masked last step: per entry j the lines through (0, ρ_j) and (1, entry_j);
        // p(X) = Σ_j u_j(X) v_j(X), claim p(1) = τ.
        let sent = {
            let v = self.verifier_mut();
            let rho_u: Vec<E> = (0..len).map(|_| E::random(&mut v.mask_own)).collect();
            let rho_v: Vec<E> = (0..len).map(|_| E::random(&mut v.rho_next)).collect();
            let mut c = [E::zero(); 3];
            for j in 0..len {
                let (bu, bv) = (pu[j] - rho_u[j], pv[j] - rho_v[j]);
                c[0] = c[0] + rho_u[j] * rho_v[j];
                c[1] = c[1] + rho_u[j] * bv + bu * rho_v[j];
                c[2] = c[2] + bu * bv;
            }
            sub3(&c, &draw3::<E>(&mut v.mask_own))
        };
        let c_r = self.swap_coeffs(&sent).await?;
        let (reveal_l, reveal_r) = {
            let v = self.verifier_mut();
            // V_L of the next party's proof: the mask, then the coefficients, as drawn there.
            let rho_u: Vec<E> = (0..len).map(|_| E::random(&mut v.mask_next)).collect();
            let c_l = draw3::<E>(&mut v.mask_next);
            let r_l = E::challenge(&mut v.chal_own);
            let mut ds_l = std::mem::take(&mut ledger.ds_l);
            ds_l.push(c_l[0] + c_l[1] + c_l[2] - ledger.tau_l);
            let reveal_l = Reveal {
                entries: line_at(&rho_u, lu.entries(), r_l),
                p_at_r: eval(&c_l, r_l),
                ds: ds_l,
            };
            // V_R of the previous party's proof.
            let rho_v: Vec<E> = (0..len).map(|_| E::random(&mut v.rho_own)).collect();
            let r_r = E::challenge(&mut v.chal_next);
            let mut ds_r = std::mem::take(&mut ledger.ds_r);
            ds_r.push(c_r[0] + c_r[1] + c_r[2] - ledger.tau_r);
            let reveal_r = Reveal {
                entries: line_at(&rho_v, rv.entries(), r_r),
                p_at_r: eval(&c_r, r_r),
                ds: ds_r,
            };
            (reveal_l, reveal_r)
        };
        let out = Outgoing {
            next: Some(reveal_r.encode()),
            prev: Some(reveal_l.encode()),
        };
        let both = Expect {
            next: true,
            prev: true,
        };
        let inc = self.exchange(out, both).await?;
        let from_prev =
            Reveal::<E>::decode(&take(inc.prev, Peer::Prev)?, len, levels + 1, Peer::Prev)?;
        let from_next =
            Reveal::<E>::decode(&take(inc.next, Peer::Next)?, len, levels + 1, Peer::Next)?;
        let me = self.id();
        let (next, prev) = (Peer::Next.of(me), Peer::Prev.of(me));
        // I am V_L of next's proof; its V_R is my previous party.
        check(
            what,
            &reveal_l,
            &from_prev,
            dot(&reveal_l.entries, &from_prev.entries),
            me,
            next,
            prev,
        )?;
        // I am V_R of prev's proof; its V_L is my next party.
        check(
            what,
            &reveal_r,
            &from_next,
            dot(&from_next.entries, &reveal_r.entries),
            me,
            prev,
            next,
        )?;
        pu.clear();
        pv.clear();
        Ok(([pu, pv], lu, rv))
    }
}

/// ρ_j + (x_j − ρ_j) r for every entry: the masked line of each entry at r.
fn line_at<E: ProofElem>(rho: &[E], x: &[E], r: E) -> Vec<E> {
    rho.iter().zip(x).map(|(p, e)| *p + (*e - *p) * r).collect()
}

/// The two verifiers' final check of one proof: at every level their parts of the check
/// cancel, and the opened lines multiply to p(r). Fails naming the prover and the other
/// verifier.
fn check<E: ProofElem>(
    what: &'static str,
    mine: &Reveal<E>,
    theirs: &Reveal<E>,
    product: E,
    me: usize,
    prover: usize,
    other: usize,
) -> Result<()> {
    let levels_ok = mine.ds.len() == theirs.ds.len()
        && mine
            .ds
            .iter()
            .zip(&theirs.ds)
            .all(|(a, b)| *a + *b == E::zero());
    let product_ok = product == mine.p_at_r + theirs.p_at_r;
    if levels_ok && product_ok {
        return Ok(());
    }
    let check = match (what, levels_ok) {
        ("and", true) => "AND-gate proof: final product",
        ("and", false) => "AND-gate proof: sum of a level",
        (_, true) => "ring-product proof: final product",
        (_, false) => "ring-product proof: sum of a level",
    };
    Err(EngineError::Verification {
        check,
        by: me,
        suspects: [prover.min(other), prover.max(other)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ring::{Z128, Z64};
    use crate::engine::verify::galois::Gr;
    use crate::engine::verify::gf64::Gf64;

    /// The last vector is the largest power of two of entries within 8 KiB: 1,024 GF(2^64)
    /// entries (8 KiB exactly), and for the Galois rings 21 → 16 and 10 → 8 entries.
    #[test]
    fn the_last_vector_fits_its_byte_budget() {
        assert_eq!(final_len::<Gf64>(), 1024);
        assert_eq!(final_len::<Gf64>() * Gf64::bytes(), FINAL_BYTES);
        for (len, bytes) in [
            (final_len::<Gr<Z64>>(), Gr::<Z64>::bytes()),
            (final_len::<Gr<Z128>>(), Gr::<Z128>::bytes()),
        ] {
            assert!(len.is_power_of_two());
            assert!(len * bytes <= FINAL_BYTES, "{len} × {bytes}");
            assert!(
                2 * len * bytes > FINAL_BYTES,
                "{len} × {bytes} could double"
            );
        }
    }
}
