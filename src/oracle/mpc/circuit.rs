//! A boolean circuit over shared bit vectors, built first and evaluated after, so that every
//! check of a session shares its rounds: all AND gates of one depth go into one
//! [`Session::and_many`], whatever check they belong to. Rounds = the deepest AND path, not
//! the sum of the checks' depths.
//!
//! Wires are vectors of shared bits; XOR, NOT, public masks, slices and concatenations are
//! local and free; [`Circuit::and`] is one AND gate per bit. Must not hold: any opening —
//! [`Circuit::eval`] returns shares, and the caller decides what to open.

use crate::engine::binary::{pack, BitShares};
use crate::engine::error::{EngineError, Result};
use crate::engine::session::Session;
use crate::engine::transport::{PartyId, Transport};

/// A vector of shared bits in a [`Circuit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire(usize);

#[derive(Debug, Clone)]
enum Node {
    Input(BitShares),
    Xor(Wire, Wire),
    XorPublic(Wire, Vec<u64>),
    AndPublic(Wire, Vec<u64>),
    Slice(Wire, usize, usize),
    Concat(Vec<Wire>),
    And(Wire, Wire),
}

/// The circuit under construction; see the module documentation.
pub struct Circuit {
    id: PartyId,
    nodes: Vec<Node>,
    lens: Vec<usize>,
    depths: Vec<usize>,
}

impl Circuit {
    /// An empty circuit for party `id`.
    pub fn new(id: PartyId) -> Self {
        Circuit {
            id,
            nodes: Vec::new(),
            lens: Vec::new(),
            depths: Vec::new(),
        }
    }

    fn push(&mut self, node: Node, len: usize, depth: usize) -> Wire {
        self.nodes.push(node);
        self.lens.push(len);
        self.depths.push(depth);
        Wire(self.nodes.len() - 1)
    }

    /// Number of bits of `w`.
    pub fn len(&self, w: Wire) -> usize {
        self.lens[w.0]
    }

    /// Whether the circuit has no wires yet.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A shared input.
    pub fn input(&mut self, x: BitShares) -> Wire {
        let len = x.len;
        self.push(Node::Input(x), len, 0)
    }

    /// `len` public bits all equal to `bit`.
    pub fn constant(&mut self, len: usize, bit: bool) -> Result<Wire> {
        let x = BitShares::from_public(self.id, &pack(&vec![bit; len]), len)?;
        Ok(self.input(x))
    }

    fn same_len(&self, a: Wire, b: Wire) -> Result<usize> {
        if self.len(a) != self.len(b) {
            return Err(EngineError::Invalid(format!(
                "circuit: wires of {} and {} bits",
                self.len(a),
                self.len(b)
            )));
        }
        Ok(self.len(a))
    }

    /// a ⊕ b (local).
    pub fn xor(&mut self, a: Wire, b: Wire) -> Result<Wire> {
        let len = self.same_len(a, b)?;
        let d = self.depths[a.0].max(self.depths[b.0]);
        Ok(self.push(Node::Xor(a, b), len, d))
    }

    /// The XOR of several wires of one length (local); `len` bits of 0 for none.
    pub fn xor_all(&mut self, ws: &[Wire], len: usize) -> Result<Wire> {
        let mut acc = self.constant(len, false)?;
        for &w in ws {
            acc = self.xor(acc, w)?;
        }
        Ok(acc)
    }

    /// a ⊕ c for public bits c (local).
    pub fn xor_public(&mut self, a: Wire, c: Vec<u64>) -> Wire {
        let (len, d) = (self.len(a), self.depths[a.0]);
        self.push(Node::XorPublic(a, c), len, d)
    }

    /// ¬a (local).
    pub fn not(&mut self, a: Wire) -> Wire {
        let len = self.len(a);
        self.xor_public(a, pack(&vec![true; len]))
    }

