//! The local arithmetic of the AND-gate proof (`and_proof`), kept apart from its rounds.
//!
//! The proof's vectors have one entry per gate, but the first levels never materialise
//! them: after the level-1 fold, entry s of a *group* g of words is
//! u_{g,s} = X^s Σ_q α_{g,q} b_{g,q,s} (U side, P and V_L) and v_{g,s} = Σ_q β_q c_{g,q,s}
//! (V side, P and V_R) for bit-words b, c and field coefficients α (per group) and β
//! (global); materialised entries carry X^s on the V side instead. Then Σ_s u_{g,s} v_{h,s} = Σ_{q,q'} α_{g,q} β_{q'} · (b_{g,q} ∧ c_{h,q'}) read
//! as a field element: a level costs about Q² field products per pair of groups instead
//! of one per gate, and a fold only rescales coefficients (the bit-words stay in place,
//! Q doubles as the groups halve). Once Q reaches `MAX_TERMS` the entries are
//! materialised and the halving continues on plain vectors. Every kernel is generic over
//! the multiplication so that it compiles to the carry-less multiply instruction.
//! This module holds no rounds, no randomness and no record keeping.

use super::gf64::{dispatch_mul, Gf64, GfMul, Wide};
use super::recursion::add3;
use super::AndWord;

/// Coefficients (c0, c1, c2) of a level's polynomial.
type Coeffs = super::recursion::Coeffs<Gf64>;

/// Terms per group at which entries are materialised. A group level costs about 4 W q
/// field products for W words (so 64 W at q = 16) and leaves 128 W / q entries, each of
/// which costs about 7 products over the plain levels that follow: 16 is the cheapest
/// point (`cargo run --release --example proof_probe` measures it).
pub(crate) const MAX_TERMS: usize = 16;

/// Terms per table of subset sums when materialising (2^CHUNK entries per table).
const CHUNK: usize = 8;

/// A U side's two vectors (coefficients, bit-words) handed back for reuse.
pub(crate) type Recycled = (Vec<Gf64>, Vec<u64>);

/// The group form's vectors kept between proofs, so that each proof reuses the previous
/// one's allocations instead of faulting in fresh pages: the two U sides' coefficients
/// and bit-words, the two V sides' bit-words, and the three weight vectors.
#[derive(Default)]
pub(crate) struct GroupBufs {
    pub u: [Recycled; 2],
    pub v: [Vec<u64>; 2],
    pub thetas: [Vec<Gf64>; 3],
}

/// The U side in group form: `q` terms per group, group-major.
pub(crate) struct USide {
    pub q: usize,
    pub coef: Vec<Gf64>,
    pub bits: Vec<u64>,
}

/// The V side in group form: `q` global coefficients, per-group bit-words.
pub(crate) struct VSide {
    pub q: usize,
    pub coef: Vec<Gf64>,
    pub bits: Vec<u64>,
}

impl USide {
    /// After the level-1 fold at r: θ_w X^s (a_s + (a_s ⊕ b_s) r) for words (a, b), in
    /// `coef` and `bits` (cleared first: their allocations are reused).
    pub fn from_words(
        words: impl Iterator<Item = (u64, u64)>,
        th: &[Gf64],
        r: Gf64,
        (mut coef, mut bits): Recycled,
    ) -> Self {
        coef.clear();
        bits.clear();
        coef.reserve(2 * th.len());
        bits.reserve(2 * th.len());
        for ((a, b), t) in words.zip(th) {
            coef.extend([*t, *t]);
            bits.extend([a, a ^ b]);
        }
        scale_runs(&mut coef, 1, Gf64::ONE, r);
        USide { q: 2, coef, bits }
    }

    pub fn groups(&self) -> usize {
        self.bits.len() / self.q
    }

    /// Pads to an even number of groups with an empty one.
    pub fn pad(&mut self) {
        if self.groups() % 2 == 1 {
            self.coef.extend(std::iter::repeat_n(Gf64::ZERO, self.q));
            self.bits.extend(std::iter::repeat_n(0, self.q));
        }
    }

    /// Folds pairs of groups at r: (1 + r) · first + r · second.
    pub fn fold(&mut self, r: Gf64) {
        fold_u_coef(&mut self.coef, self.q, r);
        self.q *= 2;
    }

