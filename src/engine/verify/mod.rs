//! Security with abort against one malicious party: the verification layer of a session.
//!
//! In [`Security::Malicious`] mode a session records every AND gate it computes and proves,
//! before anything is opened, that each party's message was computed honestly
//! ([`and_proof`]: a distributed zero-knowledge proof over the whole batch, sublinear in
//! its size). Openings send each missing component from one holder and its hash from the
//! other ([`opening`]), so a party that sends a wrong copy is caught in the same round.
//! Protocol code does not change: `Session::and_many` records, `Session::open*` verifies
//! first. This module holds the mode, the record and the per-proof randomness; the proof
//! and the opening check live in their own files. It holds no statistic and no networking.
//!
//! Randomness. Seed k_j is held by parties j and j − 1. Besides the streams of `prf`,
//! each seed drives three more, each drawn by exactly its two holders in lock step:
//! stream 2 (the masks of prover j's proof: its holders are prover j and its left
//! verifier j − 1), stream 3 (the challenges of prover j + 1's proof, which j + 1 does not
//! hold), stream 4 (the masks of prover j − 1's proof held with its right verifier j).

pub mod and_levels;
pub mod and_proof;
pub mod deferred;
pub mod galois;
pub mod gf64;
pub mod gf64_wide;
pub mod gfni;
pub mod opening;
pub mod pool;
pub mod recursion;
pub mod ring_proof;
pub mod shuffle_check;

use crate::engine::prf::Prg;
use rand::SeedableRng;

use super::binary::BitShares;
use super::error::Result;
use super::prf::Seed;
use super::ring::{Z128, Z64};
use super::session::Session;
use super::transport::Transport;
use super::wide::Z256;
use ring_proof::RingPending;

/// Runs a long local computation of a proof. On a multi-threaded tokio runtime it tells
/// the runtime that this thread blocks, so other tasks (the QUIC connections' drivers and
/// keep-alives among them) move to another worker instead of starving until the idle
/// timeout; elsewhere (single-threaded test runtimes) it just runs `f`.
pub(crate) fn heavy<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The refusal of a step the verification layer does not prove, naming the step.
pub(crate) fn unproven(step: &str) -> super::error::EngineError {
    super::error::EngineError::Invalid(format!(
        "{step} is not proven against a malicious party yet; \
         this protocol runs only in a semi-honest session"
    ))
}

/// What a session protects against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// At most one party deviates arbitrarily; a deviation aborts the session before
    /// anything depending on it is opened.
    #[default]
    Malicious,
    /// All parties follow the protocol; faster, for deployments that trust their parties.
    SemiHonest,
}

impl Security {
    /// The name used in `cluster.toml` and in answers.
    pub fn name(self) -> &'static str {
        match self {
            Security::Malicious => "malicious",
            Security::SemiHonest => "semi-honest",
        }
    }

    /// The byte that stands for the mode in the session setup.
    pub(crate) fn code(self) -> u8 {
        match self {
            Security::Malicious => 1,
            Security::SemiHonest => 2,
        }
    }

    /// Parses a `cluster.toml` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "malicious" => Some(Security::Malicious),
            "semi-honest" => Some(Security::SemiHonest),
            _ => None,
        }
    }
}

/// One recorded word of 64 AND gates, as party i sees it: the components of x and y it
/// holds (a = component i, b = component i + 1), its part F(k_i) of the zero share, and
/// t_{i+1} ⊕ F(k_{i+1}) of the message it received from party i + 1. Bits past the end of
/// a vector are zero in every field.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AndWord {
    pub ax: u64,
    pub ay: u64,
    pub bx: u64,
    pub by: u64,
    pub f_own: u64,
    pub tf_next: u64,
}

/// The most AND words kept before a proof runs on its own, and the most one proof covers
/// (2^18 words, 16.8 M gates): a proof's vectors then take about 296 bytes per word, 74
/// MiB per party, whatever the size of the round that recorded them. Larger rounds are
/// proven in chunks, one proof (about 30 rounds) after another: at n = 10^5 the sort's and
/// the selection's rounds fit one proof (a histogram's widest round over 10 edges takes
/// four); at 10^6 many rounds are split.
pub(crate) const MAX_PENDING_WORDS: usize = 1 << 18;

/// Verification state of one session.
pub(crate) struct Verifier {
    pub security: Security,
    pub pending: Vec<AndWord>,
    /// The AND proof's two plain vectors (the prover's), kept between proofs so that each
    /// proof reuses the previous one's allocations.
    pub spare: [Vec<gf64::Gf64>; 2],
    /// The AND proof's group-form and weight vectors, kept likewise.
    pub groups: and_levels::GroupBufs,
    pub ring64: RingPending<Z64>,
    pub ring128: RingPending<Z128>,
    pub ring256: RingPending<Z256>,
    /// Gates proven so far and proofs run, for benchmarks and tests.
    pub proven_words: u64,
    pub proven_gates: u64,
    pub proofs: u64,
    /// Wall time spent in proofs (waiting for the other parties included).
    pub proof_time: std::time::Duration,
    pub mask_own: Prg,
    pub mask_next: Prg,
    pub chal_own: Prg,
    pub chal_next: Prg,
    pub rho_own: Prg,
    pub rho_next: Prg,
}

