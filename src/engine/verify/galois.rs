//! The Galois ring GR(2^k, 48) = Z_2^k[X] / (f), f = X^48 + X^5 + X^3 + X^2 + 1, where the
//! ring-product proofs run. f is irreducible over GF(2) (checked by Rabin's test in the
//! tests below), so GR is a local ring whose units are the elements that are non-zero mod 2,
//! and the 2^48 elements with coefficients in {0, 1} form an exceptional set: any two of
//! them differ by a unit. A non-zero polynomial of degree d over GR therefore vanishes on
//! at most d of them (Schwartz–Zippel for Galois rings), which is what makes a challenge
//! drawn from that set sound, and θ · c = 0 for a non-zero c ∈ Z_2^k happens for at most one
//! θ in it, which is what makes the random linear combination sound. This module holds
//! arithmetic only.

use rand::RngCore;

use crate::engine::ring::Ring;

/// Extension degree.
pub const D: usize = 48;
/// The low terms of f: X^48 = −(X^5 + X^3 + X^2 + 1).
const LOW: [usize; 4] = [0, 2, 3, 5];

/// An element of GR(2^k, 48) over the base ring R = Z_2^k: coefficients of 1, X, …, X^47.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gr<R: Ring>(pub [R; D]);

impl<R: Ring> Gr<R> {
    pub fn zero() -> Self {
        Gr([R::zero(); D])
    }

    pub fn one() -> Self {
        Self::from_base(R::one())
    }

    /// The constant c.
    pub fn from_base(c: R) -> Self {
        let mut v = [R::zero(); D];
        v[0] = c;
        Gr(v)
    }

    /// A uniformly random element.
    pub fn random<G: RngCore + ?Sized>(rng: &mut G) -> Self {
        Gr(std::array::from_fn(|_| R::random(rng)))
    }

    /// A random element of the exceptional set (coefficients 0 or 1) that is neither 0
    /// nor 1 mod 2, so that r and 1 − r are both units.
    pub fn challenge<G: RngCore + ?Sized>(rng: &mut G) -> Self {
        loop {
            let bits = rng.next_u64() & ((1 << D) - 1);
            if bits > 1 {
                return Gr(std::array::from_fn(|i| R::from_u64(bits >> i & 1)));
            }
        }
    }

    /// A uniformly random element of the exceptional set (coefficients 0 or 1).
    pub fn exceptional<G: RngCore + ?Sized>(rng: &mut G) -> Self {
        let bits = rng.next_u64();
        Gr(std::array::from_fn(|i| R::from_u64(bits >> i & 1)))
    }

    /// The element times a base-ring scalar.
    pub fn scale(self, c: R) -> Self {
        Gr(self.0.map(|x| x * c))
    }

    pub fn encode_slice(v: &[Self]) -> Vec<u8> {
        let flat: Vec<R> = v.iter().flat_map(|e| e.0).collect();
        R::encode_slice(&flat)
    }

    pub fn decode_vec(bytes: &[u8], n: usize) -> Option<Vec<Self>> {
        let flat = R::decode_vec(bytes, n.checked_mul(D)?)?;
        Some(
            flat.chunks_exact(D)
                .map(|c| Gr(c.try_into().expect("D coefficients")))
                .collect(),
        )
    }
}

impl<R: Ring> std::ops::Add for Gr<R> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Gr(std::array::from_fn(|i| self.0[i] + o.0[i]))
    }
}

impl<R: Ring> std::ops::Sub for Gr<R> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Gr(std::array::from_fn(|i| self.0[i] - o.0[i]))
    }
}

impl<R: Ring> std::ops::Neg for Gr<R> {
    type Output = Self;
    fn neg(self) -> Self {
        Gr(self.0.map(|x| -x))
    }
}

/// Products of polynomials of `KARATSUBA_MIN` coefficients or fewer are schoolbook.
const KARATSUBA_MIN: usize = 12;