    /// The entries, group-major, 64 per group, *without* their factor X^s: the V side
    /// carries it instead (`VSide::materialise`), which leaves every inner product and
    /// every fold unchanged and makes each entry a sum of lookups in tables of subset
    /// sums, one table per [`CHUNK`] terms. Writes into `out`, reusing its allocation.
    pub fn materialise_into(&self, out: &mut Vec<Gf64>) {
        self.materialise_groups(0, self.groups(), out);
    }

    /// The entries of groups g0..g1 (as [`USide::materialise_into`]), into `out`.
    pub fn materialise_groups(&self, g0: usize, g1: usize, out: &mut Vec<Gf64>) {
        let q = self.q;
        assert!(q <= MAX_TERMS, "group form with {q} terms");
        let (coef, bits) = (&self.coef[g0 * q..g1 * q], &self.bits[g0 * q..g1 * q]);
        if super::gfni::materialise_u(q, coef, bits, out).is_some() {
            return;
        }
        materialise_u_portable(q, coef, bits, out);
    }
}

/// [`USide::materialise_groups`] by tables of subset sums, on any CPU.
fn materialise_u_portable(q: usize, coef: &[Gf64], bits: &[u64], out: &mut Vec<Gf64>) {
    // Indices come 8 bits (terms) at a time; the tables here are per group, so they
    // take 4 terms each (16 entries) rather than 8 (256 entries for 64 lookups).
    let k = q.min(CHUNK);
    let nib = k.min(4);
    let mask = (1usize << nib) - 1;
    out.clear();
    out.resize(bits.len() / q * 64, Gf64::ZERO);
    let mut tables = vec![Gf64::ZERO; (q / nib) << nib];
    for ((c, b), dst) in coef
        .chunks_exact(q)
        .zip(bits.chunks_exact(q))
        .zip(out.chunks_exact_mut(64))
    {
        for (cc, t) in c.chunks_exact(nib).zip(tables.chunks_exact_mut(1 << nib)) {
            subset_sums(cc, t);
        }
        let mut idx = [[0u8; 64]; MAX_TERMS / CHUNK];
        for (bb, ix) in b.chunks_exact(k).zip(idx.iter_mut()) {
            indices(bb, ix);
        }
        // Table j holds terms nib·j …: its index is nibble j % (k / nib) of idx[j / (k / nib)].
        let per = k / nib;
        for (s, d) in dst.iter_mut().enumerate() {
            *d = tables
                .chunks_exact(1 << nib)
                .enumerate()
                .fold(Gf64::ZERO, |acc, (j, t)| {
                    let i = idx[j / per][s] as usize >> (nib * (j % per));
                    acc + t[i & mask]
                });
        }
    }
}

impl VSide {
    /// After the level-1 fold at r: c_s + (c_s ⊕ d_s) r for words (c, d), in `bits`
    /// (cleared first: its allocation is reused).
    pub fn from_words(
        words: impl Iterator<Item = (u64, u64)>,
        r: Gf64,
        mut bits: Vec<u64>,
    ) -> Self {
        bits.clear();
        for (c, d) in words {
            bits.extend([c, c ^ d]);
        }
        VSide {
            q: 2,
            coef: vec![Gf64::ONE, r],
            bits,
        }
    }

    pub fn groups(&self) -> usize {
        self.bits.len() / self.q
    }

    pub fn pad(&mut self) {
        if self.groups() % 2 == 1 {
            self.bits.extend(std::iter::repeat_n(0, self.q));
        }
    }

    pub fn fold(&mut self, r: Gf64) {
        let one_r = Gf64::ONE + r;
        let mut coef: Vec<Gf64> = self.coef.iter().map(|c| one_r * *c).collect();
        coef.extend(self.coef.iter().map(|c| r * *c));
        self.coef = coef;
        self.q *= 2;
    }

    /// The entries, group-major, 64 per group, times X^s (see `USide::materialise_into`).
    pub fn materialise_into(&self, out: &mut Vec<Gf64>) {
        self.materialise_groups(0, self.groups(), out);
    }

