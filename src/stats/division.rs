//! Fixed-point division in MPC: 10^digits · a / d for secret a, d with 0 ≤ a < d, by
//! decimal long division. Each digit is one vectorised comparison of 10·r against k·d for
//! k = 1..9 (the digit is how many hold), one bit injection, and a subtraction. Nothing but
//! the quotient's shares comes out; no intermediate value is opened.
//!
//! [`decimal_quotient_rounded`] rounds half to even instead: with remainder r after the
//! last digit, it rounds up when 2r > d, or 2r = d and the last digit is odd (the parity of
//! a digit is the XOR of its comparison bits [digit ≥ k], a local operation).

use crate::engine::{BitShares, Result, Session, Share, Transport, Z128};

/// Shares of 10^digits · a / d rounded to the nearest integer, ties to even, for
/// 0 ≤ a < d, digits ≥ 1 and 10·d < 2^(bits − 1).
pub async fn decimal_quotient_rounded<T: Transport>(
    s: &mut Session<T>,
    a: Share<Z128>,
    d: Share<Z128>,
    digits: u32,
    bits: u32,
) -> Result<Share<Z128>> {
    let (q, r, last) = long_division(s, a, d, digits, bits).await?;
    // [2r > d] is d − 2r < 0; [2r = d] is 2r − d = 0.
    let twice = r.mul_public(Z128(2));
    let above = s.msb(&[d.sub(twice)], bits).await?;
    let half = s.is_zero(&[twice.sub(d)], bits).await?;
    let mut odd = last.slice(0, 1)?;
    for k in 1..9 {
        odd = odd.xor(&last.slice(k, 1)?)?;
    }
    let tie_up = s.and(&half, &odd).await?;
    // Exclusive cases, so XOR is OR.
    let up = above.xor(&tie_up)?;
    let up = s.b2a::<Z128>(&up).await?;
    Ok(q.add(up[0]))
}

/// Long division: the quotient floor(10^digits · a / d), the remainder, and the comparison
/// bits [digit ≥ k] (k = 1..9) of the last digit.
async fn long_division<T: Transport>(
    s: &mut Session<T>,
    a: Share<Z128>,
    d: Share<Z128>,
    digits: u32,
    bits: u32,
) -> Result<(Share<Z128>, Share<Z128>, BitShares)> {
    let me = s.id();
    let mut r = a;
    let mut q = Share::<Z128>::default();
    let mut last = BitShares::zeros(9);
    for _ in 0..digits {
        let r10 = r.mul_public(Z128(10));
        // t_k = 10r − k·d < 0 exactly when the digit is below k.
        let t: Vec<Share<Z128>> = (1..=9u128)
            .map(|k| r10.sub(d.mul_public(Z128(k))))
            .collect();
        let below = s.msb(&t, bits).await?;
        let at_least = below.not(me);
        // One round: Σ_k [digit ≥ k]·d (to subtract) and Σ_k [digit ≥ k] (the digit).
        let both = BitShares::concat(&[&at_least, &at_least]);
        let mut x = vec![d; 9];
        x.extend(std::iter::repeat_n(
            Share::default().add_public(me, Z128(1)),
            9,
        ));
        let injected = s.bit_inject(&both, &x).await?;
        let sub = crate::engine::share::sum(&injected[..9]);
        let digit = crate::engine::share::sum(&injected[9..]);
        r = r10.sub(sub);
        q = q.mul_public(Z128(10)).add(digit);
        last = at_least;
    }
    Ok((q, r, last))
}
