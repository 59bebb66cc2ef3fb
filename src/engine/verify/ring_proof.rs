//! The proof that every recorded ring product was computed honestly: the same distributed
//! zero-knowledge proof as for AND gates (`and_proof`, `recursion`), over the Galois ring
//! GR(2^k, 48) of `galois` instead of GF(2^64). A product here is a *gate*: party i sends
//! t = Σ_l (x_i y_i + x_i y_{i+1} + x_{i+1} y_i)_l + l_i + F(k_i) − F(k_{i+1}) for one
//! output, a dot product of any length plus a linear term l (a resharing has no pairs at
//! all). Its relation Σ_l (x_i y_{i+1} + y_i x_{i+1}) = [t − F(k_i) − l_i − Σ_l x_i y_i] +
//! [F(k_{i+1})] is again an inner product of a vector its left verifier knows with one its
//! right verifier knows. Gate j is weighted by θ_j uniform in the exceptional set
//! E = {0, 1}^48 of GR (coefficients 0 or 1). For a non-zero error c ∈ Z_2^k the map
//! θ ↦ θ c is injective on E (θ c = θ' c means (θ − θ') c = 0, and θ − θ' is 0 or a unit),
//! so whatever the other gates' errors, Σ_j θ_j e_j = 0 holds for at most one value of
//! θ_j for a gate with e_j ≠ 0: probability at most 2^-48, as for θ_j uniform in GR, with
//! 48 random bits per gate instead of 48 ring elements, and products by θ_j (and by the
//! challenges, also in E) that need no coefficient products. Each level errs with
//! probability at most 2 / 2^48 (a degree-2 polynomial over GR vanishes on at most two
//! points of the exceptional set): with L levels the soundness error is (1 + 2(L + 1)) /
//! 2^48. A proof takes at most `MAX_PROOF_PAIRS` = 2^16 pairs (L ≤ 17: below 2^-42.7)
//! unless a single gate has more (a dot product of m pairs: L ≤ 1 + ⌈log2 m⌉, still below
//! 2^-42 up to m = 2^24). A larger record is proven in several proofs, and a cheater must
//! pass the proof of every chunk it deviated in, so a session's error is no larger. This
//! module holds the record and the first level; the rest is `recursion`.

use crate::engine::prf::Prg;
use rand::SeedableRng;

use super::galois::{Gr, D};
use super::recursion::{Ledger, ProofElem};
use super::Verifier;
use crate::engine::error::Result;
use crate::engine::ring::Ring;
use crate::engine::session::Session;
use crate::engine::share::Share;
use crate::engine::transport::Transport;

impl<R: Ring> ProofElem for Gr<R> {
    fn zero() -> Self {
        Gr::zero()
    }
    fn random(rng: &mut Prg) -> Self {
        Gr::random(rng)
    }
    fn challenge(rng: &mut Prg) -> Self {
        Gr::challenge(rng)
    }
    fn encode(v: &[Self]) -> Vec<u8> {
        Gr::encode_slice(v)
    }
    fn decode(bytes: &[u8], n: usize) -> Option<Vec<Self>> {
        Gr::decode_vec(bytes, n)
    }
    fn bytes() -> usize {
        D * R::BYTES
    }
    fn mul_challenge(self, r: Self) -> Self {
        self.mul_sparse(r)
    }
}

/// One recorded product gate as party i sees it: its pairs are `pairs[start .. start +
/// len]`; `lb` its component i + 1 of the linear term; F(k_i) of the zero share; and
/// t_{i+1} − F(k_{i+1}) of the message received from party i + 1.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GateRec<R> {
    start: usize,
    len: usize,
    lb: R,
    f_own: R,
    tf_next: R,
}

/// The pending product gates of one ring; pairs as (x_a, x_b, y_a, y_b).
pub(crate) struct RingPending<R> {
    gates: Vec<GateRec<R>>,
    pairs: Vec<[R; 4]>,
}

impl<R> Default for RingPending<R> {
    fn default() -> Self {
        RingPending {
            gates: Vec::new(),
            pairs: Vec::new(),
        }
    }
}

/// The most pairs one ring proof takes: its four vectors then hold at most 2^16 elements
/// of GR (24 MiB each in Z_2^64, 48 MiB in Z_2^128). A larger record is proven in several
/// proofs (each sound on its own), so memory stays bounded whatever a session records.
pub(crate) const MAX_PROOF_PAIRS: usize = 1 << 16;

impl<R: Copy> RingPending<R> {
    pub fn len(&self) -> usize {
        self.gates.len()
    }