    /// The entries of groups g0..g1 (as [`VSide::materialise_into`]), into `out`.
    pub fn materialise_groups(&self, g0: usize, g1: usize, out: &mut Vec<Gf64>) {
        let q = self.q;
        assert!(q <= MAX_TERMS, "group form with {q} terms");
        let bits = &self.bits[g0 * q..g1 * q];
        if super::gfni::materialise_v(q, &self.coef, bits, out).is_some() {
            return;
        }
        materialise_v_portable(q, &self.coef, bits, out);
    }
}

/// [`VSide::materialise_groups`] by tables of subset sums, on any CPU.
fn materialise_v_portable(q: usize, coef: &[Gf64], bits: &[u64], out: &mut Vec<Gf64>) {
    let k = q.min(CHUNK);
    let chunks = q / k;
    // tables[((c · 64 + s) << k) | i] = X^s · (subset sum i of chunk c).
    let mut tables = Vec::with_capacity((chunks * 64) << k);
    let mut row = vec![Gf64::ZERO; 1 << k];
    for cc in coef.chunks_exact(k) {
        subset_sums(cc, &mut row);
        for _ in 0..64 {
            tables.extend_from_slice(&row);
            row.iter_mut().for_each(|e| *e = e.mul_x());
        }
    }
    out.clear();
    out.resize(bits.len() / q * 64, Gf64::ZERO);
    let mut idx = [[0u8; 64]; MAX_TERMS / CHUNK];
    for (b, dst) in bits.chunks_exact(q).zip(out.chunks_exact_mut(64)) {
        for (bb, ix) in b.chunks_exact(k).zip(idx.iter_mut()) {
            indices(bb, ix);
        }
        for (s, d) in dst.iter_mut().enumerate() {
            *d = idx[..chunks]
                .iter()
                .enumerate()
                .fold(Gf64::ZERO, |acc, (c, ix)| {
                    acc + tables[((c * 64 + s) << k) | ix[s] as usize]
                });
        }
    }
}

/// table[i] = the sum of coef[q] over the set bits q of i.
fn subset_sums(coef: &[Gf64], table: &mut [Gf64]) {
    table[0] = Gf64::ZERO;
    for (q, c) in coef.iter().enumerate() {
        let half = 1 << q;
        for i in 0..half {
            table[half + i] = table[i] + *c;
        }
    }
}

/// For every bit position s, bit s of each word of `b` (at most 8 words) as bits 0, 1, …
/// of `out[s]`: eight 8×8 bit-matrix transposes instead of 64 gathers.
#[inline]
fn indices(b: &[u64], out: &mut [u8; 64]) {
    debug_assert!(b.len() <= 8);
    for byte in 0..8 {
        // Row q of the matrix is byte `byte` of word q: bit 8q + t is bit 8 byte + t of w_q.
        let mut x = b.iter().enumerate().fold(0u64, |acc, (q, w)| {
            acc | (w >> (8 * byte) & 0xff) << (8 * q)
        });
        // Transpose (Hacker's Delight 7-3): bit 8t + q becomes bit 8q + t.
        let t = (x ^ (x >> 7)) & 0x00aa_00aa_00aa_00aa;
        x ^= t ^ (t << 7);
        let t = (x ^ (x >> 14)) & 0x0000_cccc_0000_cccc;
        x ^= t ^ (t << 14);
        let t = (x ^ (x >> 28)) & 0x0000_0000_f0f0_f0f0;
        x ^= t ^ (t << 28);
        out[8 * byte..8 * byte + 8].copy_from_slice(&x.to_le_bytes());
    }
}

/// Bit s of each word of `b`, as bits 0, 1, … of an index (the definition `indices`
/// is tested against).
#[cfg(test)]
fn gather(b: &[u64], s: usize) -> usize {
    b.iter()
        .enumerate()
        .fold(0, |acc, (q, w)| acc | ((w >> s & 1) as usize) << q)
}

/// Entry k of `x` times `first` where (start + k) mod 2q < q, else times `second`. A plain
/// loop, not a closure: a closure would be compiled apart from the dispatched kernel,
/// without the carry-less multiply inlined.
#[inline(always)]
fn scale_runs_k<M: GfMul>(x: &mut [Gf64], q: usize, first: Gf64, second: Gf64, start: usize) {
    for (k, c) in x.iter_mut().enumerate() {
        let f = if (start + k) % (2 * q) < q {
            first
        } else {
            second
        };
        *c = M::mul(*c, f);
    }
}

