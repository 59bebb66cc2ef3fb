//! Materialising the AND-gate proof's group form (`and_levels`) with GFNI: each entry of a
//! group is Σ_q c_q · bit_s(b_q), a GF(2)-linear map of the 16 bits (bit s of each of the
//! group's bit-words) into GF(2^64), so 8×8 bit-matrix products (`GF2P8AFFINEQB`, 64 bytes
//! per instruction) compute it: per 8 entries two affine products, one byte transpose and
//! one store, where the portable path makes 256 table lookups. The V side then multiplies
//! entry s by X^s with variable shifts. Used where the CPU has AVX-512 F/BW/VBMI and GFNI
//! (checked once at run time); each kernel returns `None` elsewhere so that the caller
//! runs the portable one, and both are tested against it. Arithmetic only: no rounds, no
//! randomness.

use super::gf64::Gf64;

/// Whether the CPU has the instructions.
#[cfg(target_arch = "x86_64")]
fn available() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vbmi")
            && std::arch::is_x86_feature_detected!("gfni")
    })
}

/// Entries of U-side groups: `coef` and `bits` group-major with `q` ≤ 16 terms per group,
/// 64 entries per group, written over `out` (its allocation reused, never zeroed first).
/// `None` without the instructions.
pub(crate) fn materialise_u(
    q: usize,
    coef: &[Gf64],
    bits: &[u64],
    out: &mut Vec<Gf64>,
) -> Option<()> {
    assert_eq!(coef.len(), bits.len());
    materialise(q, Some(coef), &[], bits, out, false)
}

/// Entries of V-side groups: global coefficients `coef` (`q` ≤ 16 of them), per-group
/// bit-words, entry s of a group times X^s. `None` without the instructions.
pub(crate) fn materialise_v(
    q: usize,
    coef: &[Gf64],
    bits: &[u64],
    out: &mut Vec<Gf64>,
) -> Option<()> {
    assert_eq!(coef.len(), q);
    materialise(q, None, coef, bits, out, true)
}

