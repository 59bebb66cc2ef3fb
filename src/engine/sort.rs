//! Sorting by secret keys: an oblivious shuffle, then a (multi-pivot) quicksort on opened
//! comparison bits. The partitioning machinery here is shared with `select`.
//!
//! Keys must be distinct and below 2^(bits − 1): callers make them unique as
//! value · 2^ℓ + original index. Every level of the quicksort compares, in one vectorised
//! `lt_open`, every non-pivot element of every unsorted segment with each of its segment's
//! pivots (the first elements of the segment, random after the shuffle), and the pivots with
//! each other; then all segments are partitioned locally by the opened bits. Rounds are the
//! number of levels times the rounds of one `lt_open`. In malicious mode, where every
//! comparison's AND gates are proven and gates rather than rounds set the time, a level
//! instead sorts its pivots first and then binary-searches them
//! ([`Partitioner::level_search`]): about n log2 n comparisons in all instead of about
//! 1.6 n log2 n, for 1 + ⌈log2(k + 1)⌉ `lt_open`s per level.
//!
//! # Why opening the comparison bits is safe
//!
//! After the shuffle, position p holds the record of secret index π(p) for a uniformly random
//! π that no party knows. Since the keys are distinct, every opened bit is `[k_p < k_q]` for
//! positions p, q, which is determined by the rank function p ↦ rank(k_{π(p)}); that function
//! is a uniformly random bijection 0..n → 0..n independent of the key values (the composition
//! of a uniform permutation with a fixed bijection). Which pairs get compared next depends only
//! on earlier bits, so the whole transcript of opened bits is a function of this uniform
//! bijection alone and can be simulated by drawing a random permutation and running the public
//! algorithm on it. It reveals nothing about the keys, their input order or the payload
//! (beyond n, which is public).

use super::error::{EngineError, Result};
use super::ring::Ring;
use super::session::Session;
use super::share::Share;
use super::transport::Transport;

/// How many pivots a segment gets in one level.
///
/// Every segment gets `pivots` (at least 1). When few elements are left unsorted, segments
/// get more: up to `budget` · n / (elements still unsorted), so that a level compares about
/// `budget` · n pairs at most and the long tail of small unbalanced segments is cut short
/// (`budget` = 0 disables this). A segment of at most `small` elements is sorted completely
/// in one level (every element a pivot, all pairs compared). Never more than len − 1.
///
/// `bracket` applies to selection only: a segment of at least `bracket` elements (and at
/// least [`crate::engine::bracket::MIN_BRACKET`]) is first narrowed around its wanted
/// ranks by pivots taken from a sample (Floyd–Rivest, `bracket`), about 1.5 comparisons
/// per element for a median instead of the 6 or more of quickselect; 0 disables it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PivotRule {
    pub pivots: usize,
    pub budget: usize,
    pub small: usize,
    pub bracket: usize,
}

impl PivotRule {
    /// Pivots for a segment of `len` ≥ 2 elements, in 1..len, when `live` of `n` elements
    /// are in unsorted segments (`n` the size of the problem the levels work on).
    fn for_len(self, len: usize, live: usize, n: usize) -> usize {
        if len <= self.small {
            return len - 1;
        }
        let boosted = (self.budget * n).checked_div(live).unwrap_or(0);
        self.pivots.max(boosted).clamp(1, len - 1)
    }
}

