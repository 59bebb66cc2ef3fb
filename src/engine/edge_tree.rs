//! Bit-decomposed values against many public edges at once ([`Session::ge_public_planes`]):
//! [x ≥ e] is the carry out of x + ¬e + 1, a generate/propagate tree over the bits. With e
//! public every leaf is x_j, ¬x_j or a constant, so the tree of one edge over a block of
//! bits depends only on the edge's bits in that block: edges that agree there share the
//! block's node, which is computed once, and constants fold (an AND with 0 is 0, with 1 is
//! the other operand, and costs no gate). Which gates run depends on the public edges and
//! the bit width alone, never on the values; [`edge_tree_gates`] counts them without any
//! shares, from the same plan. This module holds the tree; the planes come from
//! `convert`, the ANDs (and their proof in malicious mode) from `binary`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::binary::{BitPlanes, BitShares};
use super::error::{EngineError, Result};
use super::session::Session;
use super::transport::{PartyId, Transport};

/// What a shared bit of the tree is: the shares themselves when running it, nothing when
/// only counting its gates.
trait Wire: Clone {
    fn not(&self, me: PartyId) -> Self;
    fn xor(&self, o: &Self) -> Self;
}

impl Wire for Arc<BitShares> {
    fn not(&self, me: PartyId) -> Self {
        Arc::new(self.as_ref().not(me))
    }
    fn xor(&self, o: &Self) -> Self {
        Arc::new(self.xor_same(o))
    }
}

impl Wire for () {
    fn not(&self, _: PartyId) -> Self {}
    fn xor(&self, _: &Self) -> Self {}
}

/// A node's bit: a constant, or a shared vector (one bit per value).
#[derive(Clone)]
enum Bit<V> {
    Zero,
    One,
    Var(V),
}

/// The (generate, propagate) of a block; the block that holds bit 0 takes the carry in of
/// 1 into its generate and needs no propagate.
#[derive(Clone)]
struct Node<V> {
    g: Bit<V>,
    p: Option<Bit<V>>,
}

/// An AND of two nodes' bits, folded when either is a constant, else a gate of the round.
enum And<V> {
    Known(Bit<V>),
    Gate(usize),
}

fn xor<V: Wire>(a: &Bit<V>, b: &Bit<V>, me: PartyId) -> Bit<V> {
    match (a, b) {
        (Bit::Zero, x) | (x, Bit::Zero) => x.clone(),
        (Bit::One, Bit::One) => Bit::Zero,
        (Bit::One, Bit::Var(v)) | (Bit::Var(v), Bit::One) => Bit::Var(v.not(me)),
        (Bit::Var(u), Bit::Var(v)) => Bit::Var(u.xor(v)),
    }
}

fn and<V: Wire>(a: &Bit<V>, b: &Bit<V>, gates: &mut Vec<(V, V)>) -> And<V> {
    match (a, b) {
        (Bit::Zero, _) | (_, Bit::Zero) => And::Known(Bit::Zero),
        (Bit::One, x) | (x, Bit::One) => And::Known(x.clone()),
        (Bit::Var(u), Bit::Var(v)) => {
            gates.push((u.clone(), v.clone()));
            And::Gate(gates.len() - 1)
        }
    }
}

/// The bits of `e` in block `i` of `width` bits (zero beyond the top).
fn pattern(e: u128, i: usize, width: usize) -> u128 {
    let lo = i * width;
    if lo >= 128 {
        return 0;
    }
    let v = e >> lo;
    if width >= 128 {
        v
    } else {
        v & ((1u128 << width) - 1)
    }
}

type Level<V> = HashMap<(usize, u128), Node<V>>;

/// The leaves of every edge: bit 0 joins the carry in, G = x_0 ∨ ¬e_0; above it,
/// G = x_j ∧ ¬e_j and P = x_j ⊕ ¬e_j, with x_j = `xs[j]`, ¬x_j = `nots[j]`.
fn leaves<V: Wire>(edges: &[u128], xs: &[V], nots: &[V]) -> Level<V> {
    let mut level = HashMap::new();
    for &e in edges {
        for (j, (x, not_x)) in xs.iter().zip(nots).enumerate() {
            let bit = e >> j & 1;
            level.entry((j, bit)).or_insert_with(|| match (j, bit) {
                (0, 0) => Node {
                    g: Bit::One,
                    p: None,
                },
                (0, _) => Node {
                    g: Bit::Var(x.clone()),
                    p: None,
                },
                (_, 0) => Node {
                    g: Bit::Var(x.clone()),
                    p: Some(Bit::Var(not_x.clone())),
                },
                _ => Node {
                    g: Bit::Zero,
                    p: Some(Bit::Var(x.clone())),
                },
            });
        }
    }
    level
}