    /// a ∧ c for public bits c (local).
    pub fn and_public(&mut self, a: Wire, c: Vec<u64>) -> Wire {
        let (len, d) = (self.len(a), self.depths[a.0]);
        self.push(Node::AndPublic(a, c), len, d)
    }

    /// Bits `start .. start + len` of `a` (local).
    pub fn slice(&mut self, a: Wire, start: usize, len: usize) -> Result<Wire> {
        if start + len > self.len(a) {
            return Err(EngineError::Invalid(format!(
                "circuit: slice {start}+{len} of {} bits",
                self.len(a)
            )));
        }
        let d = self.depths[a.0];
        Ok(self.push(Node::Slice(a, start, len), len, d))
    }

    /// The concatenation of `ws` (local).
    pub fn concat(&mut self, ws: &[Wire]) -> Wire {
        let len = ws.iter().map(|w| self.len(*w)).sum();
        let d = ws.iter().map(|w| self.depths[w.0]).max().unwrap_or(0);
        self.push(Node::Concat(ws.to_vec()), len, d)
    }

    /// a ∧ b, bit by bit: one AND gate per bit.
    pub fn and(&mut self, a: Wire, b: Wire) -> Result<Wire> {
        let len = self.same_len(a, b)?;
        let d = self.depths[a.0].max(self.depths[b.0]) + 1;
        Ok(self.push(Node::And(a, b), len, d))
    }

    /// The bitwise AND of several wires of one length, as a balanced tree.
    pub fn and_each(&mut self, ws: &[Wire]) -> Result<Wire> {
        match ws {
            [] => Err(EngineError::Invalid("circuit: AND of no wires".into())),
            [w] => Ok(*w),
            _ => {
                let (l, r) = ws.split_at(ws.len() / 2);
                let (l, r) = (self.and_each(l)?, self.and_each(r)?);
                self.and(l, r)
            }
        }
    }

    /// One bit: the AND of every bit of every wire of `ws` (1 if there are none).
    pub fn and_all(&mut self, ws: &[Wire]) -> Result<Wire> {
        let mut x = self.concat(ws);
        if self.len(x) == 0 {
            return self.constant(1, true);
        }
        while self.len(x) > 1 {
            let n = self.len(x);
            let h = n / 2;
            let (a, b) = (self.slice(x, 0, h)?, self.slice(x, h, h)?);
            let p = self.and(a, b)?;
            x = if n % 2 == 1 {
                let last = self.slice(x, n - 1, 1)?;
                self.concat(&[p, last])
            } else {
                p
            };
        }
        Ok(x)
    }