dispatch_mul!(fn scale_runs_rest = scale_runs_k(x: &mut [Gf64], q: usize, first: Gf64, second: Gf64, start: usize) -> ());

/// In every run of 2q entries, the first q times `first` and the next q times `second`
/// (with 512-bit carry-less multiplies where the CPU has them).
fn scale_runs(x: &mut [Gf64], q: usize, first: Gf64, second: Gf64) {
    let done = super::gf64_wide::scale_runs(x, q, first, second).unwrap_or(0);
    scale_runs_rest(&mut x[done..], q, first, second, done);
}

/// Folds the U side's coefficients at r: (1 + r) · first group + r · second, for every
/// pair of groups of q terms.
fn fold_u_coef(coef: &mut [Gf64], q: usize, r: Gf64) {
    scale_runs(coef, q, Gf64::ONE + r, r);
}

/// Σ_s u_{g,s} v_{h,s} for one U group and one V group, unreduced (sums of products are
/// reduced once, by the caller).
#[inline(always)]
fn cross<M: GfMul>(uc: &[Gf64], ub: &[u64], vc: &[Gf64], vb: &[u64]) -> Wide {
    let mut acc = Wide::default();
    for (c, b) in uc.iter().zip(ub) {
        let mut t = Wide::default();
        for (d, w) in vc.iter().zip(vb) {
            t = t.plus(M::mul_wide(*d, Gf64(b & w)));
        }
        acc = acc.plus(M::mul_wide(*c, t.reduce()));
    }
    acc
}

#[inline(always)]
fn group_coeffs_k<M: GfMul>(q: usize, uc: &[Gf64], ub: &[u64], vc: &[Gf64], vb: &[u64]) -> Coeffs {
    let (mut c0, mut m11, mut x) = (Wide::default(), Wide::default(), Wide::default());
    let uc = uc.chunks_exact(2 * q);
    let ub = ub.chunks_exact(2 * q);
    let vb = vb.chunks_exact(2 * q);
    for ((uc, ub), vb) in uc.zip(ub).zip(vb) {
        let (uc0, uc1) = uc.split_at(q);
        let (ub0, ub1) = ub.split_at(q);
        let (vb0, vb1) = vb.split_at(q);
        c0 = c0.plus(cross::<M>(uc0, ub0, vc, vb0));
        m11 = m11.plus(cross::<M>(uc1, ub1, vc, vb1));
        x = x
            .plus(cross::<M>(uc0, ub0, vc, vb1))
            .plus(cross::<M>(uc1, ub1, vc, vb0));
    }
    let (c0, m11, x) = (c0.reduce(), m11.reduce(), x.reduce());
    // p = Σ (u0 + (u0 + u1) X)(v0 + (v0 + v1) X): c1 = Σ u0 v1 + u1 v0, c2 = c0 + m11 + c1.
    [c0, x, c0 + m11 + x]
}

dispatch_mul!(
    fn group_coeffs_scalar_k = group_coeffs_k(q: usize, uc: &[Gf64], ub: &[u64], vc: &[Gf64], vb: &[u64]) -> Coeffs
);

/// [`group_coeffs`] on one core, portably (the definition the wide kernel is tested
/// against).
#[cfg(test)]
fn group_coeffs_scalar(u: &USide, v: &VSide) -> Coeffs {
    group_coeffs_scalar_k(u.q, &u.coef, &u.bits, &v.coef, &v.bits)
}

/// The coefficients over the pairs of groups in these slices (whole pairs): with 512-bit
/// carry-less multiplies where the CPU has them (2, 4 and 8 terms), portably elsewhere.
fn group_coeffs_part(q: usize, uc: &[Gf64], ub: &[u64], vc: &[Gf64], vb: &[u64]) -> Coeffs {
    match super::gf64_wide::group_sums(q, uc, ub, vc, vb) {
        // c1 = Σ u0 v1 + u1 v0, c2 = c0 + m11 + c1 (as in `group_coeffs_k`).
        Some([c0, m11, x]) => [c0, x, c0 + m11 + x],
        None => group_coeffs_scalar_k(q, uc, ub, vc, vb),
    }
}