    /// The record split into consecutive runs of whole gates of at most `max` pairs each
    /// (a single gate with more pairs is a run of its own).
    fn chunks(self, max: usize) -> Vec<RingPending<R>> {
        let mut out = Vec::new();
        let mut cur = RingPending::default();
        for g in self.gates {
            if !cur.gates.is_empty() && cur.pairs.len() + g.len > max {
                out.push(std::mem::take(&mut cur));
            }
            let start = cur.pairs.len();
            cur.pairs
                .extend_from_slice(&self.pairs[g.start..g.start + g.len]);
            cur.gates.push(GateRec { start, ..g });
        }
        if !cur.gates.is_empty() {
            out.push(cur);
        }
        out
    }
}

/// The record of ring R's products: Z_2^64, Z_2^128 and Z_2^256 have one; any other
/// ring has none, and its products are refused in malicious mode.
pub(crate) fn pending_of<R: Ring>(v: &mut Verifier) -> Option<&mut RingPending<R>> {
    use std::any::Any;
    if let Some(p) = (&mut v.ring64 as &mut dyn Any).downcast_mut::<RingPending<R>>() {
        return Some(p);
    }
    if let Some(p) = (&mut v.ring128 as &mut dyn Any).downcast_mut::<RingPending<R>>() {
        return Some(p);
    }
    (&mut v.ring256 as &mut dyn Any).downcast_mut::<RingPending<R>>()
}

/// One output of [`Session::products`]: Σ_l x_l y_l + linear.
pub struct Gate<'a, R> {
    pub x: &'a [Share<R>],
    pub y: &'a [Share<R>],
    pub linear: Share<R>,
}

/// Where the operands of a round of product gates come from: a list of [`Gate`]s, or two
/// vectors multiplied element-wise (for which no gate list is built).
pub(crate) trait GateSource<R> {
    fn len(&self) -> usize;
    /// Component a of gate j's local product: Σ_l (x_a y_a + x_a y_b + x_b y_a)_l + l_a.
    fn local(&self, j: usize) -> R;
    /// Appends gate j's pairs to `pairs` as (x_a, x_b, y_a, y_b); returns their number and
    /// component b of the linear term.
    fn record(&self, j: usize, pairs: &mut Vec<[R; 4]>) -> (usize, R);
}

impl<R: Ring> GateSource<R> for [Gate<'_, R>] {
    fn len(&self) -> usize {
        <[_]>::len(self)
    }
    fn local(&self, j: usize) -> R {
        let g = &self[j];
        g.x.iter().zip(g.y).fold(g.linear.a, |acc, (p, q)| {
            acc + crate::engine::arith::local_cross(p, q)
        })
    }
    fn record(&self, j: usize, pairs: &mut Vec<[R; 4]>) -> (usize, R) {
        let g = &self[j];
        pairs.extend(g.x.iter().zip(g.y).map(|(x, y)| [x.a, x.b, y.a, y.b]));
        (g.x.len(), g.linear.b)
    }
}

/// Element-wise products of two vectors of equal length: gate j is x_j y_j.
struct Elementwise<'a, R> {
    x: &'a [Share<R>],
    y: &'a [Share<R>],
}

impl<R: Ring> GateSource<R> for Elementwise<'_, R> {
    fn len(&self) -> usize {
        self.x.len().min(self.y.len())
    }
    fn local(&self, j: usize) -> R {
        crate::engine::arith::local_cross(&self.x[j], &self.y[j])
    }
    fn record(&self, j: usize, pairs: &mut Vec<[R; 4]>) -> (usize, R) {
        let (x, y) = (self.x[j], self.y[j]);
        pairs.push([x.a, x.b, y.a, y.b]);
        (1, R::zero())
    }
}

/// The gate weights θ_j from a revealed seed: uniform in the exceptional set (see the
/// module doc for why that is as sound as uniform in GR).
fn weights<R: Ring>(seed: [u8; 32], n: usize) -> Vec<Gr<R>> {
    let mut rng = Prg::from_seed(seed);
    (0..n).map(|_| Gr::exceptional(&mut rng)).collect()
}

/// The level-1 fold of the U side: θ (a + (b − a) r) per pair, for the pair's (a, b).
fn fold_u<R: Ring>(
    p: &RingPending<R>,
    th: &[Gr<R>],
    r: Gr<R>,
    pick: impl Fn(&[R; 4]) -> (R, R),
) -> Vec<Gr<R>> {
    let mut out = Vec::with_capacity(p.pairs.len());
    for (g, t) in p.gates.iter().zip(th) {
        let tr = t.mul_sparse(r);
        for pair in &p.pairs[g.start..g.start + g.len] {
            let (a, b) = pick(pair);
            out.push(t.scale(a) + tr.scale(b - a));
        }
    }
    out
}

/// The level-1 fold of the V side: a + (b − a) r per pair.
fn fold_v<R: Ring>(p: &RingPending<R>, r: Gr<R>, pick: impl Fn(&[R; 4]) -> (R, R)) -> Vec<Gr<R>> {
    p.pairs
        .iter()
        .map(|pair| {
            let (a, b) = pick(pair);
            Gr::from_base(a) + r.scale(b - a)
        })
        .collect()
}

