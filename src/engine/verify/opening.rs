//! Checked openings: party i lacks component i + 2, held by parties i + 2 and i + 1. The
//! first sends it, the second sends its SHA-256 in the same round, and party i compares
//! before using the value. A party that sends a wrong copy is caught unless it finds a
//! SHA-256 collision; the check costs 32 bytes per opening and no round. In malicious mode
//! every pending gate is proven first, so nothing opened depends on an unproven gate.
//! This module holds the opening round only; what is opened is the caller's.

use sha2::{Digest, Sha256};

use crate::engine::error::{EngineError, Result};
use crate::engine::session::{take, Session};
use crate::engine::transport::{Expect, Outgoing, Peer, Transport};

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
        let out = Outgoing {
            next: Some(a),
            prev: Some(digest(&b()).to_vec()),
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
            let me = self.id();
            let (p, n) = (Peer::Prev.of(me), Peer::Next.of(me));
            return Err(EngineError::Verification {
                check: "opening: the two copies of a component differ",
                by: me,
                suspects: [p.min(n), p.max(n)],
            });
        }
        Ok(missing)
    }
}