/// The prover's coefficients over pairs of groups (an even number of them), the pairs
/// split over the machine's cores.
pub(crate) fn group_coeffs(u: &USide, v: &VSide) -> Coeffs {
    let q = u.q;
    crate::engine::par::sum_ranges(
        u.bits.len(),
        2 * q,
        &|s, e| group_coeffs_part(q, &u.coef[s..e], &u.bits[s..e], &v.coef, &v.bits[s..e]),
        &add3,
    )
}

#[inline(always)]
fn level1_k<M: GfMul>(words: &[AndWord], th: &[Gf64]) -> Coeffs {
    let mut c = [Gf64::ZERO; 3];
    for (w, t) in words.iter().zip(th) {
        let du = w.ax ^ w.ay;
        let dv = w.bx ^ w.by;
        c[0] += M::mul(*t, Gf64(w.ax & w.by));
        c[1] += M::mul(*t, Gf64((w.ax & dv) ^ (du & w.by)));
        c[2] += M::mul(*t, Gf64(du & dv));
    }
    c
}

dispatch_mul!(
    /// The prover's level-1 coefficients over whole words: a gate's two terms
    /// (θ x_i, y_{i+1}) and (θ y_i, x_{i+1}) form its pair.
    fn level1 = level1_k(words: &[AndWord], th: &[Gf64]) -> Coeffs
);

#[inline(always)]
fn taus_k<M: GfMul>(words: &[AndWord], th_l: &[Gf64], th_r: &[Gf64]) -> (Gf64, Gf64) {
    let (mut l, mut r) = (Gf64::ZERO, Gf64::ZERO);
    for ((w, tl), tr) in words.iter().zip(th_l).zip(th_r) {
        l += M::mul(*tl, Gf64(w.tf_next ^ (w.bx & w.by)));
        r += M::mul(*tr, Gf64(w.f_own));
    }
    (l, r)
}

dispatch_mul!(
    /// The verifiers' parts of the claimed sum: τ_L of the next party's proof and τ_R of
    /// the previous party's.
    fn taus = taus_k(words: &[AndWord], th_l: &[Gf64], th_r: &[Gf64]) -> (Gf64, Gf64)
);

#[inline(always)]
fn vec_coeffs_k<M: GfMul>(u: &[Gf64], v: &[Gf64]) -> Coeffs {
    let mut c = [Gf64::ZERO; 3];
    for (pu, pv) in u.chunks_exact(2).zip(v.chunks_exact(2)) {
        let (bu, bv) = (pu[0] + pu[1], pv[0] + pv[1]);
        let c0 = M::mul(pu[0], pv[0]);
        let c2 = M::mul(bu, bv);
        c[0] += c0;
        c[2] += c2;
        c[1] += M::mul(pu[1], pv[1]) + c0 + c2;
    }
    c
}

dispatch_mul!(
    fn vec_coeffs_rest = vec_coeffs_k(u: &[Gf64], v: &[Gf64]) -> Coeffs
);

/// The prover's coefficients for plain vectors of even length: with 512-bit carry-less
/// multiplies where the CPU has them, the remainder (and everything elsewhere) portably.
pub(crate) fn vec_coeffs(u: &[Gf64], v: &[Gf64]) -> Coeffs {
    let (head, n) = super::gf64_wide::coeffs_prefix(u, v).unwrap_or(([Gf64::ZERO; 3], 0));
    add3(head, vec_coeffs_rest(&u[n..], &v[n..]))
}

#[inline(always)]
fn vec_fold_k<M: GfMul>(x: &mut Vec<Gf64>, r: Gf64) {
    let half = x.len() / 2;
    let done = super::gf64_wide::fold_prefix(x, r).unwrap_or(0) / 2;
    for k in done..half {
        let (a, b) = (x[2 * k], x[2 * k + 1]);
        x[k] = a + M::mul(a + b, r);
    }
    x.truncate(half);
}

