//! The AES S-box as a boolean circuit, and a layered evaluator of such circuits over shared
//! bit vectors (one [`Session::and_many`] round per AND layer) and over plain bits.
//!
//! The circuit is the Boyar–Peralta depth-16 S-box (J. Boyar, R. Peralta, "A depth-16 circuit
//! for the AES S-box", 2011): a linear top layer (8 → 22 bits), a nonlinear middle (inversion
//! in GF(2^8) via the tower field GF((2^4)^2), 34 ANDs in 4 AND layers of 9, 3, 4 and 18
//! gates) and a linear bottom layer with the affine constant folded into four XNORs. It is
//! written here from the published gate equations, as straight-line builder code; the same
//! gate list drives the plaintext evaluator ([`sbox_plain`]) and the MPC evaluator
//! ([`Session::sbox_many`]), and the tests check it exhaustively against the S-box computed
//! from its definition (inverse in GF(2^8), then the affine map).
//!
//! Bit order inside the circuit: input U0 is the most significant bit (bit 7) of the byte,
//! U7 the least; outputs S0..S7 likewise.

use std::sync::OnceLock;

use super::super::binary::BitShares;
use super::super::error::{EngineError, Result};
use super::super::session::Session;
use super::super::transport::Transport;

/// AND gates of one S-box.
pub const SBOX_ANDS: usize = 34;
/// AND depth of one S-box: communication rounds per layer of S-boxes.
pub const SBOX_AND_DEPTH: usize = 4;

/// One gate; operands are wire numbers (inputs first, then one wire per gate in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Xor(usize, usize),
    /// ¬(a ⊕ b).
    Xnor(usize, usize),
    And(usize, usize),
}

/// A boolean circuit over XOR, XNOR and AND, topologically ordered, with each wire's AND depth.
#[derive(Clone, Debug)]
pub struct Circuit {
    pub inputs: usize,
    pub gates: Vec<Gate>,
    pub outputs: Vec<usize>,
    /// AND depth of every wire (inputs 0).
    depth: Vec<usize>,
}

impl Circuit {
    /// Number of AND gates.
    pub fn and_count(&self) -> usize {
        self.gates
            .iter()
            .filter(|g| matches!(g, Gate::And(..)))
            .count()
    }

    /// The largest AND depth of any wire.
    pub fn and_depth(&self) -> usize {
        self.depth.iter().copied().max().unwrap_or(0)
    }

    /// Evaluates the circuit on plain bits.
    pub fn eval_plain(&self, inputs: &[bool]) -> Vec<bool> {
        let mut w: Vec<bool> = inputs.to_vec();
        for g in &self.gates {
            let v = match *g {
                Gate::Xor(a, b) => w[a] ^ w[b],
                Gate::Xnor(a, b) => !(w[a] ^ w[b]),
                Gate::And(a, b) => w[a] & w[b],
            };
            w.push(v);
        }
        self.outputs.iter().map(|&o| w[o]).collect()
    }
}

/// Builds a circuit gate by gate.
struct Builder {
    inputs: usize,
    gates: Vec<Gate>,
}

impl Builder {
    fn push(&mut self, g: Gate) -> usize {
        self.gates.push(g);
        self.inputs + self.gates.len() - 1
    }
    fn xor(&mut self, a: usize, b: usize) -> usize {
        self.push(Gate::Xor(a, b))
    }
    fn xnor(&mut self, a: usize, b: usize) -> usize {
        self.push(Gate::Xnor(a, b))
    }
    fn and(&mut self, a: usize, b: usize) -> usize {
        self.push(Gate::And(a, b))
    }
    fn finish(self, outputs: Vec<usize>) -> Circuit {
        let mut depth = vec![0usize; self.inputs];
        for g in &self.gates {
            let d = match *g {
                Gate::Xor(a, b) | Gate::Xnor(a, b) => depth[a].max(depth[b]),
                Gate::And(a, b) => depth[a].max(depth[b]) + 1,
            };
            depth.push(d);
        }
        Circuit {
            inputs: self.inputs,
            gates: self.gates,
            outputs,
            depth,
        }
    }
}

/// The S-box circuit (built once).
pub fn sbox_circuit() -> &'static Circuit {
    static CIRCUIT: OnceLock<Circuit> = OnceLock::new();
    CIRCUIT.get_or_init(build_sbox)
}

