//! GF(2^64) = GF(2)[X] / (X^64 + X^4 + X^3 + X + 1), the field the AND-gate proofs run in.
//!
//! An element is a u64 whose bit s is the coefficient of X^s, so a 64-bit word of gate
//! relations *is* a field element (bit s of the word ↦ X^s). Addition is XOR; the product
//! uses the carry-less multiply instruction where the CPU has it (checked once at run
//! time) and a portable shift-and-add otherwise; both are tested against each other. This
//! module holds arithmetic only: no protocol, no randomness policy.

use rand::RngCore;

/// The low terms of the reduction polynomial: X^64 = X^4 + X^3 + X + 1.
const LOW: u64 = 0x1b;

/// An element of GF(2^64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Gf64(pub u64);

impl Gf64 {
    pub const ZERO: Gf64 = Gf64(0);
    pub const ONE: Gf64 = Gf64(1);

    /// A uniformly random element.
    pub fn random<G: RngCore + ?Sized>(rng: &mut G) -> Self {
        Gf64(rng.next_u64())
    }

    /// The element times X: a shift and one conditional reduction.
    #[inline]
    pub fn mul_x(self) -> Self {
        let carry = self.0 >> 63;
        Gf64((self.0 << 1) ^ (carry.wrapping_neg() & LOW))
    }

    /// Little-endian encoding, 8 bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }

    /// Encodes a slice, 8 bytes per element.
    pub fn encode_slice(v: &[Gf64]) -> Vec<u8> {
        v.iter().flat_map(|e| e.to_bytes()).collect()
    }

    /// Decodes exactly `n` elements; `None` on any other length.
    pub fn decode_vec(bytes: &[u8], n: usize) -> Option<Vec<Gf64>> {
        if bytes.len() != n.checked_mul(8)? {
            return None;
        }
        Some(
            bytes
                .chunks_exact(8)
                .map(|c| Gf64(u64::from_le_bytes(c.try_into().expect("8-byte chunk"))))
                .collect(),
        )
    }
}

impl std::ops::Add for Gf64 {
    type Output = Gf64;
    #[inline]
    #[allow(clippy::suspicious_arithmetic_impl)] // addition in characteristic 2 is XOR
    fn add(self, o: Gf64) -> Gf64 {
        Gf64(self.0 ^ o.0)
    }
}

impl std::ops::Sub for Gf64 {
    type Output = Gf64;
    #[inline]
    #[allow(clippy::suspicious_arithmetic_impl)] // subtraction in characteristic 2 is XOR
    fn sub(self, o: Gf64) -> Gf64 {
        Gf64(self.0 ^ o.0)
    }
}

impl std::ops::AddAssign for Gf64 {
    #[inline]
    #[allow(clippy::suspicious_op_assign_impl)]
    fn add_assign(&mut self, o: Gf64) {
        self.0 ^= o.0;
    }
}

impl std::ops::Mul for Gf64 {
    type Output = Gf64;
    #[inline]
    fn mul(self, o: Gf64) -> Gf64 {
        let (hi, lo) = clmul(self.0, o.0);
        reduce(hi, lo)
    }
}

/// A multiplication strategy for hot loops: [`Portable`] everywhere, [`Clmul`] inside a
/// function compiled with the `pclmulqdq` feature (see [`with_fast_mul`]), where it inlines
/// to one instruction plus the reduction.
pub trait GfMul {
    fn mul(a: Gf64, b: Gf64) -> Gf64;
    /// The unreduced 128-bit product as (high, low), for sums reduced once
    /// ([`Wide::reduce`]).
    fn mul_wide(a: Gf64, b: Gf64) -> Wide;
}

/// An unreduced sum of products: high·X^64 + low.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wide(pub u64, pub u64);

impl Wide {
    #[inline(always)]
    pub fn plus(self, o: Wide) -> Wide {
        Wide(self.0 ^ o.0, self.1 ^ o.1)
    }

    #[inline(always)]
    pub fn reduce(self) -> Gf64 {
        reduce(self.0, self.1)
    }
}

/// Shift-and-add products.
pub struct Portable;

impl GfMul for Portable {
    #[inline(always)]
    fn mul(a: Gf64, b: Gf64) -> Gf64 {
        let (hi, lo) = clmul_portable(a.0, b.0);
        reduce(hi, lo)
    }
    #[inline(always)]
    fn mul_wide(a: Gf64, b: Gf64) -> Wide {
        let (hi, lo) = clmul_portable(a.0, b.0);
        Wide(hi, lo)
    }
}

/// Carry-less multiply instruction products; only sound inside `with_fast_mul`.
#[cfg(target_arch = "x86_64")]
pub struct Clmul;

#[cfg(target_arch = "x86_64")]
impl GfMul for Clmul {
    #[inline(always)]
    fn mul(a: Gf64, b: Gf64) -> Gf64 {
        // SAFETY: `Clmul` is only named inside `with_fast_mul`'s pclmulqdq-enabled body,
        // which runs only after the feature was detected.
        let (hi, lo) = unsafe { clmul_x86(a.0, b.0) };
        reduce(hi, lo)
    }
    #[inline(always)]
    fn mul_wide(a: Gf64, b: Gf64) -> Wide {
        // SAFETY: as for `mul`.
        let (hi, lo) = unsafe { clmul_x86(a.0, b.0) };
        Wide(hi, lo)
    }
}

