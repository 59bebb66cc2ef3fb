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

impl<R: Ring> std::ops::Mul for Gr<R> {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        let mut acc = [R::zero(); 2 * D - 1];
        poly_mul_acc(&self.0, &o.0, &mut acc);
        // X^(D + m) = −X^m (X^5 + X^3 + X^2 + 1), from the top down.
        for top in (D..2 * D - 1).rev() {
            let c = acc[top];
            if c != R::zero() {
                for e in LOW {
                    acc[top - D + e] -= c;
                }
            }
        }
        Gr(std::array::from_fn(|i| acc[i]))
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

    /// Karatsuba agrees with the schoolbook product (before reduction) in every ring.
    #[test]
    fn karatsuba_matches_schoolbook() {
        fn check<R: Ring>(seed: u64) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            for _ in 0..20 {
                let a: Vec<R> = (0..D).map(|_| R::random(&mut rng)).collect();
                let b: Vec<R> = (0..D).map(|_| R::random(&mut rng)).collect();
                let mut want = vec![R::zero(); 2 * D - 1];
                for i in 0..D {
                    for j in 0..D {
                        want[i + j] += a[i] * b[j];
                    }
                }
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