/// A merge of a plan: the new block's key, its high child, and the ANDs that
/// G = G_hi ⊕ P_hi G_lo and P = P_hi P_lo (above the lowest block) need.
struct Merge<V> {
    key: (usize, u128),
    hi: Node<V>,
    t: And<V>,
    u: Option<And<V>>,
}

/// One level's plan: the nodes that pass up unchanged, the merges, and the gates of its
/// round.
struct Plan<V> {
    next: Level<V>,
    merges: Vec<Merge<V>>,
    gates: Vec<(V, V)>,
}

/// Plans the level above `level` (`blocks` blocks of `width` bits): block i joins blocks
/// 2i (low) and 2i + 1 (high); a last block without a partner passes up unchanged. Each
/// distinct (block, edge bits) is planned once.
fn plan<V: Wire>(level: &Level<V>, edges: &[u128], blocks: usize, width: usize) -> Plan<V> {
    let mut out = Plan {
        next: HashMap::new(),
        merges: Vec::new(),
        gates: Vec::new(),
    };
    let mut planned: HashSet<(usize, u128)> = HashSet::new();
    for &e in edges {
        for i in 0..blocks.div_ceil(2) {
            let key = (i, pattern(e, i, 2 * width));
            if !planned.insert(key) {
                continue;
            }
            let lo = &level[&(2 * i, pattern(e, 2 * i, width))];
            if 2 * i + 1 == blocks {
                out.next.insert(key, lo.clone());
                continue;
            }
            let hi = level[&(2 * i + 1, pattern(e, 2 * i + 1, width))].clone();
            let p_hi = hi.p.clone().expect("only the lowest block lacks P");
            let t = and(&p_hi, &lo.g, &mut out.gates);
            let u = lo.p.as_ref().map(|p_lo| and(&p_hi, p_lo, &mut out.gates));
            out.merges.push(Merge { key, hi, t, u });
        }
    }
    out
}

/// The level a plan makes, given its gates' results.
fn finish<V: Wire>(plan: Plan<V>, done: &[V], me: PartyId) -> Level<V> {
    let resolve = |a: And<V>| match a {
        And::Known(b) => b,
        And::Gate(i) => Bit::Var(done[i].clone()),
    };
    let mut next = plan.next;
    for m in plan.merges {
        let g = xor(&m.hi.g, &resolve(m.t), me);
        next.insert(
            m.key,
            Node {
                g,
                p: m.u.map(resolve),
            },
        );
    }
    next
}

/// The AND gates per value of [`Session::ge_public_planes`] for these edges on `bits`
/// bits: the same plan, run on no shares.
pub fn edge_tree_gates(edges: &[u128], bits: usize) -> usize {
    let unit = vec![(); bits];
    let mut level = leaves(edges, &unit, &unit);
    let (mut width, mut blocks, mut gates) = (1usize, bits, 0);
    while blocks > 1 {
        let p = plan(&level, edges, blocks, width);
        gates += p.gates.len();
        let done = vec![(); p.gates.len()];
        level = finish(p, &done, 0);
        width *= 2;
        blocks = blocks.div_ceil(2);
    }
    gates
}

