//! The MPC programs of the statistics: from the stored shares of a dataset to fresh shares of
//! exactly the values the statistic opens to the consumer, nothing more.
//!
//! * `sum`, `mean`: Σx (the count is public, so the mean implies Σx and nothing else).
//! * `variance`, `stddev`: V = n·Σx² − (Σx)² = n·d·variance (d = n or n − 1), in Z_2^256
//!   after lifting the shares (`engine::lift`), so V is exact for every dataset; one
//!   resharing of local cross terms. V is opened as its two 128-bit halves.
//! * `min`, `max`, `median`, `quantile`, `percentile`: quickselect on comparison bits opened
//!   after an oblivious shuffle (see `engine::select`); a quantile opens only the
//!   interpolated x_lo·(den − f) + x_hi·f, never x_lo or x_hi; an even median x_lo + x_hi.
//! * `gini`: a full oblivious sort, then Σ(2i − n − 1)·x_(i) and n·Σx stay secret; only
//!   10^6·G rounded half to even is opened. Whether Σx = 0 (the coefficient is then
//!   undefined) is decided obliviously, so not even that is opened.
//! * `lorenz --points K`: sorted like Gini; the share of Σx held by the lowest ⌊i·n/K⌋
//!   values for i < K, each rounded half to even at 6 digits; blocks of n/K ≥ min_cohort.
//! * `histogram`: x < e_k for every value and edge in one comparison batch, summed per edge
//!   in the arithmetic domain; the cumulative counts are opened, which is the histogram.
//! * A filter shuffles first and opens the matching bits (see `filter`): it reveals the
//!   number of matching contributions, which must reach `min_cohort`.

use anyhow::{bail, Result};

use super::order::{at_ranks, quantile_ranks, sorted};
use super::{division, filter, index_bits, Query, Stat, GINI_DIGITS};
use crate::engine::{
    a2b_and_gates, edge_tree_gates, msb_and_gates, share, unpack, BitShares, Ring, Session, Share,
    Transport, Z128, Z256, Z64,
};

/// The value a Gini result carries when every value is 0 (the coefficient is undefined).
pub const GINI_UNDEFINED: u128 = u128::MAX;

/// What a party hands the consumer: the count computed over and its shares of the opened
/// values.
pub struct Output {
    pub count: u64,
    pub values: Vec<Share<Z128>>,
}

/// Runs the program of `q` over this party's shares `x` of a dataset. In a malicious
/// session everything the program computed is proven before its output shares are
/// returned (they leave the parties for the consumer).
pub async fn run<T: Transport>(
    s: &mut Session<T>,
    q: &Query,
    x: Vec<Share<Z128>>,
    min_cohort: u64,
) -> Result<Output> {
    let out = compute(s, q, x, min_cohort).await?;
    s.verify().await?;
    Ok(out)
}

