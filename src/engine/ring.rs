//! The rings shares live in: Z_2^64 ([`Z64`]) and Z_2^128 ([`Z128`]), both with wrapping
//! arithmetic, behind the one [`Ring`] trait, and their little-endian wire encoding.
//!
//! This module holds plain values only: no sharing, no randomness streams, no networking.
//! Decoding bytes that came from the network never panics; a wrong length is `None`.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use rand::RngCore;

/// A ring Z_2^k with wrapping arithmetic and a fixed-width little-endian encoding.
pub trait Ring:
    Copy
    + Clone
    + Default
    + PartialEq
    + Eq
    + Debug
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// Bit width k of the ring Z_2^k.
    const BITS: u32;
    /// Bytes per element on the wire.
    const BYTES: usize;

    fn zero() -> Self;
    fn one() -> Self;
    /// `v` mod 2^k.
    fn from_u64(v: u64) -> Self;
    /// `v` mod 2^k (truncating).
    fn from_u128(v: u128) -> Self;
    /// The representative in [0, 2^k).
    fn to_u128(self) -> u128;
    /// A uniformly random element.
    fn random<G: RngCore + ?Sized>(rng: &mut G) -> Self;
    /// Little-endian encoding, `BYTES` per element.
    fn encode_slice(v: &[Self]) -> Vec<u8>;
    /// Inverse of [`Ring::encode_slice`]; `None` unless `bytes.len() == expected_len * BYTES`.
    fn decode_vec(bytes: &[u8], expected_len: usize) -> Option<Vec<Self>>;
}

/// Decodes `expected_len` elements of `size` bytes each with `one`; `None` unless
/// `bytes` holds exactly that many. The one length check every ring's `decode_vec` makes.
pub(crate) fn decode_each<T>(
    bytes: &[u8],
    expected_len: usize,
    size: usize,
    one: impl Fn(&[u8]) -> Option<T>,
) -> Option<Vec<T>> {
    if Some(bytes.len()) != expected_len.checked_mul(size) {
        return None;
    }
    bytes.chunks_exact(size).map(one).collect()
}

/// `+=`, `-=` and `*=` from `+`, `-` and `*`, for the wide rings.
macro_rules! assign_ops {
    ($t:ty) => {
        impl std::ops::AddAssign for $t {
            fn add_assign(&mut self, o: $t) {
                *self = *self + o;
            }
        }
        impl std::ops::SubAssign for $t {
            fn sub_assign(&mut self, o: $t) {
                *self = *self - o;
            }
        }
        impl std::ops::MulAssign for $t {
            fn mul_assign(&mut self, o: $t) {
                *self = *self * o;
            }
        }
    };
}
pub(crate) use assign_ops;

/// An element of Z_2^64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Z64(pub u64);

/// An element of Z_2^128.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Z128(pub u128);

/// Reduction mod 2^64. A ring homomorphism, so parties may apply it to their shares locally.
pub fn z128_to_z64(x: Z128) -> Z64 {
    Z64(x.0 as u64)
}

impl From<Z128> for Z64 {
    fn from(x: Z128) -> Z64 {
        z128_to_z64(x)
    }
}

macro_rules! wrapping_ops {
    ($t:ident) => {
        impl Add for $t {
            type Output = $t;
            fn add(self, o: $t) -> $t {
                $t(self.0.wrapping_add(o.0))
            }
        }
        impl Sub for $t {
            type Output = $t;
            fn sub(self, o: $t) -> $t {
                $t(self.0.wrapping_sub(o.0))
            }
        }
        impl Mul for $t {
            type Output = $t;
            fn mul(self, o: $t) -> $t {
                $t(self.0.wrapping_mul(o.0))
            }
        }
        impl Neg for $t {
            type Output = $t;
            fn neg(self) -> $t {
                $t(self.0.wrapping_neg())
            }
        }
        impl AddAssign for $t {
            fn add_assign(&mut self, o: $t) {
                *self = *self + o;
            }
        }
        impl SubAssign for $t {
            fn sub_assign(&mut self, o: $t) {
                *self = *self - o;
            }
        }
        impl MulAssign for $t {
            fn mul_assign(&mut self, o: $t) {
                *self = *self * o;
            }
        }
    };
}

wrapping_ops!(Z64);
wrapping_ops!(Z128);

impl Ring for Z64 {
    const BITS: u32 = 64;
    const BYTES: usize = 8;