impl<T: Transport> Session<T> {
    /// [x ≥ e] for every public e of `edges` and every element of the bit-decomposed x
    /// (planes from [`Session::a2b`], bit 0 first), edge-major: the carry out of
    /// x + ¬e + 1 on `x.planes.len()` bits, with every edge below 2^bits, in at most
    /// ⌈log2 bits⌉ rounds. With e public, generate and propagate cost nothing, and edges
    /// that agree on a block of bits share its node (module doc): at most about 2·bits
    /// ANDs per edge, fewer where edges share bits or have zeros or ones in a row (ten
    /// edges from 1 to 3·10^4 on 47 bits: 181 in all); [`edge_tree_gates`] has the count.
    pub async fn ge_public_planes(&mut self, x: &BitPlanes, edges: &[u128]) -> Result<BitShares> {
        let me = self.id();
        let k = x.planes.len();
        let n = x.len;
        if k == 0 || k > 127 || edges.iter().any(|&e| e >> k != 0) {
            return Err(EngineError::Invalid(format!(
                "ge_public_planes: {} edges on {k} bits, each must be below 2^{k}",
                edges.len()
            )));
        }
        let xs: Vec<Arc<BitShares>> = x.planes.iter().map(|p| Arc::new(p.clone())).collect();
        let nots: Vec<Arc<BitShares>> = xs.iter().map(|p| p.not(me)).collect();
        let mut level = leaves(edges, &xs, &nots);
        drop((xs, nots));
        let (mut width, mut blocks) = (1usize, k);
        while blocks > 1 {
            let mut p = plan(&level, edges, blocks, width);
            // Every gate of the level in one round (none when all folded: every party
            // derives the same plan from the public edges).
            let done = if p.gates.is_empty() {
                Vec::new()
            } else {
                let pairs: Vec<(&BitShares, &BitShares)> = p
                    .gates
                    .iter()
                    .map(|(a, b)| (a.as_ref(), b.as_ref()))
                    .collect();
                self.and_many(&pairs).await?
            };
            p.gates.clear();
            let done: Vec<Arc<BitShares>> = done.into_iter().map(Arc::new).collect();
            level = finish(p, &done, me);
            width *= 2;
            blocks = blocks.div_ceil(2);
        }
        let value = |b: &Bit<Arc<BitShares>>| match b {
            Bit::Zero => BitShares::zeros(n),
            Bit::One => BitShares::zeros(n).not(me),
            Bit::Var(v) => v.as_ref().clone(),
        };
        let roots: Vec<BitShares> = edges
            .iter()
            .map(|&e| value(&level[&(0, pattern(e, 0, width))].g))
            .collect();
        Ok(BitShares::concat(&roots.iter().collect::<Vec<_>>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::binary::tests::recon_bits;
    use crate::engine::convert::tests::share_all;
    use crate::engine::local::{local_transports, run3, run3_secure};
    use crate::engine::ring::Z64;
    use crate::engine::Security;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn ok<V>(out: [Result<V>; 3]) -> [V; 3] {
        out.map(|r| r.expect("honest run"))
    }

    /// [x ≥ e] for every edge, edge-major, as the parties open it; with the AND gates
    /// proven per value in malicious mode (n a multiple of 64).
    async fn run_edges(
        security: Security,
        xs: &[u64],
        bits: u32,
        edges: &[u128],
        seed: u64,
    ) -> (Vec<bool>, u64) {
        let vals: Vec<Z64> = xs.iter().map(|&v| Z64(v)).collect();
        let sx = Arc::new(share_all(&vals, seed));
        let e2 = edges.to_vec();
        let out = ok(
            run3_secure(seed, security, local_transports(), move |mut s| {
                let (sx, e2) = (sx.clone(), e2.clone());
                async move {
                    let planes = s.a2b(&sx[s.id()], bits).await?;
                    s.verify().await?;
                    let before = s.proven().and_words;
                    let r = s.ge_public_planes(&planes, &e2).await?;
                    s.verify().await?;
                    Ok((r, s.proven().and_words - before))
                }
            })
            .await,
        );
        let words = out[0].1;
        let parts = out.map(|(r, _)| r);
        (recon_bits(&parts), words)
    }

    fn plaintext(xs: &[u64], edges: &[u128]) -> Vec<bool> {
        edges
            .iter()
            .flat_map(|&e| xs.iter().map(move |&x| u128::from(x) >= e))
            .collect()
    }

    /// Decomposed values against public edges, in both modes: every pair equals its
    /// plaintext comparison, at 0, at the top value, and at e − 1, e, e + 1 of each edge.
    #[tokio::test]
    async fn public_edges_against_decomposed_values() {
        use crate::engine::local::{local_transports, run3_secure};
        use crate::engine::Security;
        let top = (1u64 << 62) - 1;
        let edges: Vec<u128> = vec![0, 1, 5, 1 << 40, u128::from(top) - 1, u128::from(top)];
        let mut xs: Vec<u64> = vec![0, 1, 2, 4, 5, 6, top, top - 1, top - 2];
        xs.extend([(1 << 40) - 1, 1 << 40, (1 << 40) + 1]);
        let mut rng = ChaCha20Rng::seed_from_u64(31);
        // 77 values: not a whole number of words, so the edges' blocks do not align.
        while xs.len() < 77 {
            xs.push(rng.gen::<u64>() & top);
        }
        for security in [Security::SemiHonest, Security::Malicious] {
            let vals: Vec<Z64> = xs.iter().map(|&v| Z64(v)).collect();
            let sx = Arc::new(share_all(&vals, 3));
            let e2 = edges.clone();
            let out = ok(run3_secure(3, security, local_transports(), move |mut s| {
                let (sx, e2) = (sx.clone(), e2.clone());
                async move {
                    let planes = s.a2b(&sx[s.id()], 63).await?;
                    s.ge_public_planes(&planes, &e2).await
                }
            })
            .await);
            let got = recon_bits(&out);
            let want: Vec<bool> = edges
                .iter()
                .flat_map(|&e| xs.iter().map(move |&x| u128::from(x) >= e))
                .collect();
            assert_eq!(got, want, "{security:?}");
        }
        // An edge that does not fit the planes is refused.
        let sx = Arc::new(share_all(&[Z64(1)], 4));
        let out = run3(4, move |mut s| {
            let sx = sx.clone();
            async move {
                let planes = s.a2b(&sx[s.id()], 8).await?;
                s.ge_public_planes(&planes, &[256]).await
            }
        })
        .await;
        assert!(out
            .iter()
            .all(|r| matches!(r, Err(EngineError::Invalid(_)))));
    }

    /// Edges that share blocks, repeat, sit at 0 and at 2^bits − 1, or differ in one bit,
    /// on widths from 1 to 63 bits: every comparison equals its plaintext.
    #[tokio::test]
    async fn shared_and_folded_nodes_match_plaintext() {
        let mut rng = ChaCha20Rng::seed_from_u64(77);
        for bits in [1u32, 2, 3, 5, 8, 47, 63] {
            let top = (1u64 << bits) - 1;
            let mut edges: Vec<u128> = vec![0, 1, u128::from(top), u128::from(top), 1];
            let base = rng.gen::<u64>() & top;
            for j in 0..bits.min(6) {
                // Neighbours of one random edge: shared high blocks, one bit apart.
                edges.push(u128::from(base ^ (1 << j)));
            }
            edges.extend((0..4).map(|_| u128::from(rng.gen::<u64>() & top)));
            let mut xs: Vec<u64> = vec![0, top, top.saturating_sub(1), base];
            for &e in &edges {
                let e = e as u64;
                xs.extend([e, e.saturating_sub(1), (e + 1).min(top)]);
            }
            while !xs.len().is_multiple_of(64) {
                xs.push(rng.gen::<u64>() & top);
            }
            let (got, _) = run_edges(Security::SemiHonest, &xs, bits, &edges, 5).await;
            assert_eq!(got, plaintext(&xs, &edges), "{bits} bits");
        }
    }

    /// Which gates run depends on the public edges alone: two value vectors cost the same,
    /// ten copies of an edge cost one edge, and ten small edges on 47 bits share the tree
    /// of their zero high bits (far below ten unshared trees of about 2·47 ANDs).
    #[tokio::test]
    async fn gates_follow_the_edges_and_shared_blocks_cost_once() {
        let bits = 47;
        let top = (1u64 << bits) - 1;
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let a: Vec<u64> = (0..128).map(|_| rng.gen::<u64>() & top).collect();
        let b: Vec<u64> = (0..128).map(|i| if i % 2 == 0 { 0 } else { top }).collect();
        let small: Vec<u128> = (0..10u32)
            .map(|k| u128::from(10u64.pow(k / 2) * if k % 2 == 0 { 1 } else { 3 }))
            .collect();
        let (got_a, words_a) = run_edges(Security::Malicious, &a, bits, &small, 1).await;
        let (got_b, words_b) = run_edges(Security::Malicious, &b, bits, &small, 2).await;
        assert_eq!(got_a, plaintext(&a, &small));
        assert_eq!(got_b, plaintext(&b, &small));
        assert_eq!(words_a, words_b, "the gates do not depend on the values");
        let per_value = words_a * 64 / 128;
        assert!(
            per_value < 10 * 47,
            "{per_value} ANDs per value for ten small edges"
        );

        let one = [u128::from(top / 3)];
        let (_, words_one) = run_edges(Security::Malicious, &a, bits, &one, 3).await;
        let (got_ten, words_ten) = run_edges(Security::Malicious, &a, bits, &[one[0]; 10], 4).await;
        assert_eq!(got_ten, plaintext(&a, &[one[0]; 10]));
        assert_eq!(words_ten, words_one, "ten copies of an edge cost one");
        assert_eq!((words_one * 64 / 128) as usize, edge_tree_gates(&one, 47));
        // Random edges share little: the count stays below the unshared trees' 2·bits each.
        let random: Vec<u128> = (0..6).map(|_| u128::from(rng.gen::<u64>() & top)).collect();
        let (got_r, words_r) = run_edges(Security::Malicious, &a, bits, &random, 6).await;
        assert_eq!(got_r, plaintext(&a, &random));
        assert_eq!((words_r * 64 / 128) as usize, edge_tree_gates(&random, 47));
        assert!(edge_tree_gates(&random, 47) < 6 * 2 * 47);
    }
}
