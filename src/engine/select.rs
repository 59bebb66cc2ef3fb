//! Order statistics by secret keys: quickselect for one or more ranks (large segments
//! first bracketed around the wanted ranks, `bracket`) and a max/min tournament, both on
//! opened comparison bits after an oblivious shuffle.
//!
//! Keys must be distinct and below 2^(bits − 1) (value · 2^ℓ + original index). Opening the
//! comparison bits after the shuffle is safe for the reason given in `sort`: the transcript is
//! a function of a uniformly random bijection from shuffled positions to ranks alone.
//! The returned shares are the (fresh) shares output by the shuffle. Keys are guaranteed
//! mod 2^bits, the width they are compared on (in malicious mode a deviation above it may go
//! unseen, and changes no comparison); payload columns at every bit.

use super::error::{EngineError, Result};
use super::ring::Ring;
use super::session::Session;
use super::share::Share;
use super::sort::{check_inputs, Partitioner, PivotRule, SortStats, SELECT_RULE};
use super::transport::Transport;

impl<T: Transport> Session<T> {
    /// The key and payload at each wanted rank (0-based, ascending key order), in the order
    /// of `ranks`. Quickselect after one shuffle: each level partitions, in one `lt_open`,
    /// only the segments that still contain a wanted rank; a segment of
    /// [`SELECT_RULE`]`.bracket` or more elements is first bracketed around its wanted ranks
    /// (`bracket`). Keys are returned correct mod 2^bits. A rank ≥ n is
    /// `EngineError::Invalid`.
    #[allow(clippy::type_complexity)] // (key, payload row) per rank is the documented API
    pub async fn select_ranks<R: Ring>(
        &mut self,
        keys: &[Share<R>],
        payload: &[Vec<Share<R>>],
        ranks: &[usize],
        bits: u32,
    ) -> Result<Vec<(Share<R>, Vec<Share<R>>)>> {
        let (out, _) = self.select_ranks_stats(keys, payload, ranks, bits).await?;
        Ok(out)
    }

    /// [`Session::select_ranks`] that also reports levels and comparisons.
    #[allow(clippy::type_complexity)]
    pub async fn select_ranks_stats<R: Ring>(
        &mut self,
        keys: &[Share<R>],
        payload: &[Vec<Share<R>>],
        ranks: &[usize],
        bits: u32,
    ) -> Result<(Vec<(Share<R>, Vec<Share<R>>)>, SortStats)> {
        self.select_with_rule(keys, payload, ranks, bits, SELECT_RULE)
            .await
    }

    /// [`Session::select_ranks_stats`] with an explicit pivot rule.
    #[allow(clippy::type_complexity)]
    pub async fn select_with_rule<R: Ring>(
        &mut self,
        keys: &[Share<R>],
        payload: &[Vec<Share<R>>],
        ranks: &[usize],
        bits: u32,
        rule: PivotRule,
    ) -> Result<(Vec<(Share<R>, Vec<Share<R>>)>, SortStats)> {
        let n = keys.len();
        check_inputs("select_ranks", n, payload, bits)?;
        if let Some(r) = ranks.iter().find(|&&r| r >= n) {
            return Err(EngineError::Invalid(format!(
                "select_ranks: rank {r} of {n} keys"
            )));
        }
        if ranks.is_empty() {
            return Ok((Vec::new(), SortStats::default()));
        }
        let mut cols = Vec::with_capacity(payload.len() + 1);
        cols.push(keys.to_vec());
        cols.extend(payload.iter().cloned());
        if n > 1 {
            // Keys alone matter only on their `bits` bits, which lets the malicious
            // shuffle's tags use a narrower ring; a payload is guaranteed at every bit.
            cols = if payload.is_empty() {
                self.shuffle_low(&cols, bits).await?
            } else {
                self.shuffle(&cols).await?
            };
        }
        let mut wanted: Vec<usize> = ranks.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut part = Partitioner::new(n);
        part.retain_holding(&wanted);
        // The size the levels' budget refers to: the problem left after the last bracket.
        let mut base = n;
        while !part.done() {
            if let Some(i) = part.large_segment(rule) {
                part.bracket(self, &cols[0], bits, i, &wanted, rule).await?;
                part.retain_holding(&wanted);
                base = part.live();
            } else {
                part.level(self, &cols[0], bits, rule, base).await?;
                part.retain_holding(&wanted);
            }
        }
        let out = ranks
            .iter()
            .map(|&r| {
                let i = part.at(r);
                (cols[0][i], cols[1..].iter().map(|c| c[i]).collect())
            })
            .collect();
        Ok((out, part.stats))
    }

