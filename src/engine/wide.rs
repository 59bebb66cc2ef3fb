//! Z_2^256 ([`Z256`]): the ring second moments are computed in, so that
//! V = n·Σx² − (Σx)² is exact for every n and every value the datasets allow. Plain values
//! only, with the same [`Ring`] interface as Z_2^64 and Z_2^128; no sharing, no networking.

use std::ops::{Add, Mul, Neg, Sub};

use rand::RngCore;

use super::ring::{assign_ops, decode_each, Ring};

/// An element of Z_2^256 as two 128-bit halves: `lo + hi · 2^128`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Z256 {
    pub lo: u128,
    pub hi: u128,
}

impl Z256 {
    pub const fn new(lo: u128, hi: u128) -> Z256 {
        Z256 { lo, hi }
    }
}

/// The full 256-bit product of two 128-bit integers, as (low, high) halves.
pub fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    let (a0, a1) = (a as u64 as u128, a >> 64);
    let (b0, b1) = (b as u64 as u128, b >> 64);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 as u64 as u128) + (p10 as u64 as u128);
    let lo = (p00 as u64 as u128) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (lo, hi)
}

impl Add for Z256 {
    type Output = Z256;
    fn add(self, o: Z256) -> Z256 {
        let (lo, carry) = self.lo.overflowing_add(o.lo);
        Z256 {
            lo,
            hi: self.hi.wrapping_add(o.hi).wrapping_add(u128::from(carry)),
        }
    }
}

impl Neg for Z256 {
    type Output = Z256;
    fn neg(self) -> Z256 {
        Z256 {
            lo: !self.lo,
            hi: !self.hi,
        } + Z256::new(1, 0)
    }
}

impl Sub for Z256 {
    type Output = Z256;
    fn sub(self, o: Z256) -> Z256 {
        self + (-o)
    }
}

impl Mul for Z256 {
    type Output = Z256;
    fn mul(self, o: Z256) -> Z256 {
        let (lo, hi) = mul_wide(self.lo, o.lo);
        let cross = self
            .lo
            .wrapping_mul(o.hi)
            .wrapping_add(self.hi.wrapping_mul(o.lo));
        Z256 {
            lo,
            hi: hi.wrapping_add(cross),
        }
    }
}

assign_ops!(Z256);

impl Ring for Z256 {
    const BITS: u32 = 256;
    const BYTES: usize = 32;

    fn zero() -> Self {
        Z256::default()
    }
    fn one() -> Self {
        Z256::new(1, 0)
    }
    fn from_u64(v: u64) -> Self {
        Z256::new(u128::from(v), 0)
    }
    fn from_u128(v: u128) -> Self {
        Z256::new(v, 0)
    }
    /// The low 128 bits.
    fn to_u128(self) -> u128 {
        self.lo
    }
    fn random<G: RngCore + ?Sized>(rng: &mut G) -> Self {
        let mut half = || u128::from(rng.next_u64()) | (u128::from(rng.next_u64()) << 64);
        let lo = half();
        Z256::new(lo, half())
    }
    fn encode_slice(v: &[Self]) -> Vec<u8> {
        v.iter()
            .flat_map(|x| x.lo.to_le_bytes().into_iter().chain(x.hi.to_le_bytes()))
            .collect()
    }
    fn decode_vec(bytes: &[u8], expected_len: usize) -> Option<Vec<Self>> {
        decode_each(bytes, expected_len, Self::BYTES, |c| {
            Some(Z256::new(
                u128::from_le_bytes(c[..16].try_into().ok()?),
                u128::from_le_bytes(c[16..].try_into().ok()?),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;
    use rand::SeedableRng;

    fn big(x: Z256) -> BigUint {
        BigUint::from(x.lo) + (BigUint::from(x.hi) << 128)
    }

    fn modulus() -> BigUint {
        BigUint::from(1u8) << 256
    }

    #[test]
    fn arithmetic_matches_big_integers_mod_2_256() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let edge = [
            Z256::new(0, 0),
            Z256::new(1, 0),
            Z256::new(u128::MAX, 0),
            Z256::new(0, 1),
            Z256::new(u128::MAX, u128::MAX),
            Z256::new(0, 1 << 127),
        ];
        let mut xs: Vec<Z256> = (0..200).map(|_| Z256::random(&mut rng)).collect();
        xs.extend(edge);
        for (i, &a) in xs.iter().enumerate() {
            let b = xs[(i * 7 + 3) % xs.len()];
            let m = modulus();
            assert_eq!(big(a + b), (big(a) + big(b)) % &m);
            assert_eq!(big(a - b), (big(a) + &m - big(b)) % &m);
            assert_eq!(big(a * b), (big(a) * big(b)) % &m);
            assert_eq!(big(-a), (&m - big(a)) % &m);
        }
        for &e in &edge {
            for &f in &edge {
                let m = modulus();
                assert_eq!(big(e * f), (big(e) * big(f)) % &m);
                assert_eq!(big(e + f), (big(e) + big(f)) % &m);
            }
        }
    }

    #[test]
    fn full_products_are_exact() {
        for (a, b) in [
            (u128::MAX, u128::MAX),
            (1 << 127, 2),
            (12345, 67890),
            (0, 5),
        ] {
            let (lo, hi) = mul_wide(a, b);
            assert_eq!(
                BigUint::from(lo) + (BigUint::from(hi) << 128),
                BigUint::from(a) * BigUint::from(b)
            );
        }
    }

    #[test]
    fn encoding_round_trips_and_checks_its_length() {
        let v = vec![Z256::new(1, 2), Z256::new(u128::MAX, 0)];
        let b = Z256::encode_slice(&v);
        assert_eq!(b.len(), 64);
        assert_eq!(b[0], 1);
        assert_eq!(b[16], 2);
        assert_eq!(Z256::decode_vec(&b, 2), Some(v));
        assert_eq!(Z256::decode_vec(&b, 1), None);
        assert_eq!(Z256::decode_vec(&b[1..], 2), None);
    }
}