/// out[0 .. 2n − 1] += a · b for a, b of n coefficients (Karatsuba while n is even and
/// above `KARATSUBA_MIN`: three half-size products instead of four). In Z_2^64 a
/// coefficient product costs about what an addition does, so Karatsuba's extra additions
/// make it slower there (`cargo run --release --example gr_mul_probe`: 1.2 µs against
/// 1.06 µs per GR product); it pays from
/// Z_2^128 up (9.0 µs against 12.4 µs in Z_2^256).
fn poly_mul_acc<R: Ring>(a: &[R], b: &[R], out: &mut [R]) {
    let n = a.len();
    if R::BITS <= 64 || n <= KARATSUBA_MIN || n % 2 == 1 {
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                out[i + j] += *x * *y;
            }
        }
        return;
    }
    let h = n / 2;
    let (a0, a1) = a.split_at(h);
    let (b0, b1) = b.split_at(h);
    let mut z0 = [R::zero(); 2 * D];
    let mut z2 = [R::zero(); 2 * D];
    let mut z1 = [R::zero(); 2 * D];
    poly_mul_acc(a0, b0, &mut z0[..2 * h - 1]);
    poly_mul_acc(a1, b1, &mut z2[..2 * h - 1]);
    let mut sa = [R::zero(); D];
    let mut sb = [R::zero(); D];
    for i in 0..h {
        sa[i] = a0[i] + a1[i];
        sb[i] = b0[i] + b1[i];
    }
    poly_mul_acc(&sa[..h], &sb[..h], &mut z1[..2 * h - 1]);
    for i in 0..2 * h - 1 {
        out[i] += z0[i];
        out[i + h] += z1[i] - z0[i] - z2[i];
        out[i + 2 * h] += z2[i];
    }
}

/// Reduces a product of degree ≤ 2D − 2 mod f: X^(D + m) = −X^m (X^5 + X^3 + X^2 + 1).
/// One pass brings the degree to at most D + 3; a second folds those four terms, which
/// land below X^9. Both passes are plain vector subtractions.
fn reduce<R: Ring>(acc: &[R]) -> Gr<R> {
    let (low, high) = acc.split_at(D);
    let mut t = [R::zero(); D + 4];
    t[..D].copy_from_slice(low);
    for e in LOW {
        for (o, c) in t[e..].iter_mut().zip(&high[..D - 1]) {
            *o -= *c;
        }
    }
    for j in D..D + 4 {
        let c = t[j];
        for e in LOW {
            t[j - D + e] -= c;
        }
    }
    Gr(std::array::from_fn(|i| t[i]))
}