/// The rule of [`Session::sort_by_key`] (measured: see the tests).
pub const SORT_RULE: PivotRule = PivotRule {
    pivots: 3,
    budget: 3,
    small: 8,
    bracket: 0,
};
/// The rule of [`Session::sort_by_key`] in malicious mode, by binary search over the
/// pivots ([`Partitioner::level_search`]): 7 pivots cost 3 comparisons per element for an
/// 8-way split.
pub const SEARCH_RULE: PivotRule = PivotRule {
    pivots: 7,
    budget: 3,
    small: 8,
    bracket: 0,
};
/// The rule of [`Session::select_ranks`] (measured: see the tests). Segments of 10,000 or
/// more elements are bracketed first: below that, a bracket's extra levels (the sample's
/// selection, then the search) cost more than the comparisons they save (`cargo bench
/// --bench stats` at n = 10^4 and 10^5, with the threshold at 512, 2,000 and 10,000).
pub const SELECT_RULE: PivotRule = PivotRule {
    pivots: 2,
    budget: 1,
    small: 8,
    bracket: 10_000,
};

/// Work done by one sort or selection: quicksort levels (one `lt_open` each) and opened
/// comparisons.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SortStats {
    pub levels: u64,
    pub comparisons: u64,
}

/// Checks the inputs of a sort or selection: payload columns as long as the keys, bits in
/// range.
pub(crate) fn check_inputs<R: Ring>(
    op: &str,
    n: usize,
    payload: &[Vec<Share<R>>],
    bits: u32,
) -> Result<()> {
    if let Some(c) = payload.iter().find(|c| c.len() != n) {
        return Err(EngineError::Invalid(format!(
            "{op}: payload column of length {} for {n} keys",
            c.len()
        )));
    }
    if bits < 2 || bits > R::BITS {
        return Err(EngineError::Invalid(format!(
            "{op}: bits = {bits}, expected 2..={}",
            R::BITS
        )));
    }
    Ok(())
}

/// A segment of positions [start, start + len) whose elements are exactly the elements of
/// ranks start..start + len, in no known order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// Quicksort state over shuffled keys: `order[p]` is the index (into the shuffled keys) of
/// the element at position p. Positions outside the unsorted segments are final.
pub(crate) struct Partitioner {
    pub(crate) order: Vec<usize>,
    pub(crate) segments: Vec<Segment>,
    pub(crate) stats: SortStats,
}

impl Partitioner {
    pub(crate) fn new(n: usize) -> Self {
        let segments = if n > 1 {
            vec![Segment { start: 0, len: n }]
        } else {
            Vec::new()
        };
        Partitioner {
            order: (0..n).collect(),
            segments,
            stats: SortStats::default(),
        }
    }

    /// The shuffled-key index at final position `pos` (valid once `pos` is settled).
    pub(crate) fn at(&self, pos: usize) -> usize {
        self.order[pos]
    }

    /// The final order: shuffled-key indices in ascending key order.
    pub(crate) fn into_order(self) -> Vec<usize> {
        self.order
    }

    /// Keeps only the segments for which `keep(start, len)` holds.
    pub(crate) fn retain(&mut self, keep: impl Fn(usize, usize) -> bool) {
        self.segments.retain(|s| keep(s.start, s.len));
    }

    pub(crate) fn done(&self) -> bool {
        self.segments.is_empty()
    }

    /// The number of elements still in unsorted segments.
    pub(crate) fn live(&self) -> usize {
        self.segments.iter().map(|g| g.len).sum()
    }

    /// Keeps only the segments that hold one of `positions` (ascending).
    pub(crate) fn retain_holding(&mut self, positions: &[usize]) {
        self.retain(|start, len| {
            let i = positions.partition_point(|&p| p < start);
            i < positions.len() && positions[i] < start + len
        });
    }

