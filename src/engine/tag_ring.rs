//! The wide rings the malicious-mode shuffle tags Z_2^128 columns in: Z_2^(128 + H) as one
//! generic [`Z128Plus`], with [`Z136`] (H = 8, for keys compared on 66–73 bits) and
//! [`Z192`] (H = 64, for columns that matter at every bit). `verify::shuffle_check` has why
//! a ring 63 bits wider than the bits that matter suffices. Plain values only, with the same
//! [`Ring`] interface as the other rings; no sharing, no networking.

use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use rand::RngCore;

use super::ring::{decode_each, Ring};
use super::wide::mul_wide;

/// An element of Z_2^(128 + H) as `lo + hi · 2^128`, H a multiple of 8 in 8..=64, always
/// reduced: the bits of `hi` at H and above are zero (so `==` is equality in the ring).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Z128Plus<const H: u32> {
    pub lo: u128,
    pub hi: u64,
}

/// Z_2^136.
pub type Z136 = Z128Plus<8>;
/// Z_2^192.
pub type Z192 = Z128Plus<64>;

impl<const H: u32> Z128Plus<H> {
    /// The bits `hi` may hold.
    const MASK: u64 = u64::MAX >> (64 - H);

    /// `lo + hi · 2^128` mod 2^(128 + H).
    pub const fn new(lo: u128, hi: u64) -> Self {
        Z128Plus {
            lo,
            hi: hi & Self::MASK,
        }
    }
}

impl<const H: u32> Add for Z128Plus<H> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        let (lo, carry) = self.lo.overflowing_add(o.lo);
        Self::new(
            lo,
            self.hi.wrapping_add(o.hi).wrapping_add(u64::from(carry)),
        )
    }
}

impl<const H: u32> Neg for Z128Plus<H> {
    type Output = Self;
    fn neg(self) -> Self {
        Self::new(!self.lo, !self.hi) + Self::new(1, 0)
    }
}

impl<const H: u32> Sub for Z128Plus<H> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        self + (-o)
    }
}

impl<const H: u32> Mul for Z128Plus<H> {
    type Output = Self;
    /// (a_lo + a_hi 2^128)(b_lo + b_hi 2^128) mod 2^192, then mod 2^(128 + H) (which
    /// divides 2^192): the full product of the low halves, plus the low 64 bits of the cross
    /// terms at 2^128.
    fn mul(self, o: Self) -> Self {
        let (lo, hi) = mul_wide(self.lo, o.lo);
        let cross = (self.lo as u64)
            .wrapping_mul(o.hi)
            .wrapping_add(self.hi.wrapping_mul(o.lo as u64));
        Self::new(lo, (hi as u64).wrapping_add(cross))
    }
}

impl<const H: u32> AddAssign for Z128Plus<H> {
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}

impl<const H: u32> SubAssign for Z128Plus<H> {
    fn sub_assign(&mut self, o: Self) {
        *self = *self - o;
    }
}

impl<const H: u32> MulAssign for Z128Plus<H> {
    fn mul_assign(&mut self, o: Self) {
        *self = *self * o;
    }
}

impl<const H: u32> Ring for Z128Plus<H> {
    const BITS: u32 = 128 + H;
    const BYTES: usize = 16 + H as usize / 8;

    fn zero() -> Self {
        Self::default()
    }
    fn one() -> Self {
        Self::new(1, 0)
    }
    fn from_u64(v: u64) -> Self {
        Self::new(u128::from(v), 0)
    }
    fn from_u128(v: u128) -> Self {
        Self::new(v, 0)
    }
    /// The low 128 bits.
    fn to_u128(self) -> u128 {
        self.lo
    }
    fn random<G: RngCore + ?Sized>(rng: &mut G) -> Self {
        let lo = u128::from(rng.next_u64()) | (u128::from(rng.next_u64()) << 64);
        Self::new(lo, rng.next_u64())
    }
    /// The low 16 bytes, then `hi`'s low H / 8 bytes (the rest are zero).
    fn encode_slice(v: &[Self]) -> Vec<u8> {
        let mut out = Vec::with_capacity(v.len() * Self::BYTES);
        for x in v {
            out.extend_from_slice(&x.lo.to_le_bytes());
            out.extend_from_slice(&x.hi.to_le_bytes()[..Self::BYTES - 16]);
        }
        out
    }
    fn decode_vec(bytes: &[u8], expected_len: usize) -> Option<Vec<Self>> {
        decode_each(bytes, expected_len, Self::BYTES, |c| {
            let mut hi = [0u8; 8];
            hi[..Self::BYTES - 16].copy_from_slice(&c[16..]);
            Some(Self::new(
                u128::from_le_bytes(c[..16].try_into().ok()?),
                u64::from_le_bytes(hi),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;
    use rand::SeedableRng;

    fn big<const H: u32>(x: Z128Plus<H>) -> BigUint {
        BigUint::from(x.lo) + (BigUint::from(x.hi) << 128)
    }

    /// Every operation agrees with integers mod 2^(128 + H), on random elements and on
    /// those whose sums and products carry across the halves and wrap the top.
    fn arithmetic_matches_big_integers<const H: u32>(seed: u64) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let top = 1u64 << (H - 1);
        let edge = [
            Z128Plus::<H>::new(0, 0),
            Z128Plus::new(1, 0),
            Z128Plus::new(u128::MAX, 0),
            Z128Plus::new(0, 1),
            Z128Plus::new(u128::MAX, u64::MAX),
            Z128Plus::new(0, top),
            Z128Plus::new(1 << 127, top),
        ];
        let mut xs: Vec<Z128Plus<H>> = (0..200).map(|_| Z128Plus::random(&mut rng)).collect();
        xs.extend(edge);
        let m = BigUint::from(1u8) << (128 + H);
        for (i, &a) in xs.iter().enumerate() {
            assert!(big(a) < m, "elements stay reduced");
            for b in [xs[(i * 7 + 3) % xs.len()], edge[i % edge.len()]] {
                assert_eq!(big(a + b), (big(a) + big(b)) % &m);
                assert_eq!(big(a - b), (big(a) + &m - big(b)) % &m);
                assert_eq!(big(a * b), (big(a) * big(b)) % &m);
                assert_eq!(big(-a), (&m - big(a)) % &m);
            }
        }
    }

    #[test]
    fn arithmetic_matches_big_integers_mod_2_136_and_2_192() {
        arithmetic_matches_big_integers::<8>(4);
        arithmetic_matches_big_integers::<64>(5);
    }

    #[test]
    fn reduction_makes_equal_residues_equal() {
        // 2^136 ≡ 0 in Z_2^136: a hi of 2^8 is reduced away, and sums wrap to zero.
        assert_eq!(Z136::new(5, 1 << 8), Z136::new(5, 0));
        assert_eq!(Z136::new(0, 0xff) + Z136::new(0, 1), Z136::zero());
        assert_eq!(Z136::new(u128::MAX, 0xff) + Z136::one(), Z136::zero());
        assert_ne!(Z192::new(0, 0xff) + Z192::new(0, 1), Z192::zero());
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

        let v = vec![Z136::new(3, 0xab), Z136::new(u128::MAX, 0xff)];
        let b = Z136::encode_slice(&v);
        assert_eq!(b.len(), 34);
        assert_eq!(b[16], 0xab);
        assert_eq!(b[33], 0xff);
        assert_eq!(Z136::decode_vec(&b, 2), Some(v));
        assert_eq!(Z136::decode_vec(&b, 1), None);
        assert_eq!(Z136::decode_vec(&b[..33], 2), None);
    }
}
