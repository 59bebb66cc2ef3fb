//! The hottest loops of the AND-gate proof with 512-bit carry-less multiplies
//! (VPCLMULQDQ: four GF(2^64) products per instruction), where the CPU has them (checked
//! once at run time): on plain levels, folding a vector at a challenge and the prover's
//! coefficients; on group levels (`and_levels`), the prover's sums over pairs of groups.
//! Reductions are deferred to the end. Each returns `None` where the instructions are
//! missing so that the caller runs the portable kernel; each is tested against it. This
//! module holds arithmetic only.

use super::gf64::{Gf64, Wide};

/// Whether the CPU has the instructions (AVX-512 F and VPCLMULQDQ).
#[cfg(target_arch = "x86_64")]
fn available() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("vpclmulqdq")
    })
}

/// x'_k = x_{2k} + (x_{2k} + x_{2k+1}) r in place for the first 8⌊len/8⌋ entries (four
/// pairs at a time); returns how many entries it consumed, or `None` without the
/// instructions.
pub(crate) fn fold_prefix(x: &mut [Gf64], r: Gf64) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the features were detected at run time.
        return Some(unsafe { fold_avx512(x, r) });
    }
    let _ = (x, r);
    None
}

/// The group form's U-side fold (`and_levels`): in every run of 2q entries, the first q
/// times `first` and the next q times `second`, for the first 8⌊len/8⌋ entries (q a power
/// of two); returns how many entries it scaled, or `None` without the instructions.
pub(crate) fn scale_runs(x: &mut [Gf64], q: usize, first: Gf64, second: Gf64) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if available() && q.is_power_of_two() {
        // SAFETY: the features were detected at run time.
        return Some(unsafe { scale_runs_avx512(x, q, first, second) });
    }
    let _ = (x, q, first, second);
    None
}

/// Σ over pairs of (u0 v0, u0 v1 + u1 v0, (u0 + u1)(v0 + v1)) for the first 8⌊len/8⌋
/// entries, reduced once; with how many entries it consumed.
pub(crate) fn coeffs_prefix(u: &[Gf64], v: &[Gf64]) -> Option<([Gf64; 3], usize)> {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the features were detected at run time.
        return Some(unsafe { coeffs_avx512(u, v) });
    }
    let _ = (u, v);
    None
}