async fn compute<T: Transport>(
    s: &mut Session<T>,
    q: &Query,
    mut x: Vec<Share<Z128>>,
    min_cohort: u64,
) -> Result<Output> {
    if let Some(f) = &q.filter {
        // Shuffle first: the opened bits then say how many match, not which.
        let shuffled = s.shuffle(&[x]).await?.swap_remove(0);
        let bits = filter::matching(s, &shuffled, f).await?;
        let open = unpack(&s.open_bits(&bits).await?, shuffled.len());
        x = shuffled
            .into_iter()
            .zip(open)
            .filter_map(|(v, m)| m.then_some(v))
            .collect();
        if (x.len() as u64) < min_cohort {
            bail!(
                "fewer than {min_cohort} contributions match {} (min_cohort)",
                f.describe(q.scale)
            );
        }
    }
    let n = x.len();
    q.check_count(n as u64)?;
    if let Some(budget) = &q.privacy {
        return Ok(Output {
            count: n as u64,
            values: super::private::run(s, q, &x, budget).await?,
        });
    }
    // Every stored value lies in [0, max] (range-checked at intake): order statistics
    // compare keys of that many bits, not of the 62 any dataset may have.
    let vb = super::private::domain_bits(q.max_scaled);
    let out: Vec<Share<Z128>> = match q.stat {
        Stat::Count => Vec::new(),
        Stat::Sum | Stat::Mean => vec![share::sum(&x)],
        Stat::Variance | Stat::Stddev => {
            let w = s.lift(&x).await?;
            let total = share::sum(&w);
            // V = n·Σ w² − (Σ w)²: one gate, Σ_l x_l·y_l over [w…, Σw] and [n·w…, −Σw].
            let nn = Z256::from_u64(n as u64);
            let mut xs = w.clone();
            xs.push(total);
            let mut ys: Vec<Share<Z256>> = w.iter().map(|v| v.mul_public(nn)).collect();
            ys.push(total.neg());
            let values = s
                .products(&[crate::engine::Gate {
                    x: &xs,
                    y: &ys,
                    linear: Share::zero(),
                }])
                .await?;
            return Ok(Output {
                count: n as u64,
                values: halves(&values),
            });
        }
        Stat::Min => at_ranks(s, &x, &[0], vb).await?,
        Stat::Max => at_ranks(s, &x, &[n - 1], vb).await?,
        Stat::Median if n % 2 == 1 => at_ranks(s, &x, &[n / 2], vb).await?,
        Stat::Median => {
            let v = at_ranks(s, &x, &[n / 2 - 1, n / 2], vb).await?;
            vec![v[0].add(v[1])]
        }
        Stat::Quantile | Stat::Percentile => {
            let f = q.fraction.expect("validated");
            let (lo, hi, frac) = quantile_ranks(n, f);
            let v = at_ranks(s, &x, &[lo, hi], vb).await?;
            vec![v[0]
                .mul_public(Z128(f.den - frac))
                .add(v[1].mul_public(Z128(frac)))]
        }
        Stat::Gini => gini(s, &x, vb).await?,
        Stat::Lorenz => {
            let k = q.points.expect("validated") as usize;
            if (n / k) < min_cohort as usize {
                bail!(
                    "lorenz --points {k} over {n} contributions: every point adds a block of \
                     n/K contributions, which must hold at least {min_cohort} (min_cohort); \
                     ask for at most {} points",
                    (n as u64 / min_cohort.max(1)).max(1)
                );
            }
            lorenz(s, &x, k, vb).await?
        }
        Stat::Histogram => {
            let values = histogram(s, &x, &q.edges, vb).await?;
            return Ok(Output {
                count: n as u64,
                values,
            });
        }
    };
    let values = s.reshare(&out).await?;
    Ok(Output {
        count: n as u64,
        values,
    })
}

/// Z_2^256 shares as their low and high 128-bit halves, in that order (the consumer
/// recombines the halves of each component before adding components).
pub fn halves(x: &[Share<Z256>]) -> Vec<Share<Z128>> {
    x.iter()
        .flat_map(|s| {
            [
                Share {
                    a: Z128(s.a.lo),
                    b: Z128(s.b.lo),
                },
                Share {
                    a: Z128(s.a.hi),
                    b: Z128(s.b.hi),
                },
            ]
        })
        .collect()
}

async fn gini<T: Transport>(
    s: &mut Session<T>,
    x: &[Share<Z128>],
    value_bits: u32,
) -> Result<Vec<Share<Z128>>> {
    let n = x.len();
    let l = index_bits(n);
    // 10·n·Σx < 10·n²·2^62 must stay below 2^(bits − 1).
    let bits = 67 + 2 * l;
    if bits > 128 {
        bail!("gini over {n} contributions is beyond the 128-bit ring");
    }
    let sorted = sorted(s, x, value_bits).await?;
    let total = share::sum(&sorted);
    let zero = s.is_zero(&[total], 63 + l).await?;
    let mut num = Share::<Z128>::default();
    for (i, v) in sorted.iter().enumerate() {
        let c = 2 * (i as i128 + 1) - n as i128 - 1;
        num = num.add(v.mul_public(Z128(c as u128)));
    }
    let den = total.mul_public(Z128(n as u128));
    undefined_when_zero(s, &zero, &[num], &[den], bits).await
}

