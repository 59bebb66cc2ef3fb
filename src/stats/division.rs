//! Fixed-point division in MPC: 10^digits · a / d for secret a, d with 0 ≤ a ≤ d, by
//! decimal long division, for a whole vector of quotients at once. Each digit is one
//! vectorised comparison of 10·r against k·d for k = 1..9 (the digit is how many hold), one
//! bit injection, and a subtraction. Nothing but the quotients' shares comes out; no
//! intermediate value is opened.
//!
//! The quotient is rounded half to even: with remainder r after the last digit, it rounds
//! up when 2r > d, or 2r = d and the last digit is odd (the parity of a digit is the XOR of
//! its comparison bits [digit ≥ k], a local operation). For a = d the digits are all 9 and
//! the remainder d, so the rounding gives exactly 10^digits.

use crate::engine::{BitShares, Result, Session, Share, Transport, Z128};

/// Shares of 10^digits · a_i / d_i rounded to the nearest integer, ties to even, for
/// 0 ≤ a_i ≤ d_i, digits ≥ 1 and 10·d_i < 2^(bits − 1).
pub async fn decimal_quotients_rounded<T: Transport>(
    s: &mut Session<T>,
    a: &[Share<Z128>],
    d: &[Share<Z128>],
    digits: u32,
    bits: u32,
) -> Result<Vec<Share<Z128>>> {
    let m = a.len();
    let (q, r, last) = long_division(s, a, d, digits, bits).await?;
    // [2r > d] is d − 2r < 0; [2r = d] is 2r − d = 0.
    let twice: Vec<Share<Z128>> = r.iter().map(|v| v.mul_public(Z128(2))).collect();
    let gap: Vec<Share<Z128>> = d.iter().zip(&twice).map(|(d, t)| d.sub(*t)).collect();
    let above = s.msb(&gap, bits).await?;
    let neg: Vec<Share<Z128>> = gap.iter().map(|g| g.neg()).collect();
    let half = s.is_zero(&neg, bits).await?;
    // last holds [digit ≥ k] for k = 1..9, element-major per k: bit k·m + i.
    let mut odd = last.slice(0, m)?;
    for k in 1..9 {
        odd = odd.xor(&last.slice(k * m, m)?)?;
    }
    let tie_up = s.and(&half, &odd).await?;
    // Exclusive cases, so XOR is OR.
    let up = s.b2a::<Z128>(&above.xor(&tie_up)?).await?;
    Ok(q.into_iter().zip(up).map(|(q, u)| q.add(u)).collect())
}

/// Long division: the quotients floor(10^digits · a_i / d_i), the remainders, and the
/// comparison bits [digit ≥ k] of the last digits (k-major: bit (k − 1)·m + i).
async fn long_division<T: Transport>(
    s: &mut Session<T>,
    a: &[Share<Z128>],
    d: &[Share<Z128>],
    digits: u32,
    bits: u32,
) -> Result<(Vec<Share<Z128>>, Vec<Share<Z128>>, BitShares)> {
    let me = s.id();
    let m = a.len();
    let mut r = a.to_vec();
    let mut q = vec![Share::<Z128>::default(); m];
    let mut last = BitShares::zeros(9 * m);
    let one = Share::default().add_public(me, Z128(1));
    for _ in 0..digits {
        let r10: Vec<Share<Z128>> = r.iter().map(|v| v.mul_public(Z128(10))).collect();
        // t_{k,i} = 10r_i − k·d_i < 0 exactly when digit i is below k.
        let mut t = Vec::with_capacity(9 * m);
        for k in 1..=9u128 {
            t.extend(r10.iter().zip(d).map(|(r, d)| r.sub(d.mul_public(Z128(k)))));
        }
        let at_least = s.msb(&t, bits).await?.not(me);
        // One round: Σ_k [digit ≥ k]·d (to subtract) and Σ_k [digit ≥ k] (the digit).
        let both = BitShares::concat(&[&at_least, &at_least]);
        let mut x = Vec::with_capacity(18 * m);
        for _ in 0..9 {
            x.extend_from_slice(d);
        }
        x.extend(std::iter::repeat_n(one, 9 * m));
        let injected = s.bit_inject(&both, &x).await?;
        for i in 0..m {
            let sub = (0..9).fold(Share::default(), |acc, k| acc.add(injected[k * m + i]));
            let digit = (0..9).fold(Share::default(), |acc, k| {
                acc.add(injected[9 * m + k * m + i])
            });
            r[i] = r10[i].sub(sub);
            q[i] = q[i].mul_public(Z128(10)).add(digit);
        }
        last = at_least;
    }
    Ok((q, r, last))
}