    /// One level: compares in one `lt_open` and partitions every segment around the pivots
    /// `rule` gives it (its first elements). Segments of size ≤ 1 are dropped. `n` is the
    /// size of the problem the levels work on (the rule's budget is relative to it).
    pub(crate) async fn level<R: Ring, T: Transport>(
        &mut self,
        s: &mut Session<T>,
        keys: &[Share<R>],
        bits: u32,
        rule: PivotRule,
        n: usize,
    ) -> Result<()> {
        // Comparison pairs (x, y) asking x < y, segment by segment in a fixed layout:
        // first pivot-vs-pivot pairs (a < b in index), then each other element vs each pivot.
        let live = self.live();
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for seg in &self.segments {
            let k = rule.for_len(seg.len, live, n);
            let idx = &self.order[seg.start..seg.start + seg.len];
            pivot_pairs(&idx[..k], keys, &mut xs, &mut ys);
            for &e in &idx[k..] {
                for &p in &idx[..k] {
                    xs.push(keys[e]);
                    ys.push(keys[p]);
                }
            }
        }
        // The bits are opened: see the module documentation for why this reveals nothing.
        let bits_open = self.open_lt(s, &xs, &ys, bits).await?;
        self.stats.levels += 1;

        let mut cursor = 0;
        let mut next_segments = Vec::new();
        for seg in std::mem::take(&mut self.segments) {
            let k = rule.for_len(seg.len, live, n);
            let idx: Vec<usize> = self.order[seg.start..seg.start + seg.len].to_vec();
            let sorted_p = sorted_pivots(&idx[..k], &bits_open, &mut cursor);
            // Bucket of each other element: the number of pivots below it.
            let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); k + 1];
            for &e in &idx[k..] {
                let below = bits_open[cursor..cursor + k]
                    .iter()
                    .filter(|b| !**b)
                    .count();
                cursor += k;
                buckets[below].push(e);
            }
            self.lay_out(seg, buckets, &sorted_p, &mut next_segments);
        }
        debug_assert_eq!(cursor, bits_open.len());
        self.segments = next_segments;
        Ok(())
    }
}

/// Pushes the comparison of every pair of `pivots` (a < b in index) asking x_a < x_b.
fn pivot_pairs<R: Ring>(
    pivots: &[usize],
    keys: &[Share<R>],
    xs: &mut Vec<Share<R>>,
    ys: &mut Vec<Share<R>>,
) {
    for (a, &pa) in pivots.iter().enumerate() {
        for &pb in &pivots[a + 1..] {
            xs.push(keys[pa]);
            ys.push(keys[pb]);
        }
    }
}

/// The pivots in ascending key order, from the opened bits of [`pivot_pairs`] starting at
/// `cursor` (advanced past them): a pivot's rank is the number of pivots below it.
fn sorted_pivots(pivots: &[usize], bits: &[bool], cursor: &mut usize) -> Vec<usize> {
    let k = pivots.len();
    let mut rank = vec![0usize; k];
    for a in 0..k {
        for b in a + 1..k {
            if bits[*cursor] {
                rank[b] += 1;
            } else {
                rank[a] += 1;
            }
            *cursor += 1;
        }
    }
    let mut sorted = vec![0usize; k];
    for (a, &r) in rank.iter().enumerate() {
        sorted[r] = pivots[a];
    }
    sorted
}

impl Partitioner {
    /// Lays out `seg` as bucket 0, pivot 0, bucket 1, ..., pivot k − 1, bucket k, and
    /// queues every bucket of more than one element as a segment of the next level.
    pub(crate) fn lay_out(
        &mut self,
        seg: Segment,
        buckets: Vec<Vec<usize>>,
        sorted_p: &[usize],
        next_segments: &mut Vec<Segment>,
    ) {
        let mut pos = seg.start;
        for (r, bucket) in buckets.into_iter().enumerate() {
            if bucket.len() > 1 {
                next_segments.push(Segment {
                    start: pos,
                    len: bucket.len(),
                });
            }
            for e in bucket {
                self.order[pos] = e;
                pos += 1;
            }
            if let Some(&p) = sorted_p.get(r) {
                self.order[pos] = p;
                pos += 1;
            }
        }
        debug_assert_eq!(pos, seg.start + seg.len);
    }