/// The group-form sums over pairs of groups with `q` ∈ {2, 4, 8} terms (`and_levels`): for
/// each pair (U groups g0, g1 with coefficients `uc` and bit-words `ub`; V groups h0, h1
/// with bit-words `vb` and the global coefficients `vc`) the cross sums
/// Σ_c α_c Σ_d β_d (b_c ∧ c_d) of (g0, h0), of (g1, h1), and of (g0, h1) plus (g1, h0),
/// each summed over all pairs. `None` without the instructions or for another `q`.
pub(crate) fn group_sums(
    q: usize,
    uc: &[Gf64],
    ub: &[u64],
    vc: &[Gf64],
    vb: &[u64],
) -> Option<[Gf64; 3]> {
    #[cfg(target_arch = "x86_64")]
    if available() && matches!(q, 2 | 4 | 8) {
        assert!(uc.len() == ub.len() && ub.len() == vb.len() && vc.len() == q);
        assert_eq!(ub.len() % (2 * q), 0, "pairs of groups");
        // SAFETY: the features were detected at run time; the lengths are checked above.
        return Some(unsafe { group_sums_avx512(q, uc, ub, vc, vb) });
    }
    let _ = (q, uc, ub, vc, vb);
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// X^64 = X^4 + X^3 + X + 1.
    const LOW: i64 = 0x1b;

    /// Reduces the four 128-bit products of `p` (one per 128-bit lane, low half first) to
    /// GF(2^64) elements in the low half of each lane.
    #[inline]
    #[target_feature(enable = "avx512f,vpclmulqdq")]
    pub(super) fn reduce4(p: __m512i) -> __m512i {
        let k = _mm512_set1_epi64(LOW);
        // hi · (X^4 + X^3 + X + 1): at most 68 bits.
        let t = _mm512_clmulepi64_epi128::<0x01>(p, k);
        // The ≤ 4 bits above X^63 fold once more.
        let u = _mm512_clmulepi64_epi128::<0x01>(t, k);
        _mm512_xor_si512(_mm512_xor_si512(p, t), u)
    }

    /// Gathers the low halves of the four lanes of `a` and of `b` into eight words.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn low_halves(a: __m512i, b: __m512i) -> __m512i {
        let idx = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
        _mm512_permutex2var_epi64(a, idx, b)
    }

    /// XOR of the four lanes' 128-bit values, as (low, high).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn fold_lanes(a: __m512i) -> (u64, u64) {
        let mut w = [0u64; 8];
        // SAFETY: w has room for 64 bytes.
        unsafe { _mm512_storeu_si512(w.as_mut_ptr() as *mut _, a) };
        (w[0] ^ w[2] ^ w[4] ^ w[6], w[1] ^ w[3] ^ w[5] ^ w[7])
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,vpclmulqdq")]
unsafe fn fold_avx512(x: &mut [Gf64], r: Gf64) -> usize {
    use std::arch::x86_64::*;
    let n = x.len() / 16 * 16;
    let rv = _mm512_set1_epi64(r.0 as i64);
    let p = x.as_mut_ptr() as *mut u64;
    let mut k = 0;
    while k < n {
        // Two loads of four pairs (a, b) each; lanes hold (a_j, b_j).
        let x0 = _mm512_loadu_si512(p.add(k) as *const _);
        let x1 = _mm512_loadu_si512(p.add(k + 8) as *const _);
        // (b_j, a_j) swapped within lanes, so a ⊕ b sits in both halves.
        let d0 = _mm512_xor_si512(x0, _mm512_shuffle_epi32::<0x4e>(x0));
        let d1 = _mm512_xor_si512(x1, _mm512_shuffle_epi32::<0x4e>(x1));
        let m0 = x86::reduce4(_mm512_clmulepi64_epi128::<0x00>(d0, rv));
        let m1 = x86::reduce4(_mm512_clmulepi64_epi128::<0x00>(d1, rv));
        let out = _mm512_xor_si512(x86::low_halves(x0, x1), x86::low_halves(m0, m1));
        // Output k/2 .. k/2 + 8 lies at or before the inputs just read.
        _mm512_storeu_si512(p.add(k / 2) as *mut _, out);
        k += 16;
    }
    n
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,vpclmulqdq")]
unsafe fn scale_runs_avx512(x: &mut [Gf64], q: usize, first: Gf64, second: Gf64) -> usize {
    use std::arch::x86_64::*;
    let n = x.len() / 8 * 8;
    let factor = |k: usize| {
        if k % (2 * q) < q {
            first.0 as i64
        } else {
            second.0 as i64
        }
    };
    // Entry k's factor; with 2q ≤ 8 the pattern repeats in every block of eight, else a
    // block lies within one run of q and takes one factor.
    let pattern = lanes(|j| factor(j as usize));
    let p = x.as_mut_ptr() as *mut u64;
    let mut k = 0;
    while k < n {
        let m = if 2 * q <= 8 {
            pattern
        } else {
            _mm512_set1_epi64(factor(k))
        };
        let v = _mm512_loadu_si512(p.add(k) as *const _);
        // Low and high qword of each lane times its own factor, reduced in place.
        let lo = x86::reduce4(_mm512_clmulepi64_epi128::<0x00>(v, m));
        let hi = x86::reduce4(_mm512_clmulepi64_epi128::<0x11>(v, m));
        _mm512_storeu_si512(p.add(k) as *mut _, _mm512_unpacklo_epi64(lo, hi));
        k += 8;
    }
    n
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,vpclmulqdq")]
unsafe fn coeffs_avx512(u: &[Gf64], v: &[Gf64]) -> ([Gf64; 3], usize) {
    use std::arch::x86_64::*;
    let n = u.len().min(v.len()) / 8 * 8;
    let (pu, pv) = (u.as_ptr() as *const u64, v.as_ptr() as *const u64);
    let (mut c0, mut m11, mut c2) = (
        _mm512_setzero_si512(),
        _mm512_setzero_si512(),
        _mm512_setzero_si512(),
    );
    let mut k = 0;
    while k < n {
        let a = _mm512_loadu_si512(pu.add(k) as *const _);
        let b = _mm512_loadu_si512(pv.add(k) as *const _);
        let sa = _mm512_xor_si512(a, _mm512_shuffle_epi32::<0x4e>(a));
        let sb = _mm512_xor_si512(b, _mm512_shuffle_epi32::<0x4e>(b));
        c0 = _mm512_xor_si512(c0, _mm512_clmulepi64_epi128::<0x00>(a, b));
        m11 = _mm512_xor_si512(m11, _mm512_clmulepi64_epi128::<0x11>(a, b));
        c2 = _mm512_xor_si512(c2, _mm512_clmulepi64_epi128::<0x00>(sa, sb));
        k += 8;
    }
    let red = |acc: __m512i| {
        let (lo, hi) = x86::fold_lanes(acc);
        // SAFETY: called inside this function, whose features were detected.
        let p = _mm512_set_epi64(0, 0, 0, 0, 0, 0, hi as i64, lo as i64);
        let (w, _) = x86::fold_lanes(x86::reduce4(p));
        Gf64(w)
    };
    let (c0, m11, c2) = (red(c0), red(m11), red(c2));
    // c1 = u0 v1 + u1 v0 = c2 + c0 + m11.
    ([c0, c2 + c0 + m11, c2], n)
}

/// Lane k of an index vector: `f(k)`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn lanes(f: impl Fn(i64) -> i64) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    _mm512_setr_epi64(f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7))
}

/// `group_sums` with 8 products per pair of instructions (4 at q = 2): a vector holds 8 / q U terms
/// against one V group, qword k being term k / q against V word k % q; the two products
/// of a 128-bit lane belong to one term, so each lane's sum is multiplied by its term's
/// coefficient (low and high halves apart, 192 bits unreduced) and every lane accumulates.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,vpclmulqdq")]
unsafe fn group_sums_avx512(
    q: usize,
    uc: &[Gf64],
    ub: &[u64],
    vc: &[Gf64],
    vb: &[u64],
) -> [Gf64; 3] {
    use std::arch::x86_64::*;
    let qi = q as i64;
    // Terms per vector: 8 / q, but never past the group (at q = 2, half the lanes idle).
    let per = (8 / q).min(q);
    let part = (1u8 << per) - 1;
    let vmask = ((1u16 << q) - 1) as u8;
    let (term, word) = (lanes(|k| k / qi), lanes(|k| k % qi));
    let vcr = _mm512_permutexvar_epi64(
        word,
        _mm512_maskz_loadu_epi64(vmask, vc.as_ptr() as *const _),
    );
    // (lo, hi) accumulators of (g0, h0), (g1, h1) and the two mixed crosses.
    let mut acc = [[_mm512_setzero_si512(); 2]; 3];
    let mut base = 0;
    while base < ub.len() {
        let v = [0, q].map(|o| {
            let w = _mm512_maskz_loadu_epi64(vmask, vb.as_ptr().add(base + o) as *const _);
            _mm512_permutexvar_epi64(word, w)
        });
        for half in 0..2 {
            for t in (0..q).step_by(per) {
                let at = base + half * q + t;
                let b = _mm512_permutexvar_epi64(
                    term,
                    _mm512_maskz_loadu_epi64(part, ub.as_ptr().add(at) as *const _),
                );
                let a = _mm512_permutexvar_epi64(
                    term,
                    _mm512_maskz_loadu_epi64(part, uc.as_ptr().add(at) as *const _),
                );
                for (h, vh) in v.iter().enumerate() {
                    let x = _mm512_and_si512(b, *vh);
                    let s = _mm512_xor_si512(
                        _mm512_clmulepi64_epi128::<0x00>(vcr, x),
                        _mm512_clmulepi64_epi128::<0x11>(vcr, x),
                    );
                    let slot = if half == h { half } else { 2 };
                    let [lo, hi] = &mut acc[slot];
                    *lo = _mm512_xor_si512(*lo, _mm512_clmulepi64_epi128::<0x00>(a, s));
                    *hi = _mm512_xor_si512(*hi, _mm512_clmulepi64_epi128::<0x10>(a, s));
                }
            }
        }
        base += 2 * q;
    }
    acc.map(|[lo, hi]| {
        let (l0, l1) = x86::fold_lanes(lo);
        let (h0, h1) = x86::fold_lanes(hi);
        // l0 + (l1 + h0) X^64 + h1 X^128, with X^128 = (X^64)^2.
        let x64 = Gf64(0x1b);
        Wide(l1 ^ h0, l0).reduce() + Gf64(h1) * (x64 * x64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// The group sums against their definition, with all-ones words among random ones.
    #[test]
    fn group_sums_match_field_arithmetic() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let word = |rng: &mut ChaCha20Rng, i: usize| {
            if i.is_multiple_of(5) {
                u64::MAX
            } else {
                rng.next_u64()
            }
        };
        for q in [2usize, 4, 8] {
            for pairs in [1usize, 3] {
                let n = 2 * q * pairs;
                let uc: Vec<Gf64> = (0..n).map(|i| Gf64(word(&mut rng, i))).collect();
                let ub: Vec<u64> = (0..n).map(|i| word(&mut rng, i + 1)).collect();
                let vb: Vec<u64> = (0..n).map(|i| word(&mut rng, i + 2)).collect();
                let vc: Vec<Gf64> = (0..q).map(|i| Gf64(word(&mut rng, i))).collect();
                let Some(got) = group_sums(q, &uc, &ub, &vc, &vb) else {
                    eprintln!("no AVX-512 here: the portable kernel runs instead");
                    return;
                };
                let cross = |g: usize, h: usize| {
                    let mut s = Gf64::ZERO;
                    for c in 0..q {
                        for d in 0..q {
                            s += uc[g * q + c] * vc[d] * Gf64(ub[g * q + c] & vb[h * q + d]);
                        }
                    }
                    s
                };
                let mut want = [Gf64::ZERO; 3];
                for p in 0..pairs {
                    let (g0, g1) = (2 * p, 2 * p + 1);
                    want[0] += cross(g0, g0);
                    want[1] += cross(g1, g1);
                    want[2] += cross(g0, g1) + cross(g1, g0);
                }
                assert_eq!(got, want, "q {q}, {pairs} pairs");
            }
        }
    }

    /// Scaling runs of q entries by alternating factors, against field arithmetic, for
    /// runs shorter than, equal to and longer than a block of eight, with all-ones
    /// entries (the widest products) among random ones and a tail the kernel leaves.
    #[test]
    fn scale_runs_matches_field_arithmetic() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let (f, g) = (Gf64(u64::MAX), Gf64(rng.next_u64()));
        for q in [1usize, 2, 4, 8, 16, 32] {
            for len in [2 * q, 6 * q, 64 + 2 * q] {
                let x: Vec<Gf64> = (0..len)
                    .map(|i| Gf64(if i % 3 == 0 { u64::MAX } else { rng.next_u64() }))
                    .collect();
                let mut got = x.clone();
                let Some(n) = scale_runs(&mut got, q, f, g) else {
                    eprintln!("no AVX-512 here: the portable kernel runs instead");
                    return;
                };
                assert_eq!(n, len / 8 * 8);
                for k in 0..len {
                    let want = if k >= n {
                        x[k]
                    } else if k % (2 * q) < q {
                        x[k] * f
                    } else {
                        x[k] * g
                    };
                    assert_eq!(got[k], want, "q {q}, len {len}, entry {k}");
                }
            }
        }
    }

    #[test]
    fn wide_kernels_match_field_arithmetic() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for len in [0usize, 2, 8, 16, 18, 64, 98] {
            let u: Vec<Gf64> = (0..len).map(|_| Gf64(rng.next_u64())).collect();
            let v: Vec<Gf64> = (0..len).map(|_| Gf64(rng.next_u64())).collect();
            let r = Gf64(rng.next_u64() | 1 << 63);
            if let Some((c, n)) = coeffs_prefix(&u, &v) {
                assert_eq!(n, len / 8 * 8);
                let mut want = [Gf64::ZERO; 3];
                for (a, b) in u[..n].chunks_exact(2).zip(v[..n].chunks_exact(2)) {
                    want[0] += a[0] * b[0];
                    want[1] += a[0] * b[1] + a[1] * b[0];
                    want[2] += (a[0] + a[1]) * (b[0] + b[1]);
                }
                assert_eq!(c, want, "coefficients, len {len}");
            }
            let mut x = u.clone();
            if let Some(n) = fold_prefix(&mut x, r) {
                assert_eq!(n, len / 16 * 16);
                for k in 0..n / 2 {
                    assert_eq!(
                        x[k],
                        u[2 * k] + (u[2 * k] + u[2 * k + 1]) * r,
                        "fold, len {len}"
                    );
                }
            }
        }
    }
}