impl<T: Transport> Session<T> {
    /// Σ_l x_l y_l + linear for every gate, replicated: one round, one element per gate and
    /// party. In malicious mode every gate is recorded for [`Session::verify`].
    pub async fn products<R: Ring>(&mut self, gates: &[Gate<'_, R>]) -> Result<Vec<Share<R>>> {
        self.products_recorded(gates, true).await
    }

    /// [`Session::products`] without recording the gates for the proof, for a caller whose
    /// own check catches any additive error a cheater puts on these outputs (a deviating
    /// message changes a product's result by an additive term the cheater chooses from its
    /// view, and by nothing else). The caller must argue that check at its site.
    pub(crate) async fn products_checked_by_caller<R: Ring>(
        &mut self,
        gates: &[Gate<'_, R>],
    ) -> Result<Vec<Share<R>>> {
        self.products_recorded(gates, false).await
    }

    /// [`Session::products_checked_by_caller`] for gates from any [`GateSource`], with no
    /// gate list built.
    pub(crate) async fn products_of_source_checked_by_caller<R: Ring, G: GateSource<R> + ?Sized>(
        &mut self,
        gates: &G,
    ) -> Result<Vec<Share<R>>> {
        self.product_round(gates, false).await
    }

    async fn products_recorded<R: Ring>(
        &mut self,
        gates: &[Gate<'_, R>],
        record: bool,
    ) -> Result<Vec<Share<R>>> {
        for g in gates {
            if g.x.len() != g.y.len() {
                return Err(crate::engine::error::EngineError::Invalid(format!(
                    "products: a gate with {} and {} operands",
                    g.x.len(),
                    g.y.len()
                )));
            }
        }
        self.product_round(gates, record).await
    }

    /// Element-wise products x_j y_j as one round of single-pair gates, without building
    /// a gate list (see [`Session::mul`]).
    pub(crate) async fn mul_elementwise<R: Ring>(
        &mut self,
        x: &[Share<R>],
        y: &[Share<R>],
    ) -> Result<Vec<Share<R>>> {
        self.product_round(&Elementwise { x, y }, true).await
    }

    /// One round of product gates from any [`GateSource`]. Party i computes
    /// t_j = local_j + F(k_i)_j − F(k_{i+1})_j a block at a time (the zero share is drawn
    /// as it is used), sends t to party i − 1 and gets t' from party i + 1: gate j's
    /// result is (t_j, t'_j). Only a recorded gate keeps its zero-share parts, which its
    /// proof needs.
    async fn product_round<R: Ring, G: GateSource<R> + ?Sized>(
        &mut self,
        gates: &G,
        record: bool,
    ) -> Result<Vec<Share<R>>> {
        let recording = record && self.malicious();
        if recording && pending_of::<R>(self.verifier_mut()).is_none() {
            self.refuse_unproven("a product in this ring")?;
        }
        const BLOCK: usize = 1024;
        let n = gates.len();
        let mut out: Vec<Share<R>> = Vec::with_capacity(n);
        let mut msg: Vec<u8> = Vec::with_capacity(n * R::BYTES);
        let mut kept = recording.then(|| (Vec::with_capacity(n), Vec::with_capacity(n)));
        let mut t = Vec::with_capacity(BLOCK.min(n));
        for start in (0..n).step_by(BLOCK) {
            let m = BLOCK.min(n - start);
            let (f_own, f_next) = self.correlated().zero_share_parts::<R>(m);
            t.clear();
            t.extend((0..m).map(|k| gates.local(start + k) + f_own[k] - f_next[k]));
            msg.extend_from_slice(&R::encode_slice(&t));
            out.extend(t.iter().map(|&a| Share { a, b: R::zero() }));
            if let Some((own, next)) = &mut kept {
                own.extend_from_slice(&f_own);
                next.extend_from_slice(&f_next);
            }
        }
        let received = self.send_product_bytes::<R>(msg, n).await?;
        crate::engine::arith::each_element::<R>(&received, |i, b| out[i].b = b);
        if let (Some((f_own, f_next)), Some(rec)) = (kept, pending_of::<R>(self.verifier_mut())) {
            for (j, (f_own, f_next)) in f_own.into_iter().zip(f_next).enumerate() {
                let start = rec.pairs.len();
                let (len, lb) = gates.record(j, &mut rec.pairs);
                rec.gates.push(GateRec {
                    start,
                    len,
                    lb,
                    f_own,
                    tf_next: out[j].b - f_next,
                });
            }
        }
        Ok(out)
    }

    /// Proves and verifies every pending product gate of ring R, then forgets them.
    pub(crate) async fn prove_products<R: Ring>(&mut self) -> Result<()> {
        let Some(rec) = pending_of::<R>(self.verifier_mut()).map(std::mem::take) else {
            return Ok(());
        };
        for chunk in rec.chunks(MAX_PROOF_PAIRS) {
            let start = std::time::Instant::now();
            self.prove_product_chunk(chunk).await?;
            self.verifier_mut().proof_time += start.elapsed();
        }
        Ok(())
    }

    /// One proof over a record of at most [`MAX_PROOF_PAIRS`] pairs (or one larger gate).
    async fn prove_product_chunk<R: Ring>(&mut self, rec: RingPending<R>) -> Result<()> {
        if rec.gates.is_empty() {
            return Ok(());
        }
        let [seed_own, seed_next, seed_prev] = self.weight_seeds().await?;
        let n = rec.gates.len();
        let (th_p, th_l, th_r) = super::heavy(|| {
            (
                weights::<R>(seed_own, n),
                weights::<R>(seed_next, n),
                weights::<R>(seed_prev, n),
            )
        });
        // Pairs are (x_a, x_b, y_a, y_b). Prover: u = θ x_a, θ y_a and v = y_b, x_b.
        // V_L of next: next's x_a, y_a are my x_b, y_b. V_R of prev: prev's y_b, x_b are
        // my y_a, x_a.
        let (c, tau_l, tau_r) = super::heavy(|| {
            let mut c = [Gr::zero(); 3];
            let (mut tau_l, mut tau_r) = (Gr::zero(), Gr::zero());
            for (j, g) in rec.gates.iter().enumerate() {
                let (mut s0, mut s1, mut s2, mut own) =
                    (R::zero(), R::zero(), R::zero(), R::zero());
                for [xa, xb, ya, yb] in &rec.pairs[g.start..g.start + g.len] {
                    let (du, dv) = (*ya - *xa, *xb - *yb);
                    s0 += *xa * *yb;
                    s1 += *xa * dv + du * *yb;
                    s2 += du * dv;
                    own += *xb * *yb;
                }
                c[0] = c[0] + th_p[j].scale(s0);
                c[1] = c[1] + th_p[j].scale(s1);
                c[2] = c[2] + th_p[j].scale(s2);
                tau_l = tau_l + th_l[j].scale(g.tf_next - g.lb - own);
                tau_r = tau_r + th_r[j].scale(g.f_own);
            }
            (c, tau_l, tau_r)
        });
        let mut ledger = Ledger::new(tau_l, tau_r);
        let step = self.level_round(&c).await?;
        ledger.level(&step);
        let (pu, pv, lu, rv) = super::heavy(|| {
            (
                fold_u(&rec, &th_p, step.r_p, |p| (p[0], p[2])),
                fold_v(&rec, step.r_p, |p| (p[3], p[1])),
                fold_u(&rec, &th_l, step.r_l, |p| (p[1], p[3])),
                fold_v(&rec, step.r_r, |p| (p[2], p[0])),
            )
        });
        drop(rec);
        self.finish_proof("ring", [pu, pv], lu, rv, ledger).await?;
        let v = self.verifier_mut();
        v.proven_gates += n as u64;
        v.proofs += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ring::Z64;

    /// Runs of whole gates of at most `max` pairs, a larger gate alone, starts rebased and
    /// every pair kept in order.
    #[test]
    fn records_split_into_runs_of_whole_gates() {
        let lens = [1usize, 2, 5, 1, 1, 3];
        let mut rec = RingPending::<Z64>::default();
        for (j, len) in lens.iter().enumerate() {
            let start = rec.pairs.len();
            rec.pairs
                .extend((0..*len).map(|l| [Z64((10 * j + l) as u64); 4]));
            rec.gates.push(GateRec {
                start,
                len: *len,
                lb: Z64(j as u64),
                f_own: Z64(0),
                tf_next: Z64(0),
            });
        }
        let all_pairs = rec.pairs.clone();
        let chunks = rec.chunks(3);
        let shape: Vec<Vec<usize>> = chunks
            .iter()
            .map(|c| c.gates.iter().map(|g| g.len).collect())
            .collect();
        assert_eq!(shape, vec![vec![1, 2], vec![5], vec![1, 1], vec![3]]);
        let mut seen = Vec::new();
        for c in &chunks {
            let mut next = 0;
            for g in &c.gates {
                assert_eq!(g.start, next);
                next += g.len;
            }
            assert_eq!(next, c.pairs.len());
            seen.extend_from_slice(&c.pairs);
        }
        assert_eq!(seen, all_pairs);
        let lbs: Vec<u64> = chunks
            .iter()
            .flat_map(|c| c.gates.iter().map(|g| g.lb.0))
            .collect();
        assert_eq!(lbs, (0..lens.len() as u64).collect::<Vec<_>>());
    }
}