    /// One level by binary search over sorted pivots: first the pivots of every segment
    /// are sorted (one `lt_open` of all pivot pairs), then every other element finds its
    /// bucket by comparing with the middle pivot of the range it may still fall in, one
    /// `lt_open` per step for all segments at once. k pivots cost ⌈log2(k + 1)⌉ steps and
    /// at most that many comparisons per element instead of k, for that many more rounds:
    /// the malicious mode's choice, where every comparison's AND gates are proven and a
    /// round costs little beside them. Which pairs are compared next depends only on bits
    /// already opened, so the module's argument for opening them holds unchanged.
    pub(crate) async fn level_search<R: Ring, T: Transport>(
        &mut self,
        s: &mut Session<T>,
        keys: &[Share<R>],
        bits: u32,
        rule: PivotRule,
    ) -> Result<()> {
        let n = self.order.len();
        let live = self.live();
        let segments = std::mem::take(&mut self.segments);
        let ks: Vec<usize> = segments
            .iter()
            .map(|g| rule.for_len(g.len, live, n))
            .collect();

        // The pivots (each segment's first k elements), sorted by their pairwise bits.
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for (g, &k) in segments.iter().zip(&ks) {
            pivot_pairs(&self.order[g.start..g.start + k], keys, &mut xs, &mut ys);
        }
        let pair_bits = self.open_lt(s, &xs, &ys, bits).await?;
        let mut cursor = 0;
        let sorted: Vec<Vec<usize>> = segments
            .iter()
            .zip(&ks)
            .map(|(g, &k)| {
                sorted_pivots(&self.order[g.start..g.start + k], &pair_bits, &mut cursor)
            })
            .collect();

        // Every other element finds its bucket (the number of pivots below it).
        let items: Vec<(usize, usize)> = segments
            .iter()
            .zip(&ks)
            .enumerate()
            .flat_map(|(i, (g, &k))| {
                self.order[g.start + k..g.start + g.len]
                    .iter()
                    .map(move |&e| (i, e))
            })
            .collect();
        let settled = self.search(s, keys, bits, items, &sorted).await?;
        self.stats.levels += 1;

        // Lay out bucket 0, pivot 0, bucket 1, ..., pivot k − 1, bucket k. All elements of
        // a bucket took the same path, so they settled in one step and in segment order,
        // as in `level`.
        let mut next_segments = Vec::new();
        for ((g, buckets), p) in segments.into_iter().zip(settled).zip(sorted) {
            self.lay_out(g, buckets, &p, &mut next_segments);
        }
        self.segments = next_segments;
        Ok(())
    }

    /// The bucket of every `(group, element)` of `items` among the ascending pivots
    /// `sorted[group]`: binary search, comparing each element with the middle pivot of the
    /// range it may still fall in, one `lt_open` per step for all elements at once (at most
    /// ⌈log2(k + 1)⌉ steps for k pivots). Returns, per group, its buckets' elements in
    /// `items` order. Which pairs are compared next depends only on bits already opened.
    pub(crate) async fn search<R: Ring, T: Transport>(
        &mut self,
        s: &mut Session<T>,
        keys: &[Share<R>],
        bits: u32,
        items: Vec<(usize, usize)>,
        sorted: &[Vec<usize>],
    ) -> Result<Vec<Vec<Vec<usize>>>> {
        let mut settled: Vec<Vec<Vec<usize>>> = sorted
            .iter()
            .map(|p| vec![Vec::new(); p.len() + 1])
            .collect();
        let mut open: Vec<(usize, usize, usize, usize)> = items
            .into_iter()
            .map(|(i, e)| (i, e, 0, sorted[i].len()))
            .collect();
        while !open.is_empty() {
            let (xs, ys): (Vec<Share<R>>, Vec<Share<R>>) = open
                .iter()
                .map(|&(i, e, lo, hi)| (keys[e], keys[sorted[i][(lo + hi) / 2]]))
                .unzip();
            let below = self.open_lt(s, &xs, &ys, bits).await?;
            let mut next = Vec::with_capacity(open.len());
            for ((i, e, lo, hi), b) in open.into_iter().zip(below) {
                let mid = (lo + hi) / 2;
                let (lo, hi) = if b { (lo, mid) } else { (mid + 1, hi) };
                if lo == hi {
                    settled[i][lo].push(e);
                } else {
                    next.push((i, e, lo, hi));
                }
            }
            open = next;
        }
        Ok(settled)
    }