fn build_sbox() -> Circuit {
    let mut c = Builder {
        inputs: 8,
        gates: Vec::with_capacity(128),
    };
    let u: [usize; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
    // Top linear layer.
    let t1 = c.xor(u[0], u[3]);
    let t2 = c.xor(u[0], u[5]);
    let t3 = c.xor(u[0], u[6]);
    let t4 = c.xor(u[3], u[5]);
    let t5 = c.xor(u[4], u[6]);
    let t6 = c.xor(t1, t5);
    let t7 = c.xor(u[1], u[2]);
    let t8 = c.xor(u[7], t6);
    let t9 = c.xor(u[7], t7);
    let t10 = c.xor(t6, t7);
    let t11 = c.xor(u[1], u[5]);
    let t12 = c.xor(u[2], u[5]);
    let t13 = c.xor(t3, t4);
    let t14 = c.xor(t6, t11);
    let t15 = c.xor(t5, t11);
    let t16 = c.xor(t5, t12);
    let t17 = c.xor(t9, t16);
    let t18 = c.xor(u[3], u[7]);
    let t19 = c.xor(t7, t18);
    let t20 = c.xor(t1, t19);
    let t21 = c.xor(u[6], u[7]);
    let t22 = c.xor(t7, t21);
    let t23 = c.xor(t2, t22);
    let t24 = c.xor(t2, t10);
    let t25 = c.xor(t20, t17);
    let t26 = c.xor(t3, t16);
    let t27 = c.xor(t1, t12);
    // Nonlinear middle.
    let m1 = c.and(t13, t6);
    let m2 = c.and(t23, t8);
    let m3 = c.xor(t14, m1);
    let m4 = c.and(t19, u[7]);
    let m5 = c.xor(m4, m1);
    let m6 = c.and(t3, t16);
    let m7 = c.and(t22, t9);
    let m8 = c.xor(t26, m6);
    let m9 = c.and(t20, t17);
    let m10 = c.xor(m9, m6);
    let m11 = c.and(t1, t15);
    let m12 = c.and(t4, t27);
    let m13 = c.xor(m12, m11);
    let m14 = c.and(t2, t10);
    let m15 = c.xor(m14, m11);
    let m16 = c.xor(m3, m2);
    let m17 = c.xor(m5, t24);
    let m18 = c.xor(m8, m7);
    let m19 = c.xor(m10, m15);
    let m20 = c.xor(m16, m13);
    let m21 = c.xor(m17, m15);
    let m22 = c.xor(m18, m13);
    let m23 = c.xor(m19, t25);
    let m24 = c.xor(m22, m23);
    let m25 = c.and(m22, m20);
    let m26 = c.xor(m21, m25);
    let m27 = c.xor(m20, m21);
    let m28 = c.xor(m23, m25);
    let m29 = c.and(m28, m27);
    let m30 = c.and(m26, m24);
    let m31 = c.and(m20, m23);
    let m32 = c.and(m27, m31);
    let m33 = c.xor(m27, m25);
    let m34 = c.and(m21, m22);
    let m35 = c.and(m24, m34);
    let m36 = c.xor(m24, m25);
    let m37 = c.xor(m21, m29);
    let m38 = c.xor(m32, m33);
    let m39 = c.xor(m23, m30);
    let m40 = c.xor(m35, m36);
    let m41 = c.xor(m38, m40);
    let m42 = c.xor(m37, m39);
    let m43 = c.xor(m37, m38);
    let m44 = c.xor(m39, m40);
    let m45 = c.xor(m42, m41);
    let m46 = c.and(m44, t6);
    let m47 = c.and(m40, t8);
    let m48 = c.and(m39, u[7]);
    let m49 = c.and(m43, t16);
    let m50 = c.and(m38, t9);
    let m51 = c.and(m37, t17);
    let m52 = c.and(m42, t15);
    let m53 = c.and(m45, t27);
    let m54 = c.and(m41, t10);
    let m55 = c.and(m44, t13);
    let m56 = c.and(m40, t23);
    let m57 = c.and(m39, t19);
    let m58 = c.and(m43, t3);
    let m59 = c.and(m38, t22);
    let m60 = c.and(m37, t20);
    let m61 = c.and(m42, t1);
    let m62 = c.and(m45, t4);
    let m63 = c.and(m41, t2);
    // Bottom linear layer.
    let l0 = c.xor(m61, m62);
    let l1 = c.xor(m50, m56);
    let l2 = c.xor(m46, m48);
    let l3 = c.xor(m47, m55);
    let l4 = c.xor(m54, m58);
    let l5 = c.xor(m49, m61);
    let l6 = c.xor(m62, l5);
    let l7 = c.xor(m46, l3);
    let l8 = c.xor(m51, m59);
    let l9 = c.xor(m52, m53);
    let l10 = c.xor(m53, l4);
    let l11 = c.xor(m60, l2);
    let l12 = c.xor(m48, m51);
    let l13 = c.xor(m50, l0);
    let l14 = c.xor(m52, m61);
    let l15 = c.xor(m55, l1);
    let l16 = c.xor(m56, l0);
    let l17 = c.xor(m57, l1);
    let l18 = c.xor(m58, l8);
    let l19 = c.xor(m63, l4);
    let l20 = c.xor(l0, l1);
    let l21 = c.xor(l1, l7);
    let l22 = c.xor(l3, l12);
    let l23 = c.xor(l18, l2);
    let l24 = c.xor(l15, l9);
    let l25 = c.xor(l6, l10);
    let l26 = c.xor(l7, l9);
    let l27 = c.xor(l8, l10);
    let l28 = c.xor(l11, l14);
    let l29 = c.xor(l11, l17);
    let s0 = c.xor(l6, l24);
    let s1 = c.xnor(l16, l26);
    let s2 = c.xnor(l19, l28);
    let s3 = c.xor(l6, l21);
    let s4 = c.xor(l20, l22);
    let s5 = c.xor(l25, l29);
    let s6 = c.xnor(l13, l27);
    let s7 = c.xnor(l6, l23);
    c.finish(vec![s0, s1, s2, s3, s4, s5, s6, s7])
}

/// The S-box of one byte, by the plaintext evaluation of the circuit.
pub fn sbox_plain(x: u8) -> u8 {
    let inputs: Vec<bool> = (0..8).map(|j| (x >> (7 - j)) & 1 == 1).collect();
    sbox_circuit()
        .eval_plain(&inputs)
        .iter()
        .enumerate()
        .fold(0u8, |acc, (j, &bit)| acc | ((bit as u8) << (7 - j)))
}

/// The value of wire `w`, which must have been computed.
fn wire(wires: &[Option<BitShares>], w: usize) -> Result<&BitShares> {
    wires[w]
        .as_ref()
        .ok_or_else(|| EngineError::Invalid(format!("eval_circuit: wire {w} not ready")))
}

impl<T: Transport> Session<T> {
    /// Evaluates `circuit` on shared bit vectors (all of one length): one round per AND layer,
    /// each party sending one bit per AND gate per element.
    pub async fn eval_circuit(
        &mut self,
        circuit: &Circuit,
        inputs: &[BitShares],
    ) -> Result<Vec<BitShares>> {
        if inputs.len() != circuit.inputs {
            return Err(EngineError::Invalid(format!(
                "eval_circuit: {} input vectors for a circuit of {} inputs",
                inputs.len(),
                circuit.inputs
            )));
        }
        let len = inputs.first().map_or(0, |x| x.len);
        if let Some(x) = inputs.iter().find(|x| x.len != len) {
            return Err(EngineError::Invalid(format!(
                "eval_circuit: input vectors of lengths {len} and {}",
                x.len
            )));
        }
        let id = self.id();
        let n = circuit.inputs + circuit.gates.len();
        let mut wires: Vec<Option<BitShares>> = Vec::with_capacity(n);
        wires.extend(inputs.iter().cloned().map(Some));
        wires.resize(n, None);
        for layer in 0..=circuit.and_depth() {
            if layer > 0 {
                let ands: Vec<(usize, usize, usize)> = circuit
                    .gates
                    .iter()
                    .enumerate()
                    .filter_map(|(g, gate)| match *gate {
                        Gate::And(a, b) if circuit.depth[circuit.inputs + g] == layer => {
                            Some((circuit.inputs + g, a, b))
                        }
                        _ => None,
                    })
                    .collect();
                let mut pairs = Vec::with_capacity(ands.len());
                for &(_, a, b) in &ands {
                    match (&wires[a], &wires[b]) {
                        (Some(x), Some(y)) => pairs.push((x, y)),
                        _ => {
                            return Err(EngineError::Invalid(format!(
                                "eval_circuit: operand of an AND in layer {layer} not ready"
                            )))
                        }
                    }
                }
                let results = self.and_many(&pairs).await?;
                for ((w, _, _), r) in ands.into_iter().zip(results) {
                    wires[w] = Some(r);
                }
            }
            for (g, gate) in circuit.gates.iter().enumerate() {
                let w = circuit.inputs + g;
                if circuit.depth[w] != layer {
                    continue;
                }
                let v = match *gate {
                    Gate::Xor(a, b) => wire(&wires, a)?.xor(wire(&wires, b)?)?,
                    Gate::Xnor(a, b) => wire(&wires, a)?.xor(wire(&wires, b)?)?.not(id),
                    Gate::And(..) => continue,
                };
                wires[w] = Some(v);
            }
        }
        circuit
            .outputs
            .iter()
            .map(|&o| wire(&wires, o).cloned())
            .collect()
    }

    /// The S-box of N shared bytes at once: `x[i]` holds bit i (0 = least significant) of
    /// every byte, N bits long. [`SBOX_AND_DEPTH`] rounds for any N; each party sends
    /// [`SBOX_ANDS`] · ⌈N/8⌉ bytes.
    pub async fn sbox_many(&mut self, x: &[BitShares; 8]) -> Result<[BitShares; 8]> {
        // Circuit input j is bit 7 − j.
        let inputs: Vec<BitShares> = (0..8).map(|j| x[7 - j].clone()).collect();
        let out = self.eval_circuit(sbox_circuit(), &inputs).await?;
        Ok(std::array::from_fn(|i| out[7 - i].clone()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::binary::tests::{recon_bits, test_share};
    use crate::engine::binary::{pack, unpack};
    use crate::engine::local::run3;
    use crate::engine::transport::FRAME_HEADER;

    /// GF(2^8) product modulo x^8 + x^4 + x^3 + x + 1.
    pub(crate) fn gf256_mul(mut a: u8, mut b: u8) -> u8 {
        let mut p = 0u8;
        while b != 0 {
            if b & 1 == 1 {
                p ^= a;
            }
            let hi = a & 0x80;
            a <<= 1;
            if hi != 0 {
                a ^= 0x1b;
            }
            b >>= 1;
        }
        p
    }

    /// The S-box from its definition: inverse in GF(2^8) (0 ↦ 0), then the affine map.
    pub(crate) fn sbox_ref(x: u8) -> u8 {
        let inv = (1..=255u8).find(|&y| gf256_mul(x, y) == 1).unwrap_or(0);
        inv ^ inv.rotate_left(1)
            ^ inv.rotate_left(2)
            ^ inv.rotate_left(3)
            ^ inv.rotate_left(4)
            ^ 0x63
    }

    #[test]
    fn circuit_shape() {
        let c = sbox_circuit();
        assert_eq!(c.and_count(), SBOX_ANDS);
        assert_eq!(c.and_depth(), SBOX_AND_DEPTH);
        assert_eq!(c.outputs.len(), 8);
        let per_layer: Vec<usize> = (1..=SBOX_AND_DEPTH)
            .map(|l| {
                c.gates
                    .iter()
                    .enumerate()
                    .filter(|(g, gate)| matches!(gate, Gate::And(..)) && c.depth[c.inputs + g] == l)
                    .count()
            })
            .collect();
        assert_eq!(per_layer, vec![9, 3, 4, 18]);
    }

    #[test]
    fn sbox_plain_exhaustive() {
        assert_eq!(sbox_ref(0x00), 0x63);
        assert_eq!(sbox_ref(0x53), 0xed);
        for x in 0..=255u8 {
            assert_eq!(sbox_plain(x), sbox_ref(x), "S({x:#04x})");
        }
    }

    #[tokio::test]
    async fn sbox_mpc_exhaustive() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let out = run3(5, move |mut s| {
            let bytes = bytes.clone();
            async move {
                let id = s.id();
                let x: [BitShares; 8] = std::array::from_fn(|i| {
                    let bits: Vec<bool> = bytes.iter().map(|b| (b >> i) & 1 == 1).collect();
                    test_share(id, &bits, 100 + i as u64)
                });
                let before = s.counters();
                let y = s.sbox_many(&x).await?;
                let after = s.counters();
                Ok((
                    y,
                    after.rounds - before.rounds,
                    after.bytes_sent - before.bytes_sent,
                ))
            }
        })
        .await
        .map(|r| r.unwrap());
        let mut got = [0u8; 256];
        for i in 0..8 {
            let parts = [
                out[0].0[i].clone(),
                out[1].0[i].clone(),
                out[2].0[i].clone(),
            ];
            let bits = unpack(&pack(&recon_bits(&parts)), 256);
            for (x, &b) in bits.iter().enumerate() {
                got[x] |= (b as u8) << i;
            }
        }
        for x in 0..=255u8 {
            assert_eq!(got[x as usize], sbox_ref(x), "S({x:#04x})");
        }
        for o in &out {
            assert_eq!(o.1, SBOX_AND_DEPTH as u64);
            // One frame to the previous party per AND layer.
            assert_eq!(
                o.2,
                (SBOX_ANDS * 256 / 8 + SBOX_AND_DEPTH * FRAME_HEADER) as u64
            );
        }
    }
}
