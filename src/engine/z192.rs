//! Z_2^192 ([`Z192`]): the ring the malicious-mode shuffle tags Z_2^128 columns in, 64 bits
//! wider than the values (`verify::shuffle_check` has why 64 bits suffice). Plain values
//! only, with the same [`Ring`] interface as the other rings; no sharing, no networking.

use std::ops::{Add, Mul, Neg, Sub};

use rand::RngCore;

use super::ring::{assign_ops, decode_each, Ring};
use super::wide::mul_wide;

/// An element of Z_2^192 as `lo + hi · 2^128`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Z192 {
    pub lo: u128,
    pub hi: u64,
}

impl Z192 {
    pub const fn new(lo: u128, hi: u64) -> Z192 {
        Z192 { lo, hi }
    }
}

impl Add for Z192 {
    type Output = Z192;
    fn add(self, o: Z192) -> Z192 {
        let (lo, carry) = self.lo.overflowing_add(o.lo);
        Z192 {
            lo,
            hi: self.hi.wrapping_add(o.hi).wrapping_add(u64::from(carry)),
        }
    }
}

impl Neg for Z192 {
    type Output = Z192;
    fn neg(self) -> Z192 {
        Z192 {
            lo: !self.lo,
            hi: !self.hi,
        } + Z192::new(1, 0)
    }
}

impl Sub for Z192 {
    type Output = Z192;
    fn sub(self, o: Z192) -> Z192 {
        self + (-o)
    }
}

impl Mul for Z192 {
    type Output = Z192;
    /// (a_lo + a_hi 2^128)(b_lo + b_hi 2^128) mod 2^192: the full product of the low halves,
    /// plus the low 64 bits of the cross terms at 2^128.
    fn mul(self, o: Z192) -> Z192 {
        let (lo, hi) = mul_wide(self.lo, o.lo);
        let cross = (self.lo as u64)
            .wrapping_mul(o.hi)
            .wrapping_add(self.hi.wrapping_mul(o.lo as u64));
        Z192 {
            lo,
            hi: (hi as u64).wrapping_add(cross),
        }
    }
}

assign_ops!(Z192);

impl Ring for Z192 {
    const BITS: u32 = 192;
    const BYTES: usize = 24;

    fn zero() -> Self {
        Z192::default()
    }
    fn one() -> Self {
        Z192::new(1, 0)
    }
    fn from_u64(v: u64) -> Self {
        Z192::new(u128::from(v), 0)
    }
    fn from_u128(v: u128) -> Self {
        Z192::new(v, 0)
    }
    /// The low 128 bits.
    fn to_u128(self) -> u128 {
        self.lo
    }
    fn random<G: RngCore + ?Sized>(rng: &mut G) -> Self {
        let lo = u128::from(rng.next_u64()) | (u128::from(rng.next_u64()) << 64);
        Z192::new(lo, rng.next_u64())
    }
    fn encode_slice(v: &[Self]) -> Vec<u8> {
        let mut out = Vec::with_capacity(v.len() * Self::BYTES);
        for x in v {
            out.extend_from_slice(&x.lo.to_le_bytes());
            out.extend_from_slice(&x.hi.to_le_bytes());
        }
        out
    }
    fn decode_vec(bytes: &[u8], expected_len: usize) -> Option<Vec<Self>> {
        decode_each(bytes, expected_len, Self::BYTES, |c| {
            Some(Z192::new(
                u128::from_le_bytes(c[..16].try_into().ok()?),
                u64::from_le_bytes(c[16..].try_into().ok()?),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;
    use rand::SeedableRng;

    fn big(x: Z192) -> BigUint {
        BigUint::from(x.lo) + (BigUint::from(x.hi) << 128)
    }

    fn modulus() -> BigUint {
        BigUint::from(1u8) << 192
    }

    /// Every operation agrees with integers mod 2^192, on random elements and on those
    /// whose sums and products carry across the halves and wrap the top.
    #[test]
    fn arithmetic_matches_big_integers_mod_2_192() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let edge = [
            Z192::new(0, 0),
            Z192::new(1, 0),
            Z192::new(u128::MAX, 0),
            Z192::new(0, 1),
            Z192::new(u128::MAX, u64::MAX),
            Z192::new(0, 1 << 63),
            Z192::new(1 << 127, 1 << 63),
        ];
        let mut xs: Vec<Z192> = (0..200).map(|_| Z192::random(&mut rng)).collect();
        xs.extend(edge);
        let m = modulus();
        for (i, &a) in xs.iter().enumerate() {
            for b in [xs[(i * 7 + 3) % xs.len()], edge[i % edge.len()]] {
                assert_eq!(big(a + b), (big(a) + big(b)) % &m);
                assert_eq!(big(a - b), (big(a) + &m - big(b)) % &m);
                assert_eq!(big(a * b), (big(a) * big(b)) % &m);
                assert_eq!(big(-a), (&m - big(a)) % &m);
            }
        }
    }

    #[test]
    fn encoding_round_trips_and_checks_its_length() {
        let v = vec![Z192::new(1, 2), Z192::new(u128::MAX, u64::MAX)];
        let b = Z192::encode_slice(&v);
        assert_eq!(b.len(), 48);
        assert_eq!(b[0], 1);
        assert_eq!(b[16], 2);
        assert_eq!(Z192::decode_vec(&b, 2), Some(v));
        assert_eq!(Z192::decode_vec(&b, 1), None);
        assert_eq!(Z192::decode_vec(&b[1..], 2), None);
    }
}