    fn zero() -> Self {
        Z64(0)
    }
    fn one() -> Self {
        Z64(1)
    }
    fn from_u64(v: u64) -> Self {
        Z64(v)
    }
    fn from_u128(v: u128) -> Self {
        Z64(v as u64)
    }
    fn to_u128(self) -> u128 {
        self.0 as u128
    }
    fn random<G: RngCore + ?Sized>(rng: &mut G) -> Self {
        Z64(rng.next_u64())
    }
    fn encode_slice(v: &[Self]) -> Vec<u8> {
        v.iter().flat_map(|x| x.0.to_le_bytes()).collect()
    }
    fn decode_vec(bytes: &[u8], expected_len: usize) -> Option<Vec<Self>> {
        decode_each(bytes, expected_len, Self::BYTES, |c| {
            Some(Z64(u64::from_le_bytes(c.try_into().ok()?)))
        })
    }
}

impl Ring for Z128 {
    const BITS: u32 = 128;
    const BYTES: usize = 16;

    fn zero() -> Self {
        Z128(0)
    }
    fn one() -> Self {
        Z128(1)
    }
    fn from_u64(v: u64) -> Self {
        Z128(v as u128)
    }
    fn from_u128(v: u128) -> Self {
        Z128(v)
    }
    fn to_u128(self) -> u128 {
        self.0
    }
    fn random<G: RngCore + ?Sized>(rng: &mut G) -> Self {
        let lo = rng.next_u64() as u128;
        let hi = rng.next_u64() as u128;
        Z128(lo | (hi << 64))
    }
    fn encode_slice(v: &[Self]) -> Vec<u8> {
        v.iter().flat_map(|x| x.0.to_le_bytes()).collect()
    }
    fn decode_vec(bytes: &[u8], expected_len: usize) -> Option<Vec<Self>> {
        decode_each(bytes, expected_len, Self::BYTES, |c| {
            Some(Z128(u128::from_le_bytes(c.try_into().ok()?)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn round_trip<R: Ring>() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let v: Vec<R> = (0..37).map(|_| R::random(&mut rng)).collect();
        let bytes = R::encode_slice(&v);
        assert_eq!(bytes.len(), 37 * R::BYTES);
        assert_eq!(R::decode_vec(&bytes, 37), Some(v));
        assert_eq!(R::decode_vec(&bytes, 36), None);
        assert_eq!(R::decode_vec(&bytes[1..], 37), None);
        assert_eq!(R::decode_vec(&[], 0), Some(vec![]));
        assert_eq!(R::decode_vec(&[0u8; 4], usize::MAX), None);
    }

    #[test]
    fn encode_decode_round_trip() {
        round_trip::<Z64>();
        round_trip::<Z128>();
    }

    #[test]
    fn encoding_is_little_endian() {
        assert_eq!(
            Z64::encode_slice(&[Z64(0x0102)]),
            vec![2, 1, 0, 0, 0, 0, 0, 0]
        );
        let b = Z128::encode_slice(&[Z128(1u128 << 64)]);
        assert_eq!(b[8], 1);
        assert_eq!(b.iter().map(|&x| x as u32).sum::<u32>(), 1);
    }

    #[test]
    fn arithmetic_wraps() {
        assert_eq!(Z64(u64::MAX) + Z64::one(), Z64::zero());
        assert_eq!(Z64::zero() - Z64::one(), Z64(u64::MAX));
        assert_eq!(-Z64(1), Z64(u64::MAX));
        assert_eq!(Z64(1 << 63) * Z64(2), Z64(0));
        assert_eq!(Z128(u128::MAX) + Z128::one(), Z128::zero());
        assert_eq!(Z128(1 << 127) * Z128(2), Z128(0));
        let mut x = Z64(5);
        x *= Z64(3);
        x -= Z64(1);
        x += Z64(2);
        assert_eq!(x, Z64(16));
        assert_eq!(Z64::from_u128((7u128 << 64) | 9), Z64(9));
        assert_eq!(Z64(9).to_u128(), 9);
        assert_eq!(Z128::from_u64(u64::MAX).to_u128(), u64::MAX as u128);
        assert_eq!(Z64::BITS, 64);
        assert_eq!(Z128::BITS, 128);
    }

    #[test]
    fn reduction_is_a_homomorphism() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for _ in 0..100 {
            let (x, y) = (Z128::random(&mut rng), Z128::random(&mut rng));
            assert_eq!(z128_to_z64(x * y), z128_to_z64(x) * z128_to_z64(y));
            assert_eq!(z128_to_z64(x + y), z128_to_z64(x) + z128_to_z64(y));
            assert_eq!(Z64::from(x - y), z128_to_z64(x) - z128_to_z64(y));
        }
    }
}
