//! The value window inside the MPC: the check that it is a plain decimal
//! (`template::value::check_value_text`: digits, at most one point with a digit on each side
//! and at most the template's decimals after it), and the oblivious parse into an arithmetic
//! share of value × 10^scale. Where the point is stays secret: only the window's length is
//! public.
//!
//! # The parse
//!
//! Let A be the positions the point may take (`template::value::point_positions`), π_P the
//! shared bit "the point is at P" and d_j the low nibble of byte j (its digit). For each
//! P ∈ A and for "no point", V_P = Σ_j d_j · w_j(P) is a public linear combination of the
//! d_j (weights 10^e for the integer digits and the first `scale` decimals, 0 for the point
//! and the truncated digits). The check proves at most one π_P is 1, so
//! value = V_none + Σ_P π_P · (V_P − V_none): one B2A of the nibbles and the π_P (two
//! rounds) and one round of |A| ≤ 31 products in Z_2^128.
//!
//! Must not hold: openings (the verdict bit is opened by the caller with the other checks).

use crate::engine::binary::BitShares;
use crate::engine::error::Result;
use crate::engine::ring::{Ring, Z128};
use crate::engine::session::Session;
use crate::engine::share::Share;
use crate::engine::transport::Transport;
use crate::oracle::template::value::point_positions;

use super::circuit::{Circuit, Wire};
use super::classes::ByteClasses;
use super::inspect::mask as plane_mask;
use super::shared::SharedBytes;

/// The verdict bit and the point indicators at the positions of A, in order.
pub struct ValueWires {
    pub ok: Wire,
    pub points: Wire,
}

/// The decimal check of `window` with at most `max_decimals` decimals.
pub fn value_checks(
    c: &mut Circuit,
    window: &SharedBytes,
    max_decimals: u32,
) -> Result<ValueWires> {
    let len = window.len();
    let allowed = point_positions(len, max_decimals);
    let classes = ByteClasses::new(c, window)?;
    let digit = classes.member(c, |b| b.is_ascii_digit())?;
    let point = classes.member(c, |b| b == b'.')?;
    // Each byte is a digit, or (at an allowed position) the point.
    let point_allowed = c.and_public(point, plane_mask(len, |j| allowed.contains(&j)));
    let each = c.xor(digit, point_allowed)?;
    // At most one point.
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for (i, &p) in allowed.iter().enumerate() {
        for &q in &allowed[i + 1..] {
            left.push(c.slice(point, p, 1)?);
            right.push(c.slice(point, q, 1)?);
        }
    }
    let (left, right) = (c.concat(&left), c.concat(&right));
    let two = c.and(left, right)?;
    let not_two = c.not(two);
    let ok = c.and_all(&[each, not_two])?;
    let points: Vec<Wire> = allowed
        .iter()
        .map(|&p| c.slice(point, p, 1))
        .collect::<Result<_>>()?;
    let points = c.concat(&points);
    Ok(ValueWires { ok, points })
}

/// The weight of digit j when the point is at `point` (`None`: no point), for `scale`.
fn weight(len: usize, point: Option<usize>, scale: u32, j: usize) -> u128 {
    let scale = scale as usize;
    let p = point.unwrap_or(len);
    let e = if j < p {
        p - 1 - j + scale
    } else if j == p || j - p > scale {
        return 0;
    } else {
        scale - (j - p)
    };
    10u128.pow(e as u32)
}