/// out[k] = Σ_(i ∈ set) a_(k − i) for k < 96: the unreduced product of a with the 0/1
/// polynomial whose set coefficients are `set`, eight outputs at a time in registers.
#[inline(always)]
fn sparse_kernel<R: Ring>(a: &[R; D], set: &[usize], out: &mut [R; 2 * D]) {
    let mut pad = [R::zero(); 3 * D + 8];
    pad[D..2 * D].copy_from_slice(a);
    for q in 0..2 * D / 8 {
        let mut blk = [R::zero(); 8];
        for &i in set {
            let src = &pad[D + 8 * q - i..D + 8 * q - i + 8];
            for (b, x) in blk.iter_mut().zip(src) {
                *b += *x;
            }
        }
        out[8 * q..8 * q + 8].copy_from_slice(&blk);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sparse_avx512<R: Ring>(a: &[R; D], set: &[usize], out: &mut [R; 2 * D]) {
    sparse_kernel(a, set, out)
}

impl<R: Ring> Gr<R> {
    /// The product with an element whose coefficients are 0 or 1 (a challenge or a weight
    /// of the exceptional set): a sum of shifted copies of `self`, without coefficient
    /// products. Exact for any `r` (other coefficients take the general product);
    /// branching on `r` is fine because challenges and weights are known to every party
    /// that computes with them.
    pub fn mul_sparse(self, r: Self) -> Self {
        let mut set = [0usize; D];
        let mut n = 0;
        for (i, c) in r.0.iter().enumerate() {
            if *c == R::one() {
                set[n] = i;
                n += 1;
            } else if *c != R::zero() {
                return self * r;
            }
        }
        let mut acc = [R::zero(); 2 * D];
        #[cfg(target_arch = "x86_64")]
        if wide_mul::available() {
            // SAFETY: the feature was detected at run time (`available`).
            unsafe { sparse_avx512(&self.0, &set[..n], &mut acc) };
            return reduce(&acc);
        }
        sparse_kernel(&self.0, &set[..n], &mut acc);
        reduce(&acc)
    }
}

impl<R: Ring> std::ops::Mul for Gr<R> {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        if let Some(p) = wide_mul::mul(&self, &o) {
            return p;
        }
        let mut acc = [R::zero(); 2 * D - 1];
        poly_mul_acc(&self.0, &o.0, &mut acc);
        reduce(&acc)
    }
}

/// The product in GR(2^64, 48) with 512-bit vector instructions, where the CPU has them
/// (AVX-512 F and DQ, checked once): each block of eight output coefficients accumulates
/// a_i · (b shifted by i) in a register, 8 products per instruction. Tested against the
/// schoolbook product.
mod wide_mul {
    use super::{Gr, D};
    use crate::engine::ring::{Ring, Z64};
    use std::any::Any;

    /// `Some(a · b)` when R is Z_2^64 and the CPU has the instructions; `None` otherwise.
    pub(super) fn mul<R: Ring>(a: &Gr<R>, b: &Gr<R>) -> Option<Gr<R>> {
        #[cfg(target_arch = "x86_64")]
        {
            let (a, b) = (
                (a as &dyn Any).downcast_ref::<Gr<Z64>>()?,
                (b as &dyn Any).downcast_ref::<Gr<Z64>>()?,
            );
            if !available() {
                return None;
            }
            let (x, y) = (a.0.map(|c| c.0), b.0.map(|c| c.0));
            // SAFETY: the features were detected at run time (`available`).
            let acc = unsafe { school_avx512(&x, &y) };
            let p = super::reduce(&acc.map(Z64));
            return (&p as &dyn Any).downcast_ref::<Gr<R>>().copied();
        }
        #[allow(unreachable_code)]
        None
    }

    #[cfg(target_arch = "x86_64")]
    pub(super) fn available() -> bool {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
        })
    }

    /// The unreduced product: out[k] = Σ_i a_i b_(k − i), k < 2D − 1.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) unsafe fn school_avx512(a: &[u64; D], b: &[u64; D]) -> [u64; 2 * D - 1] {
        use std::arch::x86_64::*;
        // b with D zeros on each side, so that b_(k − i) is a plain load for every k, i.
        let mut bp = [0u64; 3 * D + 8];
        bp[D..2 * D].copy_from_slice(b);
        let mut out = [0u64; 12 * 8];
        for q in 0..12usize {
            let lo = (8 * q).saturating_sub(D - 1);
            let hi = (8 * q + 7).min(D - 1);
            let mut acc = _mm512_setzero_si512();
            #[allow(clippy::needless_range_loop)] // i also offsets into bp
            for i in lo..=hi {
                let ai = _mm512_set1_epi64(a[i] as i64);
                // Lanes k = 8q .. 8q + 7 read b_(k − i) = bp[D + k − i].
                let bv = _mm512_loadu_si512(bp.as_ptr().add(D + 8 * q - i) as *const _);
                acc = _mm512_add_epi64(acc, _mm512_mullo_epi64(ai, bv));
            }
            _mm512_storeu_si512(out.as_mut_ptr().add(8 * q) as *mut _, acc);
        }
        std::array::from_fn(|k| out[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ring::{Z128, Z64};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// f mod 2 as a bit mask.
    fn f2() -> u64 {
        (1 << D) | LOW.iter().fold(0u64, |a, e| a | 1 << e)
    }

    fn mulmod2(mut a: u64, mut b: u64) -> u64 {
        let mut r = 0;
        while b != 0 {
            if b & 1 == 1 {
                r ^= a;
            }
            b >>= 1;
            a <<= 1;
            if a >> D & 1 == 1 {
                a ^= f2();
            }
        }
        r
    }

    fn gcd2(mut a: u64, mut b: u64) -> u64 {
        while b != 0 {
            while a != 0 && 64 - a.leading_zeros() >= 64 - b.leading_zeros() {
                a ^= b << (b.leading_zeros() - a.leading_zeros());
            }
            std::mem::swap(&mut a, &mut b);
        }
        a
    }

    /// Rabin: f is irreducible of degree 48 iff X^(2^48) ≡ X and gcd(X^(2^(48/p)) − X, f) = 1
    /// for the prime factors p = 2, 3 of 48.
    #[test]
    fn f_is_irreducible_mod_2() {
        let frob = |k: usize| (0..k).fold(2u64, |x, _| mulmod2(x, x));
        assert_eq!(frob(D), 2);
        for p in [2, 3] {
            assert_eq!(
                gcd2(f2(), frob(D / p) ^ 2),
                1,
                "factor through degree {}",
                D / p
            );
        }
    }

    #[test]
    fn ring_laws_hold() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        for _ in 0..30 {
            let [a, b, c] = [0; 3].map(|_| Gr::<Z64>::random(&mut rng));
            assert_eq!(a * (b + c), a * b + a * c);
            assert_eq!((a * b) * c, a * (b * c));
            assert_eq!(a * b, b * a);
            assert_eq!(a * Gr::one(), a);
            assert_eq!(a.scale(Z64(7)), a * Gr::from_base(Z64(7)));
        }
        // X^47 · X = X^48 = −(X^5 + X^3 + X^2 + 1).
        let mut x47 = Gr::<Z128>::zero();
        x47.0[47] = Z128(1);
        let mut x = Gr::<Z128>::zero();
        x.0[1] = Z128(1);
        let mut want = Gr::<Z128>::zero();
        for e in LOW {
            want.0[e] = -Z128(1);
        }
        assert_eq!(x47 * x, want);
    }

    /// A challenge is a unit, and so is 1 − r: θ c = 0 only for θ = 0 when c ≠ 0 mod 2^k.
    #[test]
    fn challenges_and_their_complements_are_units() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let high = Z64(1 << 63); // the worst non-zero scalar: 2^63
        for _ in 0..100 {
            let r = Gr::<Z64>::challenge(&mut rng);
            assert!(r.0.iter().all(|c| c.0 <= 1));
            assert_ne!(r.scale(high), Gr::zero());
            assert_ne!((Gr::one() - r).scale(high), Gr::zero());
        }
    }

    #[test]
    fn encoding_round_trips() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let v: Vec<Gr<Z64>> = (0..3).map(|_| Gr::random(&mut rng)).collect();
        let bytes = Gr::encode_slice(&v);
        assert_eq!(bytes.len(), 3 * D * 8);
        assert_eq!(Gr::decode_vec(&bytes, 3), Some(v));
        assert_eq!(Gr::<Z64>::decode_vec(&bytes[1..], 3), None);
        assert_eq!(Gr::<Z64>::decode_vec(&bytes, usize::MAX), None);
    }

    /// The unreduced schoolbook product of two polynomials of D coefficients: the
    /// definition every faster product is tested against.
    fn school_unreduced<R: Ring>(a: &[R], b: &[R]) -> Vec<R> {
        let mut acc = vec![R::zero(); 2 * D - 1];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                acc[i + j] += *x * *y;
            }
        }
        acc
    }

    /// The sparse product and the vector product agree with the schoolbook one.
    #[test]
    fn fast_products_match_schoolbook() {
        fn school<R: Ring>(a: &Gr<R>, b: &Gr<R>) -> Gr<R> {
            reduce(&school_unreduced(&a.0, &b.0))
        }
        fn check<R: Ring>(seed: u64) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            for _ in 0..50 {
                let a = Gr::<R>::random(&mut rng);
                let b = Gr::<R>::random(&mut rng);
                let r = Gr::<R>::challenge(&mut rng);
                assert_eq!(a * b, school(&a, &b), "{} bits", R::BITS);
                assert_eq!(a.mul_sparse(r), school(&a, &r), "{} bits", R::BITS);
                assert_eq!(a.mul_sparse(b), school(&a, &b), "{} bits", R::BITS);
            }
            // Coefficients at the top of the ring wrap.
            let top = Gr::<R>(std::array::from_fn(|_| -R::one()));
            assert_eq!(top * top, school(&top, &top));
        }
        check::<Z64>(7);
        check::<Z128>(8);
        check::<crate::engine::wide::Z256>(9);
        #[cfg(target_arch = "x86_64")]
        if wide_mul::available() {
            let mut rng = ChaCha20Rng::seed_from_u64(10);
            let a: [u64; D] = std::array::from_fn(|_| rng.next_u64());
            let b: [u64; D] = std::array::from_fn(|_| rng.next_u64());
            let want = school_unreduced(&a.map(Z64), &b.map(Z64));
            // SAFETY: the features were detected just above.
            let got = unsafe { wide_mul::school_avx512(&a, &b) };
            assert_eq!(got.map(Z64).to_vec(), want);
        }
    }

    /// Karatsuba agrees with the schoolbook product (before reduction) in every ring.
    #[test]
    fn karatsuba_matches_schoolbook() {
        fn check<R: Ring>(seed: u64) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            for _ in 0..20 {
                let a: Vec<R> = (0..D).map(|_| R::random(&mut rng)).collect();
                let b: Vec<R> = (0..D).map(|_| R::random(&mut rng)).collect();
                let want = school_unreduced(&a, &b);
                let mut got = vec![R::zero(); 2 * D - 1];
                poly_mul_acc(&a, &b, &mut got);
                assert_eq!(got, want, "{} bits", R::BITS);
            }
        }
        check::<Z64>(1);
        check::<Z128>(2);
        check::<crate::engine::wide::Z256>(3);
    }
}