dispatch_mul!(
    /// Folds a plain vector of even length in place: x'_k = x_{2k} + (x_{2k} + x_{2k+1}) r
    /// (with 512-bit carry-less multiplies where the CPU has them).
    fn vec_fold = vec_fold_k(x: &mut Vec<Gf64>, r: Gf64) -> ()
);

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn mat_u(u: &USide) -> Vec<Gf64> {
        let mut out = Vec::new();
        u.materialise_into(&mut out);
        out
    }

    fn mat_v(v: &VSide) -> Vec<Gf64> {
        let mut out = Vec::new();
        v.materialise_into(&mut out);
        out
    }

    fn ip(u: &[Gf64], v: &[Gf64]) -> Gf64 {
        u.iter().zip(v).fold(Gf64::ZERO, |a, (x, y)| a + *x * *y)
    }

    #[test]
    fn indices_are_gathered_bits() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        for k in 1..=8 {
            let b: Vec<u64> = (0..k).map(|_| rng.gen()).collect();
            let mut out = [0u8; 64];
            indices(&b, &mut out);
            for (s, o) in out.iter().enumerate() {
                assert_eq!(*o as usize, gather(&b, s), "k {k}, s {s}");
            }
        }
    }

    /// The portable kernels agree with the dispatched ones (GFNI where the CPU has it).
    #[test]
    fn portable_materialise_matches_dispatch() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for q in [2usize, 4, 8, 16] {
            let groups = 3;
            let u = USide {
                q,
                coef: (0..q * groups).map(|_| Gf64::random(&mut rng)).collect(),
                bits: (0..q * groups).map(|_| rng.gen()).collect(),
            };
            let v = VSide {
                q,
                coef: (0..q).map(|_| Gf64::random(&mut rng)).collect(),
                bits: u.bits.iter().map(|b| !b).collect(),
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            materialise_u_portable(q, &u.coef, &u.bits, &mut a);
            assert_eq!(a, mat_u(&u), "U, q {q}");
            materialise_v_portable(q, &v.coef, &v.bits, &mut b);
            assert_eq!(b, mat_v(&v), "V, q {q}");
        }
    }

    /// The group form, its coefficients and its folds agree with the plain vectors.
    #[test]
    fn group_form_matches_plain_vectors() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for words in [1usize, 2, 3, 7, 16, 33] {
            let w: Vec<(u64, u64, u64, u64)> = (0..words).map(|_| rng.gen()).collect();
            let th: Vec<Gf64> = (0..words).map(|_| Gf64::random(&mut rng)).collect();
            let r1 = Gf64::random(&mut rng);
            let mut u =
                USide::from_words(w.iter().map(|x| (x.0, x.1)), &th, r1, Default::default());
            let mut v = VSide::from_words(w.iter().map(|x| (x.2, x.3)), r1, Vec::new());
            let mut pu = mat_u(&u);
            let mut pv = mat_v(&v);
            // The level-1 fold, written out per gate.
            for (k, x) in w.iter().enumerate() {
                // X^s rides on the v side; every product u v is as defined.
                let mut xs = Gf64::ONE;
                for s in 0..64 {
                    let bit = |y: u64| Gf64(y >> s & 1);
                    let want_u = th[k] * (bit(x.0) + (bit(x.0) + bit(x.1)) * r1);
                    let want_v = xs * (bit(x.2) + (bit(x.2) + bit(x.3)) * r1);
                    assert_eq!(pu[64 * k + s], want_u);
                    assert_eq!(pv[64 * k + s], want_v);
                    xs = xs.mul_x();
                }
            }
            while u.groups() > 1 && u.q < MAX_TERMS {
                u.pad();
                v.pad();
                pu = mat_u(&u);
                pv = mat_v(&v);
                // Group pairs are entry pairs (g, s), (g + 1, s): reorder the plain vectors.
                let c = group_coeffs(&u, &v);
                assert_eq!(c, group_coeffs_scalar(&u, &v), "q {}", u.q);
                let (mut eu, mut ev) = (Vec::new(), Vec::new());
                let g = u.groups();
                for k in 0..g / 2 {
                    for s in 0..64 {
                        eu.extend([pu[128 * k + s], pu[128 * k + 64 + s]]);
                        ev.extend([pv[128 * k + s], pv[128 * k + 64 + s]]);
                    }
                }
                assert_eq!(c, vec_coeffs(&eu, &ev));
                assert_eq!(c[1] + c[2], ip(&pu, &pv));
                let r = Gf64::random(&mut rng);
                u.fold(r);
                v.fold(r);
                vec_fold(&mut eu, r);
                vec_fold(&mut ev, r);
                pu = mat_u(&u);
                pv = mat_v(&v);
                assert_eq!(pu, eu);
                assert_eq!(pv, ev);
            }
        }
    }
}
