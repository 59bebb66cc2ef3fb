//! GF(2^128) for GHASH: the GCM bit order and the polynomial x^128 + x^7 + x^2 + x + 1,
//! in plaintext ([`gf128_mul`], [`ghash`]) and on shared blocks
//! ([`Session::gf128_mul_shared`], [`gf128_mul_public`]).
//!
//! GCM bit order: a block is the integer `u128::from_be_bytes(bytes)`, and coefficient c of
//! the polynomial (the coefficient of x^c) is bit 127 − c of that integer, i.e. bit 7 − c mod 8
//! of byte ⌊c/8⌋. In the planes of a shared block (plane 8k + i = bit i of byte k) the
//! coefficient of x^c is therefore plane c ⊕ 7.
//!
//! Note for the caller (the TLS tag check): once the TLS session is over, the GHASH key
//! H = E_K(0^128) and the tag masks E_K(J0) of the records protect nothing secret (the
//! plaintext confidentiality rests on the keystream blocks E_K(J0 + i), i ≥ 1, which stay
//! shared). So the parties compute H and every E_K(J0) with
//! [`Session::aes128_encrypt_public`](super::super::session::Session::aes128_encrypt_public)
//! in the same pass as the keystream and OPEN them with
//! [`Session::open_blocks`](super::super::session::Session::open_blocks); the tag check is
//! then public arithmetic: `ghash(h, aad, ciphertext) ^ ek_j0 == tag`, over the public
//! ciphertext, with no shared GF(2^128) multiplication at all. The shared multiplication
//! below is for uses where H must stay secret.

use super::super::binary::{
    clear_tail, decode_bits, encode_bits_into, words_for, BitPlanes, BitShares,
};
use super::super::error::{EngineError, Result};
use super::super::session::Session;
use super::super::transport::{Expect, Outgoing, Peer, Transport};
use super::blocks::{check_blocks, BLOCK_BITS};

/// The reduction constant of GCM: x^128 = x^7 + x^2 + x + 1, in GCM bit order.
const R: u128 = 0xe1 << 120;

/// The plane holding the coefficient of x^c (and vice versa).
fn plane_of(c: usize) -> usize {
    c ^ 7
}

/// x · y in GF(2^128), GCM bit order (NIST SP 800-38D, Algorithm 1).
pub fn gf128_mul(x: u128, y: u128) -> u128 {
    let mut z = 0u128;
    let mut v = y;
    for i in 0..128 {
        if (x >> (127 - i)) & 1 == 1 {
            z ^= v;
        }
        v = if v & 1 == 1 { (v >> 1) ^ R } else { v >> 1 };
    }
    z
}

/// GHASH_H(A, C): over A ‖ 0-pad ‖ C ‖ 0-pad ‖ len64(A) ‖ len64(C) (lengths in bits).
pub fn ghash(h: u128, aad: &[u8], ct: &[u8]) -> u128 {
    let mut y = 0u128;
    for data in [aad, ct] {
        for chunk in data.chunks(16) {
            let mut block = [0u8; 16];
            block[..chunk.len()].copy_from_slice(chunk);
            y = gf128_mul(y ^ u128::from_be_bytes(block), h);
        }
    }
    let lens = ((aad.len() as u128 * 8) << 64) | (ct.len() as u128 * 8);
    gf128_mul(y ^ lens, h)
}

/// The shared blocks x · c for a public constant c (GCM integer), B products at once: a
/// linear map, so local (XORs only).
pub fn gf128_mul_public(x: &BitPlanes, c: u128) -> Result<BitPlanes> {
    check_blocks("gf128_mul_public", x)?;
    let mut planes = vec![BitShares::zeros(x.len); BLOCK_BITS];
    for i in 0..BLOCK_BITS {
        // Column i of the map: c · x^i.
        let col = gf128_mul(c, 1u128 << (127 - i));
        let xi = &x.planes[plane_of(i)];
        for (k, out) in (0..BLOCK_BITS).map(|k| (k, plane_of(k))) {
            if (col >> (127 - k)) & 1 == 1 {
                planes[out].xor_assign_same(xi);
            }
        }
    }
    Ok(BitPlanes { planes, len: x.len })
}