    /// `lt_open` that counts its comparisons and skips empty vectors (every party has the
    /// same state, so all skip together).
    pub(crate) async fn open_lt<R: Ring, T: Transport>(
        &mut self,
        s: &mut Session<T>,
        xs: &[Share<R>],
        ys: &[Share<R>],
        bits: u32,
    ) -> Result<Vec<bool>> {
        if xs.is_empty() {
            return Ok(Vec::new());
        }
        self.stats.comparisons += xs.len() as u64;
        s.lt_open(xs, ys, bits).await
    }
}

/// Gathers `col` in the order `order`.
pub(crate) fn gather<R: Ring>(col: &[Share<R>], order: &[usize]) -> Vec<Share<R>> {
    order.iter().map(|&i| col[i]).collect()
}

impl<T: Transport> Session<T> {
    /// Shuffles `keys` with `payload` (columns as long as `keys`), then sorts them by key.
    /// Keys must be distinct and below 2^(bits − 1). Returns the keys and the payload columns
    /// in ascending key order. Rounds: 3 (shuffle) + levels × rounds of one `lt_open`.
    #[allow(clippy::type_complexity)] // (keys, payload columns) is the documented API
    pub async fn sort_by_key<R: Ring>(
        &mut self,
        keys: &[Share<R>],
        payload: &[Vec<Share<R>>],
        bits: u32,
    ) -> Result<(Vec<Share<R>>, Vec<Vec<Share<R>>>)> {
        let (k, p, _) = self.sort_by_key_stats(keys, payload, bits).await?;
        Ok((k, p))
    }

    /// [`Session::sort_by_key`] that also reports levels and comparisons.
    #[allow(clippy::type_complexity)]
    pub async fn sort_by_key_stats<R: Ring>(
        &mut self,
        keys: &[Share<R>],
        payload: &[Vec<Share<R>>],
        bits: u32,
    ) -> Result<(Vec<Share<R>>, Vec<Vec<Share<R>>>, SortStats)> {
        self.sort_with_rule(keys, payload, bits, SORT_RULE).await
    }

