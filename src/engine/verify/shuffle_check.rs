//! The shuffle in malicious mode: tagged rows, checked before anything is opened (in the
//! spirit of Asharov et al., CCS 2022). It holds the tagging, the tag check and the coin
//! that draws the check's weights; the three reshuffling passes are `engine::shuffle`'s.
//!
//! # Why the passes need a check
//!
//! In each pass one party of the permuting pair sends a masked vector that only it can
//! compute (π_j applied to the sum of its two components, minus a mask). Nobody else can
//! recompute it, so a cheater can add any δ to any output, or apply another permutation to
//! its part; the honest parties' components stay consistent with each other, so checked
//! openings do not see it. Every such deviation is an additive error on the output
//! sharing, chosen from the cheater's view (its own components and permutation), which is
//! independent of the secrets below.
//!
//! # Construction (values in Z_2^k; tags in W = Z_2^K, K ≥ k + 63)
//!
//! k is the number of low bits of the values that matter: 64 for Z_2^64 columns (W =
//! Z_2^128), 128 for Z_2^128 columns (W = Z_2^192), or fewer when the caller says so
//! (`Session::shuffle_low`: keys compared on k ≤ 65 bits take W = Z_2^128 and on k ≤ 73
//! bits W = Z_2^136, even in a Z_2^128 column, whose bits above k are then not guaranteed).
//! W is always the narrowest of Z_2^128, Z_2^136 and Z_2^192 with K ≥ k + 63.
//!
//! 1. Widen: every component is read as an integer in W. Both holders of a component widen
//!    it alike, so x' = Σ components (in W) is a sharing of a W value with x' ≡ x mod 2^k.
//! 2. Tag: with α_c a random shared key per column (components from the pairwise streams,
//!    unknown to every single party), each row gets t' = Σ_c α_c x'_c: one dot product per
//!    row. It is not proven: see below why the tag check catches a wrong tag too.
//! 3. Shuffle the widened columns and the tag column together (the three passes, in W).
//! 4. Coin: a random shared W value is opened (checked opening, no proof needed: it depends
//!    on no data). It seeds weights ρ_j that no party knew while the passes ran.
//! 5. Check: E = Σ_j ρ_j u'_j − Σ_c α_c (Σ_j ρ_j y'_{c,j}), where (y', u') are the shuffled
//!    rows: local sums and one dot product over the columns (not proven either). E is
//!    opened with the copy check; E ≠ 0 aborts.
//! 6. The outputs are the shuffled components narrowed back to Z_2^k.
//!
//! # Soundness
//!
//! Honest runs give E = 0 exactly: the passes are exact in W. Let a cheater add
//! (δ_{c,j}, Δ_j) to row j's values and tag, with δ_{c,j} ≢ 0 mod 2^k for some (c, j) (a
//! change of an output value; changes by multiples of 2^k vanish when narrowed). Then
//! E = Σ_j ρ_j e_j with e_j = Δ_j − Σ_c α_c δ_{c,j}. Write δ_{c,j} = 2^v·w, w odd, v < k.
//! The cheater's view is independent of α_c (it holds two of its three components), so
//! α_c·δ_{c,j} mod 2^K is uniform over the multiples of 2^v and e_j has 2-adic valuation
//! ≥ t with probability at most 2^-(t−v). The weights ρ are drawn after every pass, and
//! Pr[ρ_j e_j ≡ 0 mod 2^K] = 2^-(K − val(e_j)) for uniform ρ_j (other rows' terms fixed).
//! Summing over t = val(e_j) from v to K: Pr[E = 0] ≤ Σ_t 2^-(t−v)·2^-(K−t) =
//! (K − v + 1)·2^-(K−v), at most 66·2^-65 for K = k + 64 and 65·2^-64 < 2^-57.9 for
//! K = k + 63 (v ≤ k − 1). The width above k buys the bound, which is why K is k + 63 or
//! k + 64 and not 2k: 2k would give 2^-121 for k = 128, far below the rest of the
//! protocol, for a third more bytes in every pass. A wrong copy in the coin's or E's opening is caught by the opening check.
//!
//! Why the tag products and E's gate need no proof: a deviating message in a product round
//! adds to that product's output a term the cheater chooses from its view, and changes
//! nothing else (the other outputs are the honest parties' own sums). A term Δ'_j on tag j
//! joins Δ_j above (the bound holds for any Δ chosen without knowing α; the cheater's view
//! holds two of α's three components, which are independent of α). A term Δ_E on E must
//! cancel −Σ_j ρ_j(Δ_j − Σ_c α_c δ_{c,j}); with D_c = Σ_j ρ_j δ_{c,j} that means guessing
//! Σ_c α_c D_c mod 2^K, and Pr[val(D_c) ≥ t] ≤ 2^-(t−v) over ρ gives the same bound. What an unproven product cannot do is change the values: they never pass
//! through one. So the check costs no ring-product proof, which in Z_2^192 would dominate
//! the shuffle's time.
//!
//! # Privacy
//!
//! The tags and E's gate are products (fresh sharings); the coin is independent of the
//! data; E is 0 in an honest run, and with a cheater it is a function of α, ρ and the
//! cheater's own errors (which it chose without knowing the rows), so opening it reveals
//! nothing about the rows. Aborts depend on E = 0 alone, never on the values.
//!
//! # Cost
//!
//! Per row and party: one W element for the tag, and the passes move (columns + 1) W
//! elements instead of columns Z_2^k elements: for one column 1 + 2·2 W elements against
//! 2 ring elements, i.e. 5× the semi-honest shuffle's bytes for Z_2^64 columns (W = 16
//! bytes), 3.75× for Z_2^128 columns (W = 24 bytes), 2.66× for Z_2^128 columns that
//! matter on 66–73 bits (W = 17 bytes) and 2.5× on at most 65 bits (W = 16 bytes).
//! Rounds: 1 (tags) + 3
//! (passes) + 1 (coin) + 1 (E's gate) + 1 (E's opening), and no proof.

