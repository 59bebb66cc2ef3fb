//! Checked openings: party i lacks component i + 2, held by parties i + 2 and i + 1. The
//! first sends it, the second sends its SHA-256 in the same round, and party i compares
//! before using the value. A party that sends a wrong copy is caught unless it finds a
//! SHA-256 collision; the check costs 32 bytes per opening and no round. In malicious mode
//! every pending gate is proven first, so nothing opened depends on an unproven gate.
//! This module holds the opening round only; what is opened is the caller's.

use sha2::{Digest, Sha256};

use crate::engine::error::{EngineError, Result};
use crate::engine::ring::Ring;
use crate::engine::session::{take, Session};
use crate::engine::transport::{Expect, Outgoing, Peer, Transport};
use crate::engine::wide::Z256;

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpcstats opening v1");
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
    h.finalize().into()
}

impl<T: Transport> Session<T> {
    /// The round of an opening: sends `a` (this party's encoded component i) to its next
    /// party and returns the encoded component i + 2 received from its previous party. In
    /// malicious mode it first proves pending gates, also sends the digest of `b` (the
    /// encoded component i + 1, which the previous party lacks) and checks the received
    /// component against the next party's digest.
    pub(crate) async fn open_round(
        &mut self,
        a: Vec<u8>,
        b: impl FnOnce() -> Vec<u8>,
    ) -> Result<Vec<u8>> {
        if !self.malicious() {
            let inc = self
                .exchange(
                    Outgoing {
                        next: Some(a),
                        prev: None,
                    },
                    Expect {
                        next: false,
                        prev: true,
                    },
                )
                .await?;
            return take(inc.prev, Peer::Prev);
        }
        self.verify().await?;
        self.checked_round(a, b()).await
    }

    /// 32 bytes of randomness no party could predict before this round, common to all
    /// three: a random shared Z_2^256 value (components from the pairwise streams), opened
    /// with the copy check. A cheater can make it abort, not bias it. It depends on no
    /// data, so pending gates need not be proven first. Malicious mode only.
    pub(crate) async fn coin(&mut self) -> Result<[u8; 32]> {
        let r = self.correlated().random_shares::<Z256>(1);
        let missing = self
            .checked_round(Z256::encode_slice(&[r[0].a]), Z256::encode_slice(&[r[0].b]))
            .await?;
        let m = Z256::decode_vec(&missing, 1).ok_or_else(|| EngineError::Malformed {
            peer: Peer::Prev.name(),
            expected: "one Z_2^256 element".into(),
            found: format!("{} bytes", missing.len()),
        })?;
        let v = r[0].a + r[0].b + m[0];
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&Z256::encode_slice(&[v]));
        Ok(seed)
    }

    /// The checked round itself: `a` to the next party, the digest of `b` to the previous,
    /// the received component compared with the next party's digest.
    async fn checked_round(&mut self, a: Vec<u8>, b: Vec<u8>) -> Result<Vec<u8>> {
        let out = Outgoing {
            next: Some(a),
            prev: Some(digest(&b).to_vec()),
        };
        let inc = self
            .exchange(
                out,
                Expect {
                    next: true,
                    prev: true,
                },
            )
            .await?;
        let missing = take(inc.prev, Peer::Prev)?;
        let hash = take(inc.next, Peer::Next)?;
        if hash.as_slice() != digest(&missing) {
            return Err(EngineError::verification(
                "opening: the two copies of a component differ",
                self.id(),
            ));
        }
        Ok(missing)
    }
}
