//! Fixed-point division in MPC: floor(10^digits · a / d) for secret a, d with 0 ≤ a < d, by
//! decimal long division. Each digit is one vectorised comparison of 10·r against k·d for
//! k = 1..9 (the digit is how many hold), one bit injection, and a subtraction. Nothing but
//! the quotient's shares comes out; no intermediate value is opened.

use crate::engine::{BitShares, Result, Session, Share, Transport, Z128};

/// Shares of floor(10^digits · a / d), for 0 ≤ a < d and 10·d < 2^(bits − 1).
pub async fn decimal_quotient<T: Transport>(
    s: &mut Session<T>,
    a: Share<Z128>,
    d: Share<Z128>,
    digits: u32,
    bits: u32,
) -> Result<Share<Z128>> {
    let me = s.id();
    let mut r = a;
    let mut q = Share::<Z128>::default();
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
    }
    Ok(q)
}