use crate::engine::prf::Prg;
use rand::SeedableRng;

use crate::engine::error::{EngineError, Result};
use crate::engine::ring::{Ring, Z128};
use crate::engine::session::Session;
use crate::engine::share::Share;
use crate::engine::tag_ring::{Z136, Z192};
use crate::engine::transport::Transport;

use super::ring_proof::{Gate, GateSource};

/// The tag products of step 2: gate j is Σ_c α_c x'_{c,j} over the column-major widened
/// columns `flat` (c columns of `n` rows).
struct TagRows<'a, W> {
    alpha: &'a [Share<W>],
    flat: &'a [Share<W>],
    n: usize,
}

impl<W: Ring> GateSource<W> for TagRows<'_, W> {
    fn len(&self) -> usize {
        self.n
    }
    fn local(&self, j: usize) -> W {
        self.alpha
            .iter()
            .enumerate()
            .fold(W::zero(), |acc, (c, a)| {
                acc + crate::engine::arith::local_cross(a, &self.flat[c * self.n + j])
            })
    }
    fn record(&self, j: usize, pairs: &mut Vec<[W; 4]>) -> (usize, W) {
        for (c, a) in self.alpha.iter().enumerate() {
            let y = self.flat[c * self.n + j];
            pairs.push([a.a, a.b, y.a, y.b]);
        }
        (self.alpha.len(), W::zero())
    }
}

/// Reads a Z_2^k element as an integer in W (k ≤ 128 < W's width).
fn widen<R: Ring, W: Ring>(x: R) -> W {
    W::from_u128(x.to_u128())
}

/// The low k bits of a W element, as an element of R.
fn narrow<W: Ring, R: Ring>(x: W) -> R {
    R::from_u128(x.to_u128())
}

fn widen_share<R: Ring, W: Ring>(s: &Share<R>) -> Share<W> {
    Share {
        a: widen(s.a),
        b: widen(s.b),
    }
}

impl<T: Transport> Session<T> {
    /// The malicious-mode shuffle of `engine::shuffle`, for rings of 64 or 128 bits whose
    /// values matter mod 2^bits: tags in the narrowest of Z_2^128 (bits ≤ 65), Z_2^136
    /// (bits ≤ 73) and Z_2^192 with K − k ≥ 63. Other rings are refused.
    pub(crate) async fn tagged_shuffle<R: Ring>(
        &mut self,
        columns: &[Vec<Share<R>>],
        n: usize,
        bits: u32,
    ) -> Result<Vec<Vec<Share<R>>>> {
        match R::BITS {
            64 => self.tagged_shuffle_in::<R, Z128>(columns, n).await,
            128 if bits <= 65 => self.tagged_shuffle_in::<R, Z128>(columns, n).await,
            128 if bits <= 73 => self.tagged_shuffle_in::<R, Z136>(columns, n).await,
            128 => self.tagged_shuffle_in::<R, Z192>(columns, n).await,
            _ => Err(super::unproven("the shuffle of this ring")),
        }
    }