/// num / den for each pair, 10^6-scaled and rounded half to even, or [`GINI_UNDEFINED`]
/// where the shared bit `zero` (Σx = 0, so every den is 0) is set. Decided obliviously:
/// the parties learn nothing, not even whether Σx = 0 (den + zero is never 0; the bit
/// then selects the undefined marker).
async fn undefined_when_zero<T: Transport>(
    s: &mut Session<T>,
    zero: &BitShares,
    nums: &[Share<Z128>],
    dens: &[Share<Z128>],
    bits: u32,
) -> Result<Vec<Share<Z128>>> {
    let me = s.id();
    let z = s.b2a::<Z128>(zero).await?[0];
    let dens: Vec<Share<Z128>> = dens.iter().map(|d| d.add(z)).collect();
    let q = division::decimal_quotients_rounded(s, nums, &dens, GINI_DIGITS, bits).await?;
    let marker: Vec<Share<Z128>> = q
        .iter()
        .map(|q| {
            Share::default()
                .add_public(me, Z128(GINI_UNDEFINED))
                .sub(*q)
        })
        .collect();
    let select = BitShares::concat(&vec![zero; q.len()]);
    let chosen = s.bit_inject(&select, &marker).await?;
    Ok(q.iter().zip(chosen).map(|(q, c)| q.add(c)).collect())
}

/// The Lorenz curve's K − 1 inner points: the share of Σx held by the lowest ⌊i·n/K⌋
/// values, i = 1..K−1, each 10^6·share rounded half to even; all [`GINI_UNDEFINED`] when
/// Σx = 0. Sorted like Gini; only the rounded shares are opened.
async fn lorenz<T: Transport>(
    s: &mut Session<T>,
    x: &[Share<Z128>],
    k: usize,
    value_bits: u32,
) -> Result<Vec<Share<Z128>>> {
    let n = x.len();
    let l = index_bits(n);
    // 10·Σx < 10·n·2^62 must stay below 2^(bits − 1).
    let bits = 67 + l;
    let sorted = sorted(s, x, value_bits).await?;
    let total = share::sum(&sorted);
    let zero = s.is_zero(&[total], 63 + l).await?;
    let mut prefix = Vec::with_capacity(k - 1);
    let mut acc = Share::<Z128>::default();
    let mut taken = 0;
    for i in 1..k {
        let upto = i * n / k;
        for v in &sorted[taken..upto] {
            acc = acc.add(*v);
        }
        taken = upto;
        prefix.push(acc);
    }
    let totals = vec![total; k - 1];
    undefined_when_zero(s, &zero, &prefix, &totals, bits).await
}

/// Cumulative counts #{x < e_k}, reshared in Z_2^64 and carried in Z_2^128 components (the
/// consumer reduces them mod 2^64).
async fn histogram<T: Transport>(
    s: &mut Session<T>,
    x: &[Share<Z128>],
    edges: &[u128],
    value_bits: u32,
) -> Result<Vec<Share<Z128>>> {
    let counts = cumulative_counts(s, x, edges, value_bits).await?;
    Ok(widen64(&s.reshare(&counts).await?))
}

/// Z_2^64 shares carried in Z_2^128 components (the consumer reduces them mod 2^64).
pub fn widen64(x: &[Share<Z64>]) -> Vec<Share<Z128>> {
    x.iter()
        .map(|c| Share {
            a: Z128(u128::from(c.a.0)),
            b: Z128(u128::from(c.b.0)),
        })
        .collect()
}