impl<T: Transport> Session<T> {
    /// The shared blocks x · y in GF(2^128), B products at once (block β of x times block β of y). Schoolbook:
    /// the 128 · 128 = 16,384 partial products of each product are ANDs, but their local
    /// cross terms are summed into the 255 coefficients and reduced before the one resharing
    /// (the dot-product trick), so a product costs ONE round and 128 bits (16 bytes) sent per
    /// party, like 128 AND gates.
    pub async fn gf128_mul_shared(&mut self, x: &BitPlanes, y: &BitPlanes) -> Result<BitPlanes> {
        self.refuse_unproven("a shared GF(2^128) product")?;
        check_blocks("gf128_mul_shared", x)?;
        check_blocks("gf128_mul_shared", y)?;
        if x.len != y.len {
            return Err(EngineError::Invalid(format!(
                "gf128_mul_shared: batches of {} and {} blocks",
                x.len, y.len
            )));
        }
        let (len, words) = (x.len, words_for(x.len));
        // acc[c]: this party's 3-out-of-3 XOR share of the coefficient of x^c.
        let mut acc = vec![vec![0u64; words]; 2 * BLOCK_BITS - 1];
        for i in 0..BLOCK_BITS {
            let xi = &x.planes[plane_of(i)];
            for j in 0..BLOCK_BITS {
                let yj = &y.planes[plane_of(j)];
                let t = &mut acc[i + j];
                let (xs, ys) = (xi.a.iter().zip(&xi.b), yj.a.iter().zip(&yj.b));
                for (t, ((xa, xb), (ya, yb))) in t.iter_mut().zip(xs.zip(ys)) {
                    *t ^= (xa & (ya ^ yb)) ^ (xb & ya);
                }
            }
        }
        // Reduce: x^c = x^(c−128) · (1 + x + x^2 + x^7), from the top down.
        for c in (BLOCK_BITS..2 * BLOCK_BITS - 1).rev() {
            let t = std::mem::take(&mut acc[c]);
            for d in [0, 1, 2, 7] {
                let dst = &mut acc[c - BLOCK_BITS + d];
                dst.iter_mut().zip(&t).for_each(|(p, q)| *p ^= q);
            }
        }
        acc.truncate(BLOCK_BITS);
        // Reshare as in `and_many`: mask with a zero sharing, send to the previous party.
        let zero = self.correlated().zero_bits(BLOCK_BITS * words);
        let mut mine = Vec::with_capacity(BLOCK_BITS);
        for (c, mut t) in acc.into_iter().enumerate() {
            t.iter_mut()
                .zip(&zero[c * words..(c + 1) * words])
                .for_each(|(p, q)| *p ^= q);
            clear_tail(&mut t, len);
            mine.push(BitShares {
                a: t,
                b: vec![0; words],
                len,
            });
        }
        let all = BitShares::concat(&mine.iter().collect::<Vec<_>>());
        let mut msg = Vec::with_capacity(all.len.div_ceil(8));
        encode_bits_into(&mut msg, &all.a, all.len);
        let out = Outgoing {
            next: None,
            prev: Some(msg),
        };
        let expect = Expect {
            next: true,
            prev: false,
        };
        let inc = self.exchange(out, expect).await?;
        let theirs = decode_bits(inc.next, Peer::Next, &[all.len])?
            .pop()
            .unwrap_or_default();
        let theirs = BitShares {
            a: theirs,
            b: vec![0; all.a.len()],
            len: all.len,
        };
        let mut planes = vec![BitShares::default(); BLOCK_BITS];
        for (c, m) in mine.into_iter().enumerate() {
            planes[plane_of(c)] = BitShares {
                a: m.a,
                b: theirs.slice(c * len, len)?.a,
                len,
            };
        }
        Ok(BitPlanes { planes, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::circuits::aes::tests::{hex16, party_keys, recon_blocks, ref_encrypt};
    use crate::engine::circuits::blocks::tests::{rand_blocks, share_blocks};
    use crate::engine::circuits::blocks::{blocks_from_public, xor_public_blocks};
    use crate::engine::local::run3;
    use crate::engine::transport::framed;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|k| u8::from_str_radix(&s[2 * k..2 * k + 2], 16).unwrap())
            .collect()
    }

    fn be(s: &str) -> u128 {
        u128::from_be_bytes(hex16(s))
    }

    /// The counter block J0 + i (inc32 on the last 4 bytes) of a 96-bit IV.
    fn counter(iv: &[u8], i: u32) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..12].copy_from_slice(iv);
        b[12..].copy_from_slice(&1u32.wrapping_add(i).to_be_bytes());
        b
    }

    /// A GCM test case of the GCM specification (McGrew–Viega), 96-bit IV.
    struct Case {
        key: &'static str,
        iv: &'static str,
        aad: &'static str,
        pt: &'static str,
        ct: &'static str,
        tag: &'static str,
    }

    const P4: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                      1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    const C4: &str = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
                      21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091";

    fn cases() -> Vec<Case> {
        vec![
            // Test case 2.
            Case {
                key: "00000000000000000000000000000000",
                iv: "000000000000000000000000",
                aad: "",
                pt: "00000000000000000000000000000000",
                ct: "0388dace60b6a392f328c2b971b2fe78",
                tag: "ab6e47d42cec13bdf53a67b21257bddf",
            },
            // Test case 3.
            Case {
                key: "feffe9928665731c6d6a8f9467308308",
                iv: "cafebabefacedbaddecaf888",
                aad: "",
                pt: Box::leak(format!("{P4}1aafd255").into_boxed_str()),
                ct: Box::leak(format!("{C4}473f5985").into_boxed_str()),
                tag: "4d5c2af327cd64a62cf35abd2ba6fab4",
            },
            // Test case 4 (AAD, partial last block).
            Case {
                key: "feffe9928665731c6d6a8f9467308308",
                iv: "cafebabefacedbaddecaf888",
                aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
                pt: P4,
                ct: C4,
                tag: "5bc94fbc3221a5db94fae95ae7121a47",
            },
        ]
    }

    #[test]
    fn gf128_mul_basics() {
        let one = 1u128 << 127;
        let xs = rand_blocks(1, 20);
        for w in xs.windows(3) {
            let (a, b, c) = (
                u128::from_be_bytes(w[0]),
                u128::from_be_bytes(w[1]),
                u128::from_be_bytes(w[2]),
            );
            assert_eq!(gf128_mul(a, one), a);
            assert_eq!(gf128_mul(a, b), gf128_mul(b, a));
            assert_eq!(gf128_mul(a, b ^ c), gf128_mul(a, b) ^ gf128_mul(a, c));
            assert_eq!(gf128_mul(gf128_mul(a, b), c), gf128_mul(a, gf128_mul(b, c)));
        }
        // x^127 · x = x^128 = 1 + x + x^2 + x^7.
        assert_eq!(gf128_mul(1, one >> 1), R);
    }

    #[test]
    fn ghash_matches_gcm_test_vectors() {
        // Test case 2 with the published H and E_K(J0).
        let h = be("66e94bd4ef8a2c3b884cfa59ca342b2e");
        let ek_j0 = be("58e2fccefa7e3061367f1d57a4e7455a");
        let c = hex("0388dace60b6a392f328c2b971b2fe78");
        assert_eq!(
            ghash(h, &[], &c) ^ ek_j0,
            be("ab6e47d42cec13bdf53a67b21257bddf")
        );
        assert_eq!(
            u128::from_be_bytes(ref_encrypt(
                hex16("feffe9928665731c6d6a8f9467308308"),
                [0; 16]
            )),
            be("b83b533708bf535d0aa6e52980d53b78")
        );
        // Whole GCM with the reference AES.
        for case in cases() {
            let key = hex16(case.key);
            let iv = hex(case.iv);
            let h = u128::from_be_bytes(ref_encrypt(key, [0; 16]));
            let ct = hex(case.ct);
            let tag = ghash(h, &hex(case.aad), &ct)
                ^ u128::from_be_bytes(ref_encrypt(key, counter(&iv, 0)));
            assert_eq!(tag, be(case.tag));
            let pt: Vec<u8> = ct
                .iter()
                .enumerate()
                .map(|(n, c)| c ^ ref_encrypt(key, counter(&iv, 1 + n as u32 / 16))[n % 16])
                .collect();
            assert_eq!(pt, hex(case.pt));
        }
    }

    /// GCM decryption and tag check inside the MPC, as the TLS oracle does it: one AES pass
    /// over H, J0 and the counter blocks under the shared key; H and E_K(J0) are opened and
    /// the tag is checked in public; the plaintext stays shared (opened here to test).
    #[tokio::test]
    async fn gcm_decrypt_in_mpc() {
        for (n, case) in cases().into_iter().enumerate() {
            let key = hex16(case.key);
            let iv = hex(case.iv);
            let ct = hex(case.ct);
            let nblocks = ct.len().div_ceil(16);
            let mut inputs = vec![[0u8; 16], counter(&iv, 0)];
            inputs.extend((1..=nblocks as u32).map(|i| counter(&iv, i)));
            let ct2 = ct.clone();
            let out = run3(20 + n as u64, move |mut s| {
                let (inputs, ct) = (inputs.clone(), ct2.clone());
                async move {
                    let id = s.id();
                    let ks = party_keys(id, &[key], 30);
                    let rk = s.aes128_key_schedule(&ks).await?;
                    let e = s
                        .aes128_encrypt_public(&rk, &vec![0; inputs.len()], &inputs)
                        .await?;
                    let masks = BitPlanes {
                        planes: e
                            .planes
                            .iter()
                            .map(|p| p.slice(0, 2))
                            .collect::<Result<_>>()?,
                        len: 2,
                    };
                    let opened = s.open_blocks(&masks).await?;
                    let stream = BitPlanes {
                        planes: e
                            .planes
                            .iter()
                            .map(|p| p.slice(2, nblocks))
                            .collect::<Result<_>>()?,
                        len: nblocks,
                    };
                    let mut cblocks: Vec<[u8; 16]> = vec![[0; 16]; nblocks];
                    for (k, c) in ct.iter().enumerate() {
                        cblocks[k / 16][k % 16] = *c;
                    }
                    let pt = xor_public_blocks(id, &stream, &cblocks)?;
                    Ok((opened, pt))
                }
            })
            .await
            .map(|r| r.unwrap());
            let h = u128::from_be_bytes(out[0].0[0]);
            let ek_j0 = u128::from_be_bytes(out[0].0[1]);
            assert_eq!(
                ghash(h, &hex(case.aad), &ct) ^ ek_j0,
                be(case.tag),
                "case {n}"
            );
            let pt: Vec<u8> = recon_blocks([&out[0].1, &out[1].1, &out[2].1]).concat();
            assert_eq!(pt[..ct.len()].to_vec(), hex(case.pt), "case {n}");
        }
    }

    #[tokio::test]
    async fn mul_shared_and_public_match_plaintext() {
        for (n, b) in [1usize, 5, 70].into_iter().enumerate() {
            let xs = rand_blocks(100 + n as u64, b);
            let ys = rand_blocks(200 + n as u64, b);
            let c = u128::from_be_bytes(rand_blocks(300 + n as u64, 1)[0]);
            let (x2, y2) = (xs.clone(), ys.clone());
            let out = run3(n as u64, move |mut s| {
                let (xs, ys) = (x2.clone(), y2.clone());
                async move {
                    let id = s.id();
                    let x = share_blocks(id, &xs, 1);
                    let y = share_blocks(id, &ys, 2);
                    let before = s.counters();
                    let z = s.gf128_mul_shared(&x, &y).await?;
                    let after = s.counters();
                    let zc = gf128_mul_public(&x, c)?;
                    let bad = s
                        .gf128_mul_shared(&x, &blocks_from_public(id, &[[0; 16]; 2]))
                        .await;
                    Ok((
                        z,
                        zc,
                        after.rounds - before.rounds,
                        after.bytes_sent - before.bytes_sent,
                        bad.is_err(),
                    ))
                }
            })
            .await
            .map(|r| r.unwrap());
            let got = recon_blocks([&out[0].0, &out[1].0, &out[2].0]);
            let got_c = recon_blocks([&out[0].1, &out[1].1, &out[2].1]);
            for k in 0..b {
                let (x, y) = (u128::from_be_bytes(xs[k]), u128::from_be_bytes(ys[k]));
                assert_eq!(
                    u128::from_be_bytes(got[k]),
                    gf128_mul(x, y),
                    "B = {b}, product {k}"
                );
                assert_eq!(u128::from_be_bytes(got_c[k]), gf128_mul(x, c));
            }
            for o in &out {
                assert_eq!(o.2, 1);
                assert_eq!(o.3, framed(16 * b));
                assert!(o.4);
            }
            eprintln!(
                "gf128_mul_shared, B = {b}: 1 round, {} bytes sent per party",
                out[0].3
            );
        }
    }
}
