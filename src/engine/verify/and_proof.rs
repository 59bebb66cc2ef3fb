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
//! **End and zero knowledge.** Halving stops at m ≤ 1,024 entries (`recursion::final_len`:
//! two rounds saved per level skipped, for 8 KiB more per verifier). P masks every entry
//! u*_j, v*_j with a random point (ρ_{u,j} from the P–V_L stream, ρ_{v,j} from the P–V_R
//! stream) and proves p(1) = τ for p = Σ_j u_j(X) v_j(X) of the masked lines. The verifiers
//! open every u_j(r), v_j(r) (uniform and independent: the mask's coefficient 1 − r is
//! non-zero as r ∉ {0, 1}), their parts of p(r) and every d, and check d_L = d_R at each
//! level and Σ_j u_j(r) v_j(r) = p(r); a p* ≠ p passes that with probability at most
//! 2 / 2^64, as at length one. V_R's view of the proof is masked by the P–V_L stream and
//! V_L receives nothing from P, so neither learns more than the verdict.
//!
//! **Soundness error** per proof: (1 + 2 (L + 1)) / 2^64 for L levels (L ≤ 24 at the
//! largest batch, 14 since halving stops at m entries), below 2^-58. **Cost**: 2L + 3
//! rounds and 32 (seed) + 32 L (levels) + 24 + 16 (m + L + 2) (last step) bytes sent per
//! party; the local work is in `and_levels`
//! (group form for the first levels, then about 3.5 field products per remaining entry).

use crate::engine::par::{join, join4};
use crate::engine::prf::Prg;
use rand::SeedableRng;

use super::and_levels::{
    group_coeffs, level1, taus, vec_coeffs, vec_fold, GroupBufs, USide, VSide, MAX_TERMS,
};
use super::deferred::Deferred;
use super::gf64::Gf64;
use super::recursion::{Ledger, ProofElem};
use super::{AndWord, MAX_PENDING_WORDS};
use crate::engine::error::Result;
use crate::engine::session::Session;
use crate::engine::transport::Transport;

impl ProofElem for Gf64 {
    fn zero() -> Self {
        Gf64::ZERO
    }
    fn random(rng: &mut Prg) -> Self {
        Gf64::random(rng)
    }
    fn challenge(rng: &mut Prg) -> Self {
        loop {
            let r = Gf64::random(rng);
            if r.0 > 1 {
                return r;
            }
        }
    }
    fn encode(v: &[Self]) -> Vec<u8> {
        Gf64::encode_slice(v)
    }
    fn decode(bytes: &[u8], n: usize) -> Option<Vec<Self>> {
        Gf64::decode_vec(bytes, n)
    }
    fn bytes() -> usize {
        8
    }
    fn coeffs(u: &[Self], v: &[Self]) -> [Self; 3] {
        vec_coeffs(u, v)
    }
    fn fold(x: &mut Vec<Self>, r: Self) {
        vec_fold(x, r)
    }
}

/// The word weights θ_w from a revealed seed, into `out` (its allocation reused).
fn thetas(seed: [u8; 32], n: usize, mut out: Vec<Gf64>) -> Vec<Gf64> {
    let mut rng = Prg::from_seed(seed);
    out.clear();
    out.extend((0..n).map(|_| Gf64::random(&mut rng)));
    out
}

impl<T: Transport> Session<T> {
    /// Proves and verifies every pending AND gate, then forgets them. No-op when nothing is
    /// pending (all parties have the same record, so all skip together). A record longer
    /// than [`MAX_PENDING_WORDS`] (one round of ANDs can be) is proven in chunks of that
    /// many words, one proof after another, so that a proof's memory stays bounded.
    pub(crate) async fn prove_ands(&mut self) -> Result<()> {
        let mut words = std::mem::take(&mut self.verifier_mut().pending);
        for chunk in words.chunks(MAX_PENDING_WORDS) {
            let start = std::time::Instant::now();
            self.prove_words(chunk).await?;
            self.verifier_mut().proof_time += start.elapsed();
        }
        // Keep the record's allocation for the next batch.
        words.clear();
        self.verifier_mut().pending = words;
        Ok(())
    }

    /// One proof over `words` (not empty).
    async fn prove_words(&mut self, words: &[AndWord]) -> Result<()> {
        let [seed_own, seed_next, seed_prev] = self.weight_seeds().await?;
        let n = words.len();
        let GroupBufs {
            u: [bu_p, bu_l],
            v: [bv_p, bv_r],
            thetas: [t_p, t_l, t_r],
        } = std::mem::take(&mut self.verifier_mut().groups);
        // My proof's, the next party's (I am V_L) and the previous party's (I am V_R).
        let (th_p, th_l, th_r, ()) = super::heavy(|| {
            join4(
                n,
                || thetas(seed_own, n, t_p),
                || thetas(seed_next, n, t_l),
                || thetas(seed_prev, n, t_r),
                || (),
            )
        });

        // Level 1 on words. Prover: my a are x_i, y_i and my b are x_{i+1}, y_{i+1}.
        // V_L of next: next's x_i, y_i are my b. V_R of prev: prev's x_{i+1}, y_{i+1} are my a.
        let (c_p, (tau_l, tau_r)) =
            super::heavy(|| join(n, || level1(words, &th_p), || taus(words, &th_l, &th_r)));
        let mut ledger = Ledger::new(tau_l, tau_r);
        let step = self.level_round(&c_p).await?;
        ledger.level(&step);
        let (mut gu, mut gv, mut gl, mut gr) = super::heavy(|| {
            join4(
                n,
                || USide::from_words(words.iter().map(|w| (w.ax, w.ay)), &th_p, step.r_p, bu_p),
                || VSide::from_words(words.iter().map(|w| (w.by, w.bx)), step.r_p, bv_p),
                || USide::from_words(words.iter().map(|w| (w.bx, w.by)), &th_l, step.r_l, bu_l),
                || VSide::from_words(words.iter().map(|w| (w.ay, w.ax)), step.r_r, bv_r),
            )
        });

        // Levels in group form while that is cheaper than plain vectors.
        while gu.groups() > 1 && gu.q < MAX_TERMS {
            gu.pad();
            gv.pad();
            gl.pad();
            gr.pad();
            let c_p = super::heavy(|| group_coeffs(&gu, &gv));
            let step = self.level_round(&c_p).await?;
            ledger.level(&step);
            let len = gu.bits.len();
            super::heavy(|| {
                join4(
                    len,
                    || gu.fold(step.r_p),
                    || gv.fold(step.r_p),
                    || gl.fold(step.r_l),
                    || gr.fold(step.r_r),
                )
            });
        }
        // The prover's plain vectors reuse the allocations of the previous proof (no fresh
        // pages). The verifiers' sides stay in group form (`deferred`).
        let mut bufs = std::mem::take(&mut self.verifier_mut().spare);
        let [b0, b1] = &mut bufs;
        super::heavy(|| {
            join(
                64 * gu.groups(),
                || gu.materialise_into(b0),
                || gv.materialise_into(b1),
            )
        });
        let (bufs, lu, rv) = self
            .finish_proof("and", bufs, Deferred::new(gl), Deferred::new(gr), ledger)
            .await?;
        let (gl, gr) = (lu.side, rv.side);
        self.verifier_mut().groups = GroupBufs {
            u: [(gu.coef, gu.bits), (gl.coef, gl.bits)],
            v: [gv.bits, gr.bits],
            thetas: [th_p, th_l, th_r],
        };
        let v = self.verifier_mut();
        v.spare = bufs;
        v.proven_words += n as u64;
        v.proofs += 1;
        Ok(())
    }
}