    /// The maximum (`want_max`) or minimum of `keys` (distinct, below 2^(bits − 1)).
    /// A tournament after a shuffle: ⌈log2 n⌉ levels of one `lt_open` over all pairs each,
    /// n − 1 comparisons. No keys is `EngineError::Invalid`.
    pub async fn max_min<R: Ring>(
        &mut self,
        keys: &[Share<R>],
        bits: u32,
        want_max: bool,
    ) -> Result<Share<R>> {
        self.max_min_grouped(keys, bits, want_max, 2).await
    }

    /// [`Session::max_min`] with groups of `group` ≥ 2 per match: each level compares all
    /// pairs within each group in one `lt_open` and keeps the group's winner, so
    /// ⌈log_group n⌉ levels and about n · (group − 1) / 2 comparisons (`group` = 4 halves the
    /// rounds of `group` = 2 for about twice the comparisons).
    pub async fn max_min_grouped<R: Ring>(
        &mut self,
        keys: &[Share<R>],
        bits: u32,
        want_max: bool,
        group: usize,
    ) -> Result<Share<R>> {
        Ok(self
            .max_min_grouped_stats(keys, bits, want_max, group)
            .await?
            .0)
    }

    /// [`Session::max_min_grouped`] that also reports the levels and comparisons it made.
    pub async fn max_min_grouped_stats<R: Ring>(
        &mut self,
        keys: &[Share<R>],
        bits: u32,
        want_max: bool,
        group: usize,
    ) -> Result<(Share<R>, SortStats)> {
        let mut stats = SortStats::default();
        let n = keys.len();
        check_inputs::<R>("max_min", n, &[], bits)?;
        if n == 0 {
            return Err(EngineError::Invalid("max_min: no keys".into()));
        }
        if group < 2 {
            return Err(EngineError::Invalid(format!(
                "max_min: group of {group}, expected at least 2"
            )));
        }
        let mut cur = if n > 1 {
            self.shuffle(&[keys.to_vec()])
                .await?
                .pop()
                .unwrap_or_default()
        } else {
            keys.to_vec()
        };
        while cur.len() > 1 {
            let mut xs = Vec::new();
            let mut ys = Vec::new();
            for g in cur.chunks(group) {
                for a in 0..g.len() {
                    for b in a + 1..g.len() {
                        xs.push(g[a]);
                        ys.push(g[b]);
                    }
                }
            }
            // Opened after the shuffle: a function of a uniform random permutation only
            // (see `sort`), so it reveals nothing about the keys.
            let lt = self.lt_open(&xs, &ys, bits).await?;
            stats.levels += 1;
            stats.comparisons += lt.len() as u64;
            let mut bits_iter = lt.into_iter();
            let mut next = Vec::with_capacity(cur.len().div_ceil(group));
            for g in cur.chunks(group) {
                // wins[a]: members of the group that g[a] beats.
                let mut wins = vec![0usize; g.len()];
                for a in 0..g.len() {
                    for b in a + 1..g.len() {
                        let a_lt_b = bits_iter.next().ok_or_else(|| {
                            EngineError::Invalid("max_min: missing comparison".into())
                        })?;
                        if a_lt_b == want_max {
                            wins[b] += 1;
                        } else {
                            wins[a] += 1;
                        }
                    }
                }
                let best = (0..g.len())
                    .find(|&a| wins[a] + 1 == g.len())
                    .ok_or_else(|| EngineError::Invalid("max_min: keys are not distinct".into()))?;
                next.push(g[best]);
            }
            cur = next;
        }
        Ok((cur[0], stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::local::run3;
    use crate::engine::ring::{Z128, Z64};
    use crate::engine::share::reconstruct;
    use crate::engine::sort::tests::{unique_keys, ONE_PIVOT};
    use crate::engine::sort::SORT_RULE;
    use std::sync::Arc;

    type SelectOut<R> = (Vec<R>, Vec<R>, SortStats, u64);

    /// Party 1 inputs keys and payload (key + 5); all select `ranks` with `pivots`; returns
    /// per party (opened keys, opened payload, stats, rounds).
    async fn run_select<R: Ring>(
        seed: u64,
        keys: Vec<u128>,
        ranks: Vec<usize>,
        bits: u32,
        rule: PivotRule,
    ) -> [Result<SelectOut<R>>; 3] {
        let n = keys.len();
        let k: Arc<Vec<R>> = Arc::new(keys.iter().map(|&v| R::from_u128(v)).collect());
        let ranks = Arc::new(ranks);
        run3(seed, move |mut s| {
            let (k, ranks) = (k.clone(), ranks.clone());
            async move {
                let me = s.id() == 1;
                let p: Vec<R> = k.iter().map(|&v| v + R::from_u64(5)).collect();
                let ks = s.input::<R>(1, me.then_some(&k[..]), n).await?;
                let ps = s.input::<R>(1, me.then_some(&p[..]), n).await?;
                let before = s.counters().rounds;
                let (res, st) = s.select_with_rule(&ks, &[ps], &ranks, bits, rule).await?;
                let rounds = s.counters().rounds - before;
                let rk: Vec<Share<R>> = res.iter().map(|r| r.0).collect();
                let rp: Vec<Share<R>> = res.iter().map(|r| r.1[0]).collect();
                Ok((s.open(&rk).await?, s.open(&rp).await?, st, rounds))
            }
        })
        .await
    }

    async fn check_select<R: Ring>(seed: u64, n: usize, ranks: Vec<usize>, rule: PivotRule) {
        let keys = unique_keys(seed, n, 30);
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        let out = run_select::<R>(seed, keys, ranks.clone(), 52, rule).await;
        let ek: Vec<R> = ranks.iter().map(|&r| R::from_u128(sorted[r])).collect();
        let ep: Vec<R> = ek.iter().map(|&v| v + R::from_u64(5)).collect();
        for r in out {
            let (k, p, _, _) = r.unwrap();
            assert_eq!(k, ek, "n = {n}, ranks = {ranks:?}, rule = {rule:?}");
            assert_eq!(p, ep);
        }
    }

    #[tokio::test]
    async fn select_matches_plaintext_order_statistics() {
        for (i, n) in [1usize, 2, 3, 10, 11, 500, 501].into_iter().enumerate() {
            let seed = 200 + i as u64;
            let ranks = vec![0, n - 1, n / 2, (n - 1) / 2, n / 4, n - 1, 0];
            for rule in [ONE_PIVOT, SORT_RULE, SELECT_RULE] {
                check_select::<Z64>(seed, n, ranks.clone(), rule).await;
                check_select::<Z64>(seed, n, vec![(n - 1) / 2], rule).await;
            }
        }
        check_select::<Z128>(9, 333, vec![166, 3, 332], SELECT_RULE).await;
    }

    /// Bracketing from its smallest segment on: exact at the extremes, the middle, three
    /// quartiles and next to the ends, just at and past the threshold.
    #[tokio::test]
    async fn bracketed_select_matches_plaintext_order_statistics() {
        let rule = PivotRule {
            bracket: crate::engine::bracket::MIN_BRACKET,
            ..SELECT_RULE
        };
        for (i, n) in [512usize, 513, 2000, 5001].into_iter().enumerate() {
            let seed = 400 + i as u64;
            for ranks in [
                vec![0],
                vec![n - 1],
                vec![n / 2 - 1, n / 2],
                vec![n / 4, n / 2, 3 * n / 4],
                vec![1, n - 2],
            ] {
                check_select::<Z64>(seed, n, ranks, rule).await;
            }
        }
    }

    /// Bracketing cuts the comparisons of a median and of a maximum of 20,000 keys well
    /// below quickselect's (measured, same keys and shuffle seed).
    #[tokio::test]
    async fn bracketing_cuts_comparisons() {
        let n = 20_000;
        let keys = unique_keys(8, n, 30);
        let plain = PivotRule {
            bracket: 0,
            ..SELECT_RULE
        };
        for (ranks, most) in [(vec![n / 2 - 1, n / 2], 25), (vec![n - 1], 13)] {
            let mut count = [0u64; 2];
            for (c, rule) in count.iter_mut().zip([plain, SELECT_RULE]) {
                let out = run_select::<Z64>(8, keys.clone(), ranks.clone(), 52, rule).await;
                let (_, _, st, _) = out[0].as_ref().unwrap();
                *c = st.comparisons;
            }
            let [q, b] = count;
            assert!(
                10 * b <= most * n as u64,
                "ranks {ranks:?}: {b} comparisons"
            );
            assert!(2 * b < q, "ranks {ranks:?}: {b} bracketed, {q} without");
        }
    }

    #[tokio::test]
    async fn select_errors_and_trivial_cases() {
        let out = run_select::<Z64>(1, unique_keys(1, 10, 30), vec![3, 10], 52, ONE_PIVOT).await;
        for r in out {
            assert!(matches!(r, Err(EngineError::Invalid(_))));
        }
        let out = run_select::<Z64>(1, vec![], vec![0], 52, ONE_PIVOT).await;
        for r in out {
            assert!(matches!(r, Err(EngineError::Invalid(_))));
        }
        let out = run_select::<Z64>(1, unique_keys(1, 10, 30), vec![], 52, ONE_PIVOT).await;
        for r in out {
            let (k, _, st, rounds) = r.unwrap();
            assert!(k.is_empty());
            assert_eq!((st, rounds), (SortStats::default(), 0));
        }
    }

    #[tokio::test]
    async fn select_shares_work_between_ranks() {
        // Many ranks cost the levels of one sort at most; one rank costs far fewer comparisons.
        let keys = unique_keys(3, 1000, 30);
        let one = run_select::<Z64>(3, keys.clone(), vec![500], 52, ONE_PIVOT).await;
        let (_, _, st_one, _) = one[0].as_ref().unwrap();
        assert!(st_one.comparisons < 6 * 1000, "{st_one:?}");
        let all: Vec<usize> = (0..1000).collect();
        let many = run_select::<Z64>(3, keys.clone(), all, 52, ONE_PIVOT).await;
        let (k, _, _, _) = many[0].as_ref().unwrap();
        let mut sorted = keys;
        sorted.sort_unstable();
        assert_eq!(
            *k,
            sorted.iter().map(|&v| Z64(v as u64)).collect::<Vec<_>>()
        );
    }

    async fn check_max_min(seed: u64, n: usize) {
        let keys = unique_keys(seed, n, 40);
        let k: Arc<Vec<Z64>> = Arc::new(keys.iter().map(|&v| Z64(v as u64)).collect());
        let out = run3(seed, move |mut s| {
            let k = k.clone();
            async move {
                let ks = s
                    .input::<Z64>(2, (s.id() == 2).then_some(&k[..]), n)
                    .await?;
                let before = s.counters().rounds;
                let mx = s.max_min(&ks, 62, true).await?;
                let mid = s.counters().rounds;
                let mn = s.max_min(&ks, 62, false).await?;
                let mx4 = s.max_min_grouped(&ks, 62, true, 4).await?;
                let mn3 = s.max_min_grouped(&ks, 62, false, 3).await?;
                let opened = s.open(&[mx4, mn3]).await?;
                Ok((mx, mn, mid - before, opened))
            }
        })
        .await
        .map(|r| r.unwrap());
        let mx = reconstruct(&[out[0].0, out[1].0, out[2].0]).unwrap();
        let mn = reconstruct(&[out[0].1, out[1].1, out[2].1]).unwrap();
        assert_eq!(mx.0 as u128, *keys.iter().max().unwrap());
        assert_eq!(mn.0 as u128, *keys.iter().min().unwrap());
        for o in &out {
            assert_eq!(o.3, vec![mx, mn]);
        }
        // Shuffle (3) + ⌈log2 n⌉ stand-in/real comparisons, at least one round each.
        let levels = (n as f64).log2().ceil() as u64;
        if n > 1 {
            assert!(out[0].2 >= 3 + levels);
        } else {
            assert_eq!(out[0].2, 0);
        }
    }

    #[tokio::test]
    async fn max_min_tournament() {
        for (i, n) in [1usize, 2, 3, 5, 1000].into_iter().enumerate() {
            check_max_min(300 + i as u64, n).await;
        }
        let out = run3(
            4,
            |mut s| async move { s.max_min::<Z64>(&[], 40, true).await },
        )
        .await;
        for r in out {
            assert!(matches!(r, Err(EngineError::Invalid(_))));
        }
    }
}