/// Defines `pub(crate) fn $name($args) -> $ret` that runs the kernel `$kernel::<M>` (generic
/// over [`GfMul`], `#[inline(always)]`) with [`Clmul`] compiled for `pclmulqdq` when the
/// CPU has it (checked at run time) and with [`Portable`] otherwise.
macro_rules! dispatch_mul {
    ($(#[$meta:meta])* fn $name:ident = $kernel:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty) => {
        $(#[$meta])*
        pub(crate) fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "pclmulqdq", enable = "sse2")]
                unsafe fn fast($($arg: $ty),*) -> $ret {
                    $kernel::<$crate::engine::verify::gf64::Clmul>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("pclmulqdq") {
                    // SAFETY: the feature was detected just above.
                    return unsafe { fast($($arg),*) };
                }
            }
            $kernel::<$crate::engine::verify::gf64::Portable>($($arg),*)
        }
    };
}
pub(crate) use dispatch_mul;

/// Reduces hi·X^64 + lo. hi·X^64 ≡ hi·(X^4 + X^3 + X + 1); the part of that product above
/// X^63 has at most 4 bits and folds once more.
#[inline]
fn reduce(hi: u64, lo: u64) -> Gf64 {
    let (h2, l2) = clmul_portable_small(hi);
    let (_, l3) = clmul_portable_small(h2);
    Gf64(lo ^ l2 ^ l3)
}

/// hi · (X^4 + X^3 + X + 1) as a 128-bit product, by shifts (the constant has four terms).
#[inline]
fn clmul_portable_small(h: u64) -> (u64, u64) {
    let lo = h ^ (h << 1) ^ (h << 3) ^ (h << 4);
    let hi = (h >> 63) ^ (h >> 61) ^ (h >> 60);
    (hi, lo)
}

/// The 128-bit carry-less product of a and b as (high, low).
#[inline]
fn clmul(a: u64, b: u64) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("pclmulqdq") {
            // SAFETY: the instruction set extension was detected at run time just above.
            return unsafe { clmul_x86(a, b) };
        }
    }
    clmul_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq", enable = "sse2")]
#[inline]
unsafe fn clmul_x86(a: u64, b: u64) -> (u64, u64) {
    use std::arch::x86_64::{
        _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_cvtsi64_si128, _mm_unpackhi_epi64,
    };
    let x = _mm_cvtsi64_si128(a as i64);
    let y = _mm_cvtsi64_si128(b as i64);
    let p = _mm_clmulepi64_si128(x, y, 0);
    let lo = _mm_cvtsi128_si64(p) as u64;
    let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(p, p)) as u64;
    (hi, lo)
}

/// Shift-and-add carry-less product, four bits of b at a time.
fn clmul_portable(a: u64, b: u64) -> (u64, u64) {
    let mut table = [(0u64, 0u64); 16];
    for (i, entry) in table.iter_mut().enumerate() {
        let (mut hi, mut lo) = (0u64, 0u64);
        for bit in 0..4 {
            if i >> bit & 1 == 1 {
                lo ^= a << bit;
                if bit > 0 {
                    hi ^= a >> (64 - bit);
                }
            }
        }
        *entry = (hi, lo);
    }
    let (mut hi, mut lo) = (0u64, 0u64);
    for nib in (0..16).rev() {
        hi = (hi << 4) | (lo >> 60);
        lo <<= 4;
        let (th, tl) = table[(b >> (4 * nib) & 0xf) as usize];
        hi ^= th;
        lo ^= tl;
    }
    (hi, lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Bit-by-bit schoolbook product with reduction after every step: the definition.
    fn slow_mul(a: u64, b: u64) -> u64 {
        let mut acc = Gf64(0);
        let mut p = Gf64(a);
        for s in 0..64 {
            if b >> s & 1 == 1 {
                acc += p;
            }
            p = p.mul_x();
        }
        acc.0
    }

    #[test]
    fn product_matches_the_definition_on_both_paths() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut cases = vec![
            (0, 0),
            (1, u64::MAX),
            (u64::MAX, u64::MAX),
            (1 << 63, 1 << 63),
        ];
        cases.extend((0..2000).map(|_| (rng.next_u64(), rng.next_u64())));
        for (a, b) in cases {
            let want = slow_mul(a, b);
            assert_eq!((Gf64(a) * Gf64(b)).0, want, "{a:#x} * {b:#x}");
            let (hi, lo) = clmul_portable(a, b);
            assert_eq!(reduce(hi, lo).0, want);
        }
    }

    #[test]
    fn field_laws_hold() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        for _ in 0..500 {
            let [a, b, c] = [0; 3].map(|_| Gf64::random(&mut rng));
            assert_eq!(a * (b + c), a * b + a * c);
            assert_eq!((a * b) * c, a * (b * c));
            assert_eq!(a * b, b * a);
            assert_eq!(a * Gf64::ONE, a);
            assert_eq!(a.mul_x(), a * Gf64(2));
        }
        // X^64 reduces to X^4 + X^3 + X + 1.
        assert_eq!(Gf64(1 << 63).mul_x(), Gf64(LOW));
        // No zero divisors among random pairs (a field): a·b = 0 only if a or b is 0.
        let a = Gf64(0x8000_0000_0000_0001);
        assert_ne!(a * Gf64(0xffff_ffff_ffff_fffe), Gf64::ZERO);
    }

    #[test]
    fn encoding_round_trips_and_rejects_wrong_lengths() {
        let v = vec![Gf64(1), Gf64(u64::MAX), Gf64(42)];
        let bytes = Gf64::encode_slice(&v);
        assert_eq!(Gf64::decode_vec(&bytes, 3), Some(v));
        assert_eq!(Gf64::decode_vec(&bytes, 2), None);
        assert_eq!(Gf64::decode_vec(&bytes[1..], 3), None);
        assert_eq!(Gf64::decode_vec(&[], usize::MAX), None);
    }
}