    async fn tagged_shuffle_in<R: Ring, W: Ring>(
        &mut self,
        columns: &[Vec<Share<R>>],
        n: usize,
    ) -> Result<Vec<Vec<Share<R>>>> {
        let c = columns.len();
        if n == 0 || c == 0 {
            return Ok(vec![Vec::new(); c]);
        }
        // 1–2. Widen column by column (column-major, as the passes take them) and tag each
        // row with one dot product.
        let alpha: Vec<Share<W>> = self.correlated().random_shares(c);
        let mut flat: Vec<Share<W>> = Vec::with_capacity((c + 1) * n);
        for col in columns {
            flat.extend(col.iter().map(widen_share::<R, W>));
        }
        let tags = self
            .products_of_source_checked_by_caller(&TagRows {
                alpha: &alpha,
                flat: &flat,
                n,
            })
            .await?;
        // 3. The passes over the widened columns and the tag column.
        flat.extend(tags);
        for j in 0..3 {
            flat = self.shuffle_pass(j, flat, n).await?;
        }
        // 4. Weights from a coin opened after every pass.
        let mut rng = Prg::from_seed(self.coin().await?);
        let rho: Vec<W> = (0..n).map(|_| W::random(&mut rng)).collect();
        // 5. E = Σ ρ_j u'_j − Σ_c α_c z_c with z_c = Σ_j ρ_j y'_{c,j}.
        let weigh = |col: &[Share<W>]| {
            col.iter()
                .zip(&rho)
                .fold(Share::<W>::zero(), |acc, (s, r)| acc.add(s.mul_public(*r)))
        };
        let z: Vec<Share<W>> = flat.chunks_exact(n).take(c).map(weigh).collect();
        let s = weigh(&flat[c * n..]);
        let e = self
            .products_checked_by_caller(&[Gate {
                x: &alpha,
                y: &z,
                linear: s.neg(),
            }])
            .await?;
        let opened = self.open(&e).await?;
        if opened.iter().any(|v| *v != W::zero()) {
            return Err(EngineError::verification(
                "shuffle: a shuffled row does not match its tag",
                self.id(),
            ));
        }
        // 6. Narrow the shuffled columns back.
        Ok(flat
            .chunks_exact(n)
            .take(c)
            .map(|col| {
                col.iter()
                    .map(|s| Share {
                        a: narrow(s.a),
                        b: narrow(s.b),
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Security;
    use crate::engine::convert::tests::share_all;
    use crate::engine::error::EngineError;
    use crate::engine::local::{local_transports, run3_secure, Cheater, Tamper};
    use crate::engine::ring::{Ring, Z128, Z64};
    use crate::engine::transport::Peer;

    fn ok<V>(out: [crate::engine::error::Result<V>; 3]) -> [V; 3] {
        out.map(|r| r.expect("honest run"))
    }

    /// One shuffle of the column `sx` (columns mattering on `bits` bits), opened, in which
    /// the sender of pass `pass` tampers with its message to its partner as `how` says.
    /// Rounds: 0 is the session setup; in malicious mode 1 holds the tags, so pass j is
    /// round 2 + j; semi-honest passes are rounds 1 + j. The sender of pass j towards its
    /// partner is party j (to Next).
    async fn tampered<R: Ring>(
        sx: &[Vec<crate::engine::Share<R>>; 3],
        seed: u64,
        security: Security,
        pass: usize,
        how: Tamper,
        bits: u32,
    ) -> [crate::engine::error::Result<Vec<R>>; 3] {
        let at = pass
            + if security == Security::Malicious {
                2
            } else {
                1
            };
        let ts = local_transports().map(|t| {
            let round = if t.id() == pass { at } else { usize::MAX };
            Cheater::new(t, round, Peer::Next, how)
        });
        let sx = sx.clone();
        run3_secure(seed, security, ts, move |mut s| {
            let col = sx[s.id()].clone();
            async move {
                let sh = s.shuffle_low(&[col], bits).await?;
                s.open(&sh[0]).await
            }
        })
        .await
    }

    /// Rows survive the shuffle intact, the order changes, and the check's cost is what the
    /// module doc says.
    async fn rows_intact<R: Ring + Ord>(n: usize, seed: u64) {
        let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(seed);
        let x: Vec<R> = (0..n).map(|_| R::random(&mut rng)).collect();
        let y: Vec<R> = (0..n).map(|_| R::random(&mut rng)).collect();
        let (sx, sy) = (share_all(&x, seed), share_all(&y, seed + 1));
        let out = run3_secure(
            seed,
            Security::Malicious,
            local_transports(),
            move |mut s| {
                let cols = [sx[s.id()].clone(), sy[s.id()].clone()];
                async move {
                    let before = s.counters().rounds;
                    let sh = s.shuffle(&cols).await?;
                    let rounds = s.counters().rounds - before;
                    let (a, b) = (s.open(&sh[0]).await?, s.open(&sh[1]).await?);
                    Ok((a, b, rounds, s.proven().product_gates))
                }
            },
        )
        .await;
        let mut want: Vec<(R, R)> = x.iter().copied().zip(y.iter().copied()).collect();
        let order_in: Vec<(R, R)> = want.clone();
        want.sort_unstable();
        for (a, b, rounds, gates) in ok(out) {
            let got_order: Vec<(R, R)> = a.into_iter().zip(b).collect();
            if n >= 20 {
                assert_ne!(got_order, order_in, "a shuffle of {n} rows moves some");
            }
            let mut got = got_order;
            got.sort_unstable();
            assert_eq!(got, want, "rows intact, {} bits", R::BITS);
            // Tags, three passes, coin, E's gate; then the proof and E's opening.
            assert_eq!(rounds, 7, "{rounds} rounds");
            assert_eq!(gates, 0, "the tag check needs no ring-product proof");
        }
    }

    #[tokio::test]
    async fn shuffled_rows_are_intact_in_both_rings() {
        for n in [1, 2, 64, 300] {
            rows_intact::<Z64>(n, 10 + n as u64).await;
            rows_intact::<Z128>(n, 20 + n as u64).await;
        }
    }

    /// The hardest error for the tag ring's width: ±2^127 on a Z_2^128 value (2-adic
    /// valuation k − 1, the most a cheater can hide below 2^k), by flipping the top bit of
    /// a row's value in pass 0 or 1. Every honest party fails the tag check; the same flip
    /// in semi-honest mode changes that row unseen.
    #[tokio::test]
    async fn a_flip_of_the_top_bit_of_a_z128_value_fails_the_tag_check() {
        let x: Vec<Z128> = (0..30).map(|i| Z128(7 + i)).collect();
        let sx = share_all(&x, 11);
        for security in [Security::Malicious, Security::SemiHonest] {
            for pass in 0..2usize {
                // Bit 127 of the message is the top bit of row 0's value in both encodings
                // (16 bytes per element, or 24 with the value in the low 16).
                let out = tampered(&sx, 5, security, pass, Tamper::Flip(127), 128).await;
                for (id, r) in out.iter().enumerate().filter(|(id, _)| *id != pass) {
                    match (security, r) {
                        (Security::Malicious, Err(EngineError::Verification { check, .. })) => {
                            assert_eq!(*check, "shuffle: a shuffled row does not match its tag");
                        }
                        (Security::Malicious, other) => {
                            panic!("pass {pass}: party {id} must abort, got {other:?}")
                        }
                        (Security::SemiHonest, r) => {
                            let mut got = r.as_ref().expect("semi-honest control").clone();
                            got.sort_unstable();
                            assert_ne!(got, x, "the control: the flip changes a row unseen");
                        }
                    }
                }
            }
        }
    }

    /// Z_2^128 keys that matter on fewer bits: the tags drop to Z_2^128 for 65 bits and
    /// to Z_2^136 for 73 (the passes send 2/3 and 17/24 of the full-width bytes, so under
    /// 3/4 with the constant rounds), while 74 bits keep Z_2^192; rows stay intact at every
    /// width, and a flip of the top bit that matters (±2^(k−1), valuation k − 1: bit 64,
    /// bit 72) still fails the tag check.
    #[tokio::test]
    async fn narrow_keys_are_tagged_in_narrow_rings_and_checked_at_their_top_bit() {
        let x: Vec<Z128> = (0..40)
            .map(|i| Z128((i * 7919) % 1000 + (i << 50)))
            .collect();
        let sx = share_all(&x, 12);
        // Honest: every width keeps the rows; the narrow ones send fewer bytes.
        let cols = sx.clone();
        let out = run3_secure(6, Security::Malicious, local_transports(), move |mut s| {
            let col = cols[s.id()].clone();
            async move {
                let mut rows = Vec::new();
                let mut bytes = Vec::new();
                for bits in [128, 74, 73, 65] {
                    let c0 = s.counters().bytes_sent;
                    let sh = s.shuffle_low(std::slice::from_ref(&col), bits).await?;
                    bytes.push(s.counters().bytes_sent - c0);
                    rows.push(s.open(&sh[0]).await?);
                }
                Ok((rows, bytes))
            }
        })
        .await;
        let mut want = x.clone();
        want.sort_unstable();
        for (rows, bytes) in ok(out) {
            for mut r in rows {
                r.sort_unstable();
                assert_eq!(r, want);
            }
            let [full, b74, b73, b65] = bytes[..] else {
                panic!("four shuffles")
            };
            assert_eq!(b74, full, "74 bits need Z_2^192");
            assert!(4 * b73 < 3 * full, "Z_2^136: {b73} vs {full} bytes");
            assert!(b65 < b73, "Z_2^128 below Z_2^136: {b65} vs {b73} bytes");
        }
        // A pass's sender flips the top bit that matters of row 0's value (the value's low
        // 16 bytes come first in both encodings).
        for (bits, flip) in [(65, 64), (73, 72)] {
            for pass in 0..2usize {
                let out =
                    tampered(&sx, 7, Security::Malicious, pass, Tamper::Flip(flip), bits).await;
                for (id, r) in out.iter().enumerate().filter(|(id, _)| *id != pass) {
                    match r {
                        Err(EngineError::Verification { check, .. }) => {
                            assert_eq!(*check, "shuffle: a shuffled row does not match its tag");
                        }
                        other => {
                            panic!("{bits} bits, pass {pass}: party {id} must abort, got {other:?}")
                        }
                    }
                }
            }
        }
    }

    /// A δ added by the sender of a pass fails the tag check at every honest party; with
    /// the same δ a semi-honest shuffle silently changes a row.
    #[tokio::test]
    async fn a_delta_in_a_pass_fails_the_tag_check() {
        let x: Vec<Z64> = (0..40).map(|i| Z64(1000 + i)).collect();
        let sx = share_all(&x, 9);
        let mut tag_checks = 0;
        for security in [Security::Malicious, Security::SemiHonest] {
            for pass in 0..3usize {
                let out = tampered(&sx, 3, security, pass, Tamper::Add(5, 1), 64).await;
                for (id, r) in out.iter().enumerate() {
                    if id == pass {
                        continue;
                    }
                    match (security, r) {
                        (Security::Malicious, Err(EngineError::Verification { check, by, .. })) => {
                            // In pass 2 the receiver's copy of the new component differs from
                            // the sender's, which E's checked opening may see first.
                            let tag = *check == "shuffle: a shuffled row does not match its tag";
                            let copies = pass == 2 && check.starts_with("opening:");
                            assert!(tag || copies, "pass {pass} party {id}: {check}");
                            tag_checks += tag as usize;
                            assert_eq!(*by, id);
                        }
                        (Security::Malicious, other) => {
                            panic!("pass {pass}: party {id} must abort on the tag check, got {other:?}")
                        }
                        (Security::SemiHonest, Ok(v)) => {
                            let mut got = v.clone();
                            got.sort_unstable();
                            assert_ne!(got, x, "the control: a δ changes a row unseen");
                        }
                        (Security::SemiHonest, Err(e)) => panic!("semi-honest control: {e}"),
                    }
                }
            }
        }
        assert!(
            tag_checks >= 4,
            "passes 0 and 1 fail the tag check ({tag_checks})"
        );
    }
}