/// value × 10^scale of a checked window, digits beyond the scale truncated; `points` are
/// the indicator shares of [`ValueWires::points`].
pub async fn parse<T: Transport>(
    s: &mut Session<T>,
    window: &SharedBytes,
    points: &BitShares,
    max_decimals: u32,
    scale: u32,
) -> Result<Share<Z128>> {
    let len = window.len();
    let allowed = point_positions(len, max_decimals);
    let nibbles = BitShares::concat(&window.planes[..4].iter().collect::<Vec<_>>());
    let bits = BitShares::concat(&[&nibbles, points]);
    let shares = s.b2a::<Z128>(&bits).await?;
    let (nib, pis) = shares.split_at(4 * len);
    // d_j = Σ_t 2^t · bit t of byte j.
    let digits: Vec<Share<Z128>> = (0..len)
        .map(|j| {
            let mut d = Share::<Z128>::zero();
            for t in 0..4 {
                d += nib[t * len + j].mul_public(Z128::from_u128(1 << t));
            }
            d
        })
        .collect();
    let combine = |point: Option<usize>| {
        let mut v = Share::<Z128>::zero();
        for (j, d) in digits.iter().enumerate() {
            v += d.mul_public(Z128::from_u128(weight(len, point, scale, j)));
        }
        v
    };
    let none = combine(None);
    let diffs: Vec<Share<Z128>> = allowed
        .iter()
        .map(|&p| {
            let mut d = combine(Some(p));
            d -= none;
            d
        })
        .collect();
    let products = s.mul(pis, &diffs).await?;
    let mut value = none;
    for p in products {
        value += p;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::binary::unpack;
    use crate::engine::local::run3;
    use crate::engine::share::reconstruct;
    use crate::oracle::template::value::{check_value_text, scaled};

    /// Checks and parses `texts` in MPC; returns (verdict, value) per text.
    async fn run(texts: Vec<&'static str>, max: u32, scale: u32) -> Vec<(bool, u128)> {
        let out = run3(11, move |mut s| {
            let texts = texts.clone();
            async move {
                let id = s.id();
                let mut results = Vec::new();
                for t in &texts {
                    let zeros = SharedBytes {
                        planes: std::array::from_fn(|_| BitShares::zeros(t.len())),
                    };
                    let w = zeros.xor_public(id, t.as_bytes())?;
                    let mut c = Circuit::new(id);
                    let v = value_checks(&mut c, &w, max)?;
                    let mut ands = 0;
                    let out = c.eval(&mut s, &[v.ok, v.points], &mut ands).await?;
                    let ok = unpack(&s.open_bits(&out[0]).await?, 1)[0];
                    let x = parse(&mut s, &w, &out[1], max, scale).await?;
                    results.push((ok, x));
                }
                Ok(results)
            }
        })
        .await;
        let parties: Vec<Vec<(bool, Share<Z128>)>> = out.into_iter().map(|r| r.unwrap()).collect();
        (0..parties[0].len())
            .map(|k| {
                let shares = [parties[0][k].1, parties[1][k].1, parties[2][k].1];
                (parties[0][k].0, reconstruct(&shares).unwrap().0)
            })
            .collect()
    }

    #[tokio::test]
    async fn verdicts_and_values_match_the_plaintext_rule() {
        let texts = vec![
            "0",
            "12",
            "0.01",
            "12.5",
            "12.34567891",
            "1.23456789",
            "007",
            "99999999",
            ".5",
            "5.",
            "1.2.3",
            "1..2",
            "-1",
            "1e5",
            "a",
            "12 ",
            "1.234567891",
        ];
        let (max, scale) = (8, 4);
        let got = run(texts.clone(), max, scale).await;
        for (t, (ok, v)) in texts.iter().zip(got) {
            let want = check_value_text(t.as_bytes(), max).is_ok();
            assert_eq!(ok, want, "{t:?}");
            if want {
                assert_eq!(v, scaled(t.as_bytes(), scale), "{t:?}");
            }
        }
    }

    #[tokio::test]
    async fn values_at_the_length_and_scale_limit_do_not_wrap() {
        // 20 nines with scale 18: 38 digits, the largest the parse admits (< 2^127).
        let text: &'static str = "99999999999999999999";
        let got = run(vec![text, "9999999999.9999999999"], 18, 18).await;
        assert!(got[0].0);
        assert_eq!(got[0].1, scaled(text.as_bytes(), 18));
        assert!(got[0].1 > 1u128 << 126);
        assert!(got[1].0);
        assert_eq!(got[1].1, scaled(b"9999999999.9999999999", 18));
        // 30 characters, the longest text, at scale 8: also 38 digits.
        let longest: &'static str = "999999999999999999999999999999";
        assert_eq!(longest.len(), crate::oracle::template::value::MAX_VALUE_LEN);
        let got = run(vec![longest], 8, 8).await;
        assert!(got[0].0);
        assert_eq!(got[0].1, scaled(longest.as_bytes(), 8));
    }
}