/// Whether malicious-mode counts should decompose x once ([`Session::a2b`]) and compare
/// its bits with every public edge in one tree that computes the blocks edges share once
/// (`engine::edge_tree`), rather than compare x − e with 0 per edge: whichever proves fewer
/// AND gates, counted exactly from the public edges and the bit width `b`. Both pay the
/// carry-save layer of malicious mode (b − 1 ANDs per conversion on b bits, b per edge on
/// b + 1). At b = 47 and the bench's ten edges (1 to 3·10^4): 46 + 164 + 181 = 391 ANDs per
/// value against 10 × (47 + 110) = 1,570.
fn planes_prove_fewer(edges: &[u128], b: u32) -> bool {
    let planes = (b as usize - 1) + a2b_and_gates(b) + edge_tree_gates(edges, b as usize);
    let per_edge = edges.len() * (b as usize + msb_and_gates(b + 1));
    planes < per_edge
}

/// Shares of the cumulative counts #{x < e_k} in Z_2^64, one comparison batch. Every stored
/// value lies in [0, max] (range-checked at intake), so values are compared on the bits of
/// the dataset's maximum, `value_bits`, not on the 62 any dataset may use: an edge at or
/// above 2^value_bits has every value below it (its count is n, with no comparison), and
/// for the others x − e fits a signed (value_bits + 1)-bit number.
pub async fn cumulative_counts<T: Transport>(
    s: &mut Session<T>,
    x: &[Share<Z128>],
    edges: &[u128],
    value_bits: u32,
) -> Result<Vec<Share<Z64>>> {
    let me = s.id();
    let n = x.len();
    let b = value_bits.clamp(1, 62);
    let inside: Vec<u128> = edges.iter().copied().filter(|e| e >> b == 0).collect();
    let mut counts = if n == 0 || inside.is_empty() {
        vec![Share::default(); inside.len()]
    } else {
        let x64 = share::low64(x);
        let below = if s.malicious() && planes_prove_fewer(&inside, b) {
            // One bit decomposition, then the edges' shared carry tree: fewer proven ANDs.
            let planes = s.a2b(&x64, b).await?;
            s.ge_public_planes(&planes, &inside).await?.not(me)
        } else {
            let mut diffs = Vec::with_capacity(n * inside.len());
            for &e in &inside {
                diffs.extend(x64.iter().map(|v| v.add_public(me, Z64(0) - Z64(e as u64))));
            }
            // x, e < 2^b, so x − e is negative exactly when its bit b is set.
            s.msb(&diffs, b + 1).await?
        };
        // Every edge's count in the same two rounds.
        s.b2a_sums::<Z64>(&below, n).await?
    };
    // Edges sorted: those at or above 2^b come last, each with every value below it.
    counts.resize(edges.len(), Share::zero().add_public(me, Z64(n as u64)));
    Ok(counts)
}

#[cfg(test)]
mod path_tests {
    use super::planes_prove_fewer;

    /// Malicious counts take the planes where they prove fewer ANDs: many edges sharing
    /// their high bits do, and three neighbours near the top share nearly every bit; one
    /// edge on 20 bits or more does not (the decomposition alone costs more than its
    /// comparison), while on 1 or 2 bits, where the decomposition costs next to nothing,
    /// the planes win even for one.
    #[test]
    fn the_cheaper_path_is_chosen_from_the_edges() {
        let bench: Vec<u128> = (0..10u32)
            .map(|k| u128::from(10u64.pow(k / 2) * if k % 2 == 0 { 1 } else { 3 }))
            .collect();
        assert!(planes_prove_fewer(&bench, 47));
        let small: Vec<u128> = (1..=12).collect();
        let near = [(1u128 << 61) - 2, (1 << 61) - 1, 1 << 61];
        assert!(planes_prove_fewer(&near, 62));
        for b in [20u32, 47, 62] {
            assert!(!planes_prove_fewer(&[1], b), "one edge, {b} bits");
            assert!(
                !planes_prove_fewer(&[(1 << b) - 1], b),
                "one edge, {b} bits"
            );
            assert!(planes_prove_fewer(&small, b), "small edges, {b} bits");
        }
        assert!(planes_prove_fewer(&[1], 1) && planes_prove_fewer(&[3], 2));
    }
}