    /// [`Session::sort_by_key_stats`] with an explicit pivot rule.
    #[allow(clippy::type_complexity)]
    pub async fn sort_with_rule<R: Ring>(
        &mut self,
        keys: &[Share<R>],
        payload: &[Vec<Share<R>>],
        bits: u32,
        rule: PivotRule,
    ) -> Result<(Vec<Share<R>>, Vec<Vec<Share<R>>>, SortStats)> {
        let n = keys.len();
        check_inputs("sort_by_key", n, payload, bits)?;
        if n <= 1 {
            return Ok((keys.to_vec(), payload.to_vec(), SortStats::default()));
        }
        let mut cols = Vec::with_capacity(payload.len() + 1);
        cols.push(keys.to_vec());
        cols.extend(payload.iter().cloned());
        let cols = self.shuffle(&cols).await?;
        let mut part = Partitioner::new(n);
        while !part.done() {
            if self.malicious() {
                part.level_search(self, &cols[0], bits, SEARCH_RULE).await?;
            } else {
                part.level(self, &cols[0], bits, rule, n).await?;
            }
        }
        let stats = part.stats;
        let order = part.into_order();
        let mut sorted: Vec<Vec<Share<R>>> = cols.iter().map(|c| gather(c, &order)).collect();
        let payload = sorted.split_off(1);
        let keys = sorted.pop().unwrap_or_default();
        Ok((keys, payload, stats))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::local::run3;
    use crate::engine::ring::{Z128, Z64};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;
    use std::sync::Arc;

    /// Classic single-pivot quicksort.
    pub(crate) const ONE_PIVOT: PivotRule = PivotRule {
        pivots: 1,
        budget: 0,
        small: 0,
        bracket: 0,
    };

    /// n distinct keys value · 2^20 + index with values below 2^vbits, in random order.
    pub(crate) fn unique_keys(seed: u64, n: usize, vbits: u32) -> Vec<u128> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| ((rng.gen::<u128>() >> (128 - vbits)) << 20) | i as u128)
            .collect()
    }

    /// Party 0 inputs keys and one payload column (key · 3 + 1); all sort with `rule`;
    /// returns per party (opened keys, opened payload, stats, counters delta).
    pub(crate) async fn run_sort<R: Ring>(
        seed: u64,
        keys: Vec<u128>,
        bits: u32,
        rule: PivotRule,
    ) -> Vec<(Vec<R>, Vec<R>, SortStats, crate::engine::Counters)> {
        run_sort_in(crate::engine::Security::SemiHonest, seed, keys, bits, rule).await
    }

    /// [`run_sort`] in the given security mode.
    pub(crate) async fn run_sort_in<R: Ring>(
        security: crate::engine::Security,
        seed: u64,
        keys: Vec<u128>,
        bits: u32,
        rule: PivotRule,
    ) -> Vec<(Vec<R>, Vec<R>, SortStats, crate::engine::Counters)> {
        let k: Arc<Vec<R>> = Arc::new(keys.iter().map(|&v| R::from_u128(v)).collect());
        let p: Arc<Vec<R>> = Arc::new(
            keys.iter()
                .map(|&v| R::from_u128(v) * R::from_u64(3) + R::one())
                .collect(),
        );
        let ts = crate::engine::local::local_transports();
        let out = crate::engine::local::run3_secure(seed, security, ts, move |mut s| {
            let (k, p) = (k.clone(), p.clone());
            async move {
                // Shared by the test itself: a party's input is not proven in malicious mode.
                let me = s.id();
                let ks = crate::engine::convert::tests::share_all(&k, seed)[me].clone();
                let ps = crate::engine::convert::tests::share_all(&p, seed + 1)[me].clone();
                let before = s.counters();
                let (sk, sp, st) = s.sort_with_rule(&ks, &[ps], bits, rule).await?;
                let after = s.counters();
                assert_eq!(sp.len(), 1);
                let ok = s.open(&sk).await?;
                let op = s.open(&sp[0]).await?;
                let delta = crate::engine::Counters {
                    rounds: after.rounds - before.rounds,
                    bytes_sent: after.bytes_sent - before.bytes_sent,
                    bytes_received: after.bytes_received - before.bytes_received,
                };
                Ok((ok, op, st, delta))
            }
        })
        .await;
        out.into_iter().map(|r| r.unwrap()).collect()
    }

    /// Malicious mode sorts by binary search over 7 sorted pivots: the same sorted keys
    /// and payload, with fewer comparisons than the semi-honest rule (which compares
    /// every element with every pivot) on the same keys; small and odd sizes included.
    #[tokio::test]
    async fn malicious_sort_searches_the_pivots() {
        use crate::engine::Security;
        for (i, n) in [2usize, 3, 8, 9, 17, 100, 1000].into_iter().enumerate() {
            let keys = unique_keys(400 + i as u64, n, 40);
            let mut expect = keys.clone();
            expect.sort_unstable();
            let ek: Vec<Z64> = expect.iter().map(|&v| Z64::from_u128(v)).collect();
            let mut comparisons = [0u64; 2];
            for (m, security) in [Security::Malicious, Security::SemiHonest]
                .into_iter()
                .enumerate()
            {
                let out = run_sort_in::<Z64>(security, 7, keys.clone(), 62, SORT_RULE).await;
                for (k, p, st, _) in &out {
                    assert_eq!(*k, ek, "n = {n}, {security:?}");
                    let ep: Vec<Z64> = ek.iter().map(|&v| v * Z64(3) + Z64(1)).collect();
                    assert_eq!(*p, ep, "payload, n = {n}, {security:?}");
                    assert_eq!(*st, out[0].2);
                }
                comparisons[m] = out[0].2.comparisons;
            }
            if n >= 100 {
                // About n log2 n against about 1.6 n log2 n.
                assert!(
                    comparisons[0] * 5 < comparisons[1] * 4,
                    "n = {n}: {comparisons:?}"
                );
            }
        }
    }

    async fn check_sort<R: Ring>(seed: u64, n: usize, rule: PivotRule) -> SortStats {
        let keys = unique_keys(seed, n, 40);
        let out = run_sort::<R>(seed, keys.clone(), 62, rule).await;
        let mut expect = keys;
        expect.sort_unstable();
        let ek: Vec<R> = expect.iter().map(|&v| R::from_u128(v)).collect();
        let ep: Vec<R> = ek.iter().map(|&v| v * R::from_u64(3) + R::one()).collect();
        for (k, p, st, _) in &out {
            assert_eq!(*k, ek, "n = {n}, rule = {rule:?}");
            assert_eq!(*p, ep);
            assert_eq!(*st, out[0].2);
        }
        out[0].2
    }

    #[tokio::test]
    async fn sort_small_and_medium() {
        for (i, n) in [0usize, 1, 2, 3, 17, 1000].into_iter().enumerate() {
            for rule in [
                ONE_PIVOT,
                SORT_RULE,
                PivotRule {
                    pivots: 2,
                    budget: 0,
                    small: 3,
                    bracket: 0,
                },
            ] {
                let st = check_sort::<Z64>(100 + i as u64, n, rule).await;
                if n <= 1 {
                    assert_eq!(st, SortStats::default());
                }
            }
        }
        check_sort::<Z128>(7, 17, ONE_PIVOT).await;
        check_sort::<Z128>(
            8,
            300,
            PivotRule {
                pivots: 5,
                budget: 6,
                small: 20,
                bracket: 0,
            },
        )
        .await;
    }

    #[tokio::test]
    async fn sort_one_pivot_counts_comparisons() {
        // Single-pivot quicksort: n − 1 comparisons at the first level, ~2 n ln n in all.
        let st = check_sort::<Z64>(9, 1000, ONE_PIVOT).await;
        assert!(st.comparisons >= 999 + 998, "{st:?}");
        assert!(st.comparisons < 3 * 1000 * 10, "{st:?}");
        assert!(st.levels >= 10 && st.levels < 60, "{st:?}");
    }

    /// Levels and comparisons of a tournament over n keys in groups of g.
    fn tournament_stats(n: usize, g: usize) -> SortStats {
        let (mut m, mut st) = (n, SortStats::default());
        while m > 1 {
            let (full, rem) = (m / g, m % g);
            st.levels += 1;
            st.comparisons += (full * g * (g - 1) / 2 + rem * rem.saturating_sub(1) / 2) as u64;
            m = m.div_ceil(g);
        }
        st
    }

    /// Sort, median selection and max of n keys of 83 bits in Z_2^128 with the real
    /// comparison; checks the results and prints rounds, bytes per party and time.
    pub(crate) async fn measure_costs(n: usize) {
        let keys = unique_keys(42, n, 63);
        let k: Arc<Vec<Z128>> = Arc::new(keys.iter().map(|&v| Z128(v)).collect());
        let t0 = std::time::Instant::now();
        let out = run3(42, move |mut s| {
            let k = k.clone();
            async move {
                let ks = s
                    .input::<Z128>(0, (s.id() == 0).then_some(&k[..]), n)
                    .await?;
                let pay = vec![ks.clone()];
                let mut report = Vec::new();
                let c0 = s.counters();
                let t = std::time::Instant::now();
                let (sk, _, st) = s.sort_by_key_stats(&ks, &pay, 84).await?;
                report.push(("sort", st, s.counters(), c0, t.elapsed()));
                let c1 = s.counters();
                let t = std::time::Instant::now();
                let (sel, st) = s.select_ranks_stats(&ks, &pay, &[n / 2], 84).await?;
                report.push(("select median", st, s.counters(), c1, t.elapsed()));
                let c2 = s.counters();
                let t = std::time::Instant::now();
                let (q, st) = s
                    .select_ranks_stats(&ks, &[], &[n / 4, n / 2, 3 * n / 4], 84)
                    .await?;
                report.push(("select 3 quartiles", st, s.counters(), c2, t.elapsed()));
                let c3 = s.counters();
                let t = std::time::Instant::now();
                let (mx, st) = s.max_min_grouped_stats(&ks, 84, true, 2).await?;
                assert_eq!(st, tournament_stats(n, 2));
                assert_eq!(st.comparisons, n as u64 - 1);
                report.push(("max", st, s.counters(), c3, t.elapsed()));
                let c4 = s.counters();
                let t = std::time::Instant::now();
                let (mx4, st) = s.max_min_grouped_stats(&ks, 84, true, 4).await?;
                assert_eq!(st, tournament_stats(n, 4));
                report.push(("max (groups of 4)", st, s.counters(), c4, t.elapsed()));
                let mut check = vec![sel[0].0, sel[0].1[0], mx, mx4];
                check.extend(q.iter().map(|r| r.0));
                let opened_sorted = s.open(&sk).await?;
                let opened = s.open(&check).await?;
                Ok((report, opened_sorted, opened))
            }
        })
        .await
        .map(|r| r.unwrap());
        let total = t0.elapsed();
        let mut sorted = keys;
        sorted.sort_unstable();
        let ek: Vec<Z128> = sorted.iter().map(|&v| Z128(v)).collect();
        for (i, (report, opened_sorted, opened)) in out.iter().enumerate() {
            assert_eq!(*opened_sorted, ek);
            let m = ek[n / 2];
            let expect = [m, m, ek[n - 1], ek[n - 1], ek[n / 4], m, ek[3 * n / 4]];
            assert_eq!(opened[..], expect[..]);
            for (name, st, after, before, dt) in report {
                eprintln!(
                    "n={n} bits=84 party {i} {name}: {} rounds, {} bytes sent, {} received, \
                     {} levels, {} comparisons, {:.2?}",
                    after.rounds - before.rounds,
                    after.bytes_sent - before.bytes_sent,
                    after.bytes_received - before.bytes_received,
                    st.levels,
                    st.comparisons,
                    dt
                );
            }
        }
        eprintln!("n={n}: total {total:.2?} for all of the above (local transport, 3 tasks)");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn costs_with_real_compare_n_10k() {
        measure_costs(10_000).await;
    }

    #[tokio::test]
    async fn sort_rejects_bad_inputs() {
        let out = run3(3, |mut s| async move {
            let k = s.correlated().random_shares::<Z64>(3);
            let p = s.correlated().random_shares::<Z64>(2);
            let e1 = s.sort_by_key(&k, &[p], 40).await.err();
            let e2 = s.sort_by_key(&k, &[], 65).await.err();
            let e3 = s.sort_by_key(&k, &[], 1).await.err();
            Ok((e1, e2, e3, s.counters().rounds))
        })
        .await;
        for r in out {
            let (e1, e2, e3, rounds) = r.unwrap();
            assert!(matches!(e1, Some(EngineError::Invalid(_))));
            assert!(matches!(e2, Some(EngineError::Invalid(_))));
            assert!(matches!(e3, Some(EngineError::Invalid(_))));
            assert_eq!(rounds, 1);
        }
    }
}