fn stream(seed: Seed, id: u64) -> Prg {
    let mut rng = Prg::from_seed(seed);
    rng.set_stream(id);
    rng
}

impl Verifier {
    pub fn new(security: Security, own: Seed, next: Seed) -> Self {
        // A malicious session reuses the proof buffers of an earlier one (`pool`).
        let bufs = match security {
            Security::Malicious => pool::POOL.take(),
            Security::SemiHonest => pool::ProofBufs::default(),
        };
        Verifier {
            security,
            pending: bufs.pending,
            spare: bufs.spare,
            groups: bufs.groups,
            ring64: RingPending::default(),
            ring128: RingPending::default(),
            ring256: RingPending::default(),
            proven_words: 0,
            proven_gates: 0,
            proofs: 0,
            proof_time: std::time::Duration::ZERO,
            mask_own: stream(own, 2),
            mask_next: stream(next, 2),
            chal_own: stream(own, 3),
            chal_next: stream(next, 3),
            rho_own: stream(own, 4),
            rho_next: stream(next, 4),
        }
    }

    pub fn malicious(&self) -> bool {
        self.security == Security::Malicious
    }
}

impl Drop for Verifier {
    /// Hands the proof buffers to the next session in this process (`pool`).
    fn drop(&mut self) {
        if self.malicious() {
            pool::POOL.give(pool::ProofBufs {
                pending: std::mem::take(&mut self.pending),
                spare: std::mem::take(&mut self.spare),
                groups: std::mem::take(&mut self.groups),
            });
        }
    }
}

/// What a session has proven so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Proven {
    /// AND gates proven, in words of 64.
    pub and_words: u64,
    /// Ring product gates (outputs of `products`) proven.
    pub product_gates: u64,
    /// Proofs run.
    pub proofs: u64,
    /// Wall time this party spent in them, from its first local step to its verdict
    /// (the time it waited for the other parties included).
    pub proof_time: std::time::Duration,
}

impl<T: Transport> Session<T> {
    /// Proves everything pending (a no-op in semi-honest mode). Call it before anything
    /// computed in the session leaves the parties other than through `open*`, which
    /// proves on its own; every party must call it at the same point.
    pub async fn verify(&mut self) -> Result<()> {
        if self.malicious() {
            self.prove_ands().await?;
            self.prove_products::<Z64>().await?;
            self.prove_products::<Z128>().await?;
            self.prove_products::<Z256>().await?;
        }
        Ok(())
    }

    /// Ring product gates recorded and not yet proven, over all rings.
    pub fn pending_products(&self) -> usize {
        let v = self.verifier();
        v.ring64.len() + v.ring128.len() + v.ring256.len()
    }

    /// Refuses, in malicious mode, a step whose messages the verification layer does not
    /// prove yet, so that a malicious session never runs anything unproven. The error
    /// names the step.
    pub(crate) fn refuse_unproven(&self, step: &str) -> Result<()> {
        if self.malicious() {
            Err(unproven(step))
        } else {
            Ok(())
        }
    }

    /// Gates recorded and not yet proven, in words of 64.
    pub fn pending_and_words(&self) -> usize {
        self.verifier().pending.len()
    }

    /// What this session has proven.
    pub fn proven(&self) -> Proven {
        let v = self.verifier();
        Proven {
            and_words: v.proven_words,
            product_gates: v.proven_gates,
            proofs: v.proofs,
            proof_time: v.proof_time,
        }
    }

    /// Records one round of ANDs: the operands, the zero-share parts and the words
    /// received from the next party, tails cleared.
    pub(crate) fn record_ands(
        &mut self,
        pairs: &[(&BitShares, &BitShares)],
        f_own: &[u64],
        f_next: &[u64],
        theirs: &[Vec<u64>],
    ) {
        let mut k = 0;
        let pending = &mut self.verifier_mut().pending;
        for ((x, y), t) in pairs.iter().zip(theirs) {
            let words = x.words();
            for (w, tw) in t.iter().enumerate().take(words) {
                let mask = if w + 1 == words {
                    super::binary::tail_mask(x.len)
                } else {
                    u64::MAX
                };
                pending.push(AndWord {
                    ax: x.a[w],
                    ay: y.a[w],
                    bx: x.b[w],
                    by: y.b[w],
                    f_own: f_own[k] & mask,
                    tf_next: (tw ^ f_next[k]) & mask,
                });
                k += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod cheating;