/// Both sides, where the CPU has the instructions.
fn materialise(
    q: usize,
    per_group: Option<&[Gf64]>,
    global: &[Gf64],
    bits: &[u64],
    out: &mut Vec<Gf64>,
    x_powers: bool,
) -> Option<()> {
    assert!((1..=16).contains(&q), "group form with {q} terms");
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the features were detected at run time; the callers checked the lengths.
        unsafe { x86::fill(q, per_group, global, bits, out, x_powers) };
        return Some(());
    }
    let _ = (per_group, global, bits, out, x_powers);
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Gf64;
    use std::arch::x86_64::*;

    /// Byte b of every qword is 1 << b: with a matrix A, `affine(ID, A)` is A's columns.
    const UNIT: i64 = 0x8040_2010_0804_0201_u64 as i64;

    /// A byte permutation index: dst byte p takes src byte `f(p)`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn index(f: impl Fn(usize) -> usize) -> __m512i {
        let mut ix = [0u8; 64];
        for (p, x) in ix.iter_mut().enumerate() {
            *x = f(p) as u8;
        }
        // SAFETY: 64 readable bytes.
        unsafe { _mm512_loadu_si512(ix.as_ptr() as *const _) }
    }

    /// For up to 8 words (missing ones zero), byte s of the result has bit q = bit s of
    /// word q. The words' bytes are first gathered so that qword B holds byte B of each
    /// word in reversed order (one byte permutation); then each qword is an 8×8 bit matrix
    /// whose transpose one affine product with the unit columns gives.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
    fn bit_columns(words: &[u64], gather: __m512i) -> __m512i {
        let mut w = [0u64; 8];
        w[..words.len()].copy_from_slice(words);
        // SAFETY: 64 readable bytes.
        let v = unsafe { _mm512_loadu_si512(w.as_ptr() as *const _) };
        let m = _mm512_permutexvar_epi8(gather, v);
        _mm512_gf2p8affine_epi64_epi8::<0>(_mm512_set1_epi64(UNIT), m)
    }

    /// The eight matrices of one chunk of up to 8 coefficients, one per qword: matrix c
    /// maps the chunk's 8 bits (bit j for coefficient j) to byte c of Σ_j bit_j · coef_j.
    /// Its row i (byte 7 − i) is the byte whose bit j is bit 8c + i of coef_j.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
    fn matrices(coef: &[Gf64], gather: __m512i, reverse: __m512i) -> __m512i {
        let mut w = [0u64; 8];
        for (x, c) in w.iter_mut().zip(coef) {
            *x = c.0;
        }
        let rows = bit_columns(&w, gather);
        _mm512_permutexvar_epi8(reverse, rows)
    }

    /// Lane b times X^(s0 + b) in GF(2^64) (X^64 = X^4 + X^3 + X + 1), for s0 + 7 < 64.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn times_x_powers(y: __m512i, s: __m512i) -> __m512i {
        let lo = _mm512_sllv_epi64(y, s);
        // The bits shifted out (a shift by 64 gives 0), times X^4 + X^3 + X + 1.
        let hi = _mm512_srlv_epi64(y, _mm512_sub_epi64(_mm512_set1_epi64(64), s));
        let fold = |h: __m512i| {
            _mm512_xor_si512(
                _mm512_xor_si512(h, _mm512_slli_epi64::<1>(h)),
                _mm512_xor_si512(_mm512_slli_epi64::<3>(h), _mm512_slli_epi64::<4>(h)),
            )
        };
        // What X^4 + X^3 + X pushes above X^63 (at most four bits), folded once more.
        let over = _mm512_xor_si512(
            _mm512_xor_si512(_mm512_srli_epi64::<63>(hi), _mm512_srli_epi64::<61>(hi)),
            _mm512_srli_epi64::<60>(hi),
        );
        _mm512_xor_si512(_mm512_xor_si512(lo, fold(hi)), fold(over))
    }

    /// Makes `out` the 64 entries of every group of `bits`, each written exactly once by
    /// [`groups`] before the length is set (so nothing is zeroed first).
    ///
    /// # Safety
    /// As [`groups`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
    pub(super) unsafe fn fill(
        q: usize,
        per_group: Option<&[Gf64]>,
        global: &[Gf64],
        bits: &[u64],
        out: &mut Vec<Gf64>,
        x_powers: bool,
    ) {
        let n = 64 * (bits.len() / q);
        out.clear();
        out.reserve(n);
        // SAFETY: the caller's contract for the instructions; the spare capacity holds n
        // entries (reserved just above), `groups` stores every one of them (64 per group,
        // 8 stores of 8) through the pointer and reads none, so all n are initialised
        // when the length is set.
        unsafe {
            let dst = out.spare_capacity_mut();
            debug_assert!(dst.len() >= n);
            groups(
                q,
                per_group,
                global,
                bits,
                dst.as_mut_ptr().cast::<Gf64>(),
                x_powers,
            );
            out.set_len(n);
        }
    }

    /// The kernel of both sides: per-group coefficients (`per_group`) or global ones
    /// (`global`), entries optionally times X^s.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F/BW/VBMI and GFNI; `out` is valid for writes of 64
    /// entries per group of `bits` (it may point to uninitialised memory: it is only
    /// stored to), and `per_group` (if given) holds one coefficient per bit-word.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
    unsafe fn groups(
        q: usize,
        per_group: Option<&[Gf64]>,
        global: &[Gf64],
        bits: &[u64],
        out: *mut Gf64,
        x_powers: bool,
    ) {
        // dst qword B, byte k ← byte B of word 7 − k.
        let gather = index(|p| 8 * (7 - p % 8) + p / 8);
        // Bytes reversed within each qword.
        let reverse = index(|p| 8 * (p / 8) + 7 - p % 8);
        // dst byte 8b + c ← src byte 8c + b (an 8×8 byte transpose).
        let transpose = index(|p| 8 * (p % 8) + p / 8);
        let lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
        let chunks = q.div_ceil(8);
        let global_m = [0, 1].map(|t| {
            let c = global
                .get(8 * t..global.len().min(8 * t + 8))
                .unwrap_or(&[]);
            matrices(c, gather, reverse)
        });
        for (gi, g) in bits.chunks_exact(q).enumerate() {
            let mut m = global_m;
            let mut idx = [_mm512_setzero_si512(); 2];
            for t in 0..chunks {
                let hi = q.min(8 * t + 8);
                idx[t] = bit_columns(&g[8 * t..hi], gather);
                if let Some(c) = per_group {
                    let c = &c[gi * q..(gi + 1) * q];
                    m[t] = matrices(&c[8 * t..hi], gather, reverse);
                }
            }
            for e in 0..8 {
                let sel = _mm512_set1_epi64(e as i64);
                let mut y =
                    _mm512_gf2p8affine_epi64_epi8::<0>(_mm512_permutexvar_epi64(sel, idx[0]), m[0]);
                if chunks > 1 {
                    y = _mm512_xor_si512(
                        y,
                        _mm512_gf2p8affine_epi64_epi8::<0>(
                            _mm512_permutexvar_epi64(sel, idx[1]),
                            m[1],
                        ),
                    );
                }
                let mut y = _mm512_permutexvar_epi8(transpose, y);
                if x_powers {
                    let s = _mm512_add_epi64(lanes, _mm512_set1_epi64(8 * e as i64));
                    y = times_x_powers(y, s);
                }
                // SAFETY: entries 64 gi + 8 e .. + 8 lie within the caller's 64 per group;
                // Gf64 is a transparent u64.
                unsafe { _mm512_storeu_si512(out.add(64 * gi + 8 * e).cast(), y) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn has() -> bool {
        #[cfg(target_arch = "x86_64")]
        return super::available();
        #[allow(unreachable_code)]
        false
    }

    /// Entry s of each group by definition: Σ_q c_q · bit s of b_q, times X^s on request.
    fn reference(q: usize, coef: &[Gf64], global: bool, bits: &[u64], xs: bool) -> Vec<Gf64> {
        let mut out = Vec::new();
        for (g, b) in bits.chunks_exact(q).enumerate() {
            let mut xp = Gf64::ONE;
            for s in 0..64 {
                let mut e = Gf64::ZERO;
                for (j, w) in b.iter().enumerate() {
                    if w >> s & 1 == 1 {
                        e += if global { coef[j] } else { coef[g * q + j] };
                    }
                }
                out.push(if xs { e * xp } else { e });
                xp = xp.mul_x();
            }
        }
        out
    }

    #[test]
    fn kernels_match_the_definition() {
        if !has() {
            eprintln!("no GFNI/AVX-512 here: the portable kernels run instead");
            return;
        }
        let mut rng = ChaCha20Rng::seed_from_u64(41);
        for q in [1usize, 2, 3, 4, 7, 8, 9, 12, 16] {
            for groups in [1usize, 2, 5] {
                let n = q * groups;
                // All ones, top bits and random words: every bit of every output byte.
                let bits: Vec<u64> = (0..n)
                    .map(|i| match i % 3 {
                        0 => u64::MAX,
                        1 => 1 << 63 | rng.gen::<u64>(),
                        _ => rng.gen(),
                    })
                    .collect();
                let coef: Vec<Gf64> = (0..n)
                    .map(|i| Gf64(if i == 0 { u64::MAX } else { rng.gen() }))
                    .collect();
                let mut out = vec![Gf64(7); 3];
                materialise_u(q, &coef, &bits, &mut out).expect("available");
                assert_eq!(out, reference(q, &coef, false, &bits, false), "U q {q}");
                let glob = &coef[..q];
                materialise_v(q, glob, &bits, &mut out).expect("available");
                assert_eq!(out, reference(q, glob, true, &bits, true), "V q {q}");
            }
        }
    }
}