    /// Evaluates the circuit: one round per AND depth. Returns the shares of `outputs` and
    /// adds the AND gates evaluated to `ands`.
    pub async fn eval<T: Transport>(
        self,
        s: &mut Session<T>,
        outputs: &[Wire],
        ands: &mut u64,
    ) -> Result<Vec<BitShares>> {
        let id = self.id;
        let n = self.nodes.len();
        let max_depth = self.depths.iter().copied().max().unwrap_or(0);
        let mut values: Vec<Option<BitShares>> = vec![None; n];
        let get = |values: &[Option<BitShares>], w: &Wire| -> Result<BitShares> {
            values[w.0]
                .clone()
                .ok_or_else(|| EngineError::Invalid("circuit: wire used before it is set".into()))
        };
        for depth in 0..=max_depth {
            for k in 0..n {
                if self.depths[k] != depth || values[k].is_some() {
                    continue;
                }
                let v = match &self.nodes[k] {
                    Node::And(..) => continue,
                    Node::Input(x) => x.clone(),
                    Node::Xor(a, b) => get(&values, a)?.xor(&get(&values, b)?)?,
                    Node::XorPublic(a, c) => get(&values, a)?.xor_public(id, c)?,
                    Node::AndPublic(a, c) => get(&values, a)?.and_public(c)?,
                    Node::Slice(a, start, len) => get(&values, a)?.slice(*start, *len)?,
                    Node::Concat(ws) => {
                        let parts: Vec<BitShares> =
                            ws.iter().map(|w| get(&values, w)).collect::<Result<_>>()?;
                        BitShares::concat(&parts.iter().collect::<Vec<_>>())
                    }
                };
                values[k] = Some(v);
            }
            let gates: Vec<usize> = (0..n)
                .filter(|&k| self.depths[k] == depth + 1 && matches!(self.nodes[k], Node::And(..)))
                .collect();
            if gates.is_empty() {
                continue;
            }
            let mut inputs = Vec::with_capacity(gates.len());
            for &k in &gates {
                let Node::And(a, b) = &self.nodes[k] else {
                    continue;
                };
                inputs.push((get(&values, a)?, get(&values, b)?));
            }
            *ands += inputs.iter().map(|(x, _)| x.len as u64).sum::<u64>();
            let pairs: Vec<(&BitShares, &BitShares)> = inputs.iter().map(|(x, y)| (x, y)).collect();
            let products = s.and_many(&pairs).await?;
            for (k, p) in gates.into_iter().zip(products) {
                values[k] = Some(p);
            }
        }
        outputs.iter().map(|w| get(&values, w)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::binary::unpack;
    use crate::engine::local::run3;

    #[tokio::test]
    async fn gates_of_one_depth_share_a_round() {
        let out = run3(3, |mut s| async move {
            let id = s.id();
            let x = BitShares::from_public(id, &[0b1011], 4)?;
            let y = BitShares::from_public(id, &[0b0110], 4)?;
            let mut c = Circuit::new(id);
            let (x, y) = (c.input(x), c.input(y));
            let a = c.and(x, y)?; // 0010
            let nx = c.not(x); // 0100
            let b = c.and(nx, y)?; // 0100
            let o = c.xor(a, b)?; // 0110
            let all = c.and_all(&[o])?; // 0
            let ones = c.constant(5, true)?;
            let all1 = c.and_all(&[ones])?; // 1
            let empty = c.and_all(&[])?; // 1
            let hi = c.slice(x, 2, 2)?; // 10
            let cat = c.concat(&[hi, a]); // 10 ‖ 0010
            let each = c.and_each(&[x, y, nx])?; // 0
            let before = s.counters().rounds;
            let mut ands = 0;
            let v = c
                .eval(&mut s, &[o, all, all1, empty, cat, each], &mut ands)
                .await?;
            let rounds = s.counters().rounds - before;
            let mut opened = Vec::new();
            for w in &v {
                opened.push(unpack(&s.open_bits(w).await?, w.len));
            }
            Ok((opened, rounds, ands))
        })
        .await;
        for r in out {
            let (o, rounds, ands) = r.unwrap();
            assert_eq!(o[0], vec![false, true, true, false]);
            assert_eq!((o[1][0], o[2][0], o[3][0]), (false, true, true));
            assert_eq!(o[4], vec![false, true, false, true, false, false]);
            assert_eq!(o[5], vec![false; 4]);
            // Depth: a, b, each's first level at 1; the and_all trees: o (depth 1) needs 2
            // levels, the five ones 3 levels; each needs 2.
            assert_eq!(rounds, 3);
            assert_eq!(ands, 4 + 4 + (2 + 1) + (2 + 1 + 1) + (4 + 4));
        }
    }

    #[tokio::test]
    async fn mismatched_lengths_are_errors() {
        let out = run3(4, |s| async move {
            let mut c = Circuit::new(s.id());
            let a = c.constant(3, true)?;
            let b = c.constant(4, true)?;
            Ok((
                c.and(a, b).is_err(),
                c.xor(a, b).is_err(),
                c.slice(a, 2, 2).is_err(),
            ))
        })
        .await;
        for r in out {
            assert_eq!(r.unwrap(), (true, true, true));
        }
    }
}
