//! One MPC session of one party: its id, its transport, its correlated randomness. Seeds are
//! agreed in one round at [`Session::start`].
//!
//! Every message of every protocol goes through [`Session::exchange`], one round of the
//! transport, which counts the round and the bytes as they go on the wire
//! ([`Session::counters`]). This module holds no protocol arithmetic (see `arith`) and no
//! networking code (the transport is abstract).

use rand::RngCore;

use super::error::{EngineError, Result};
use super::prf::{Correlated, Seed};
pub use super::transport::Counters;
use super::transport::{Expect, Incoming, Outgoing, PartyId, Peer, Transport};
use super::verify::{Security, Verifier};

/// One MPC session of party `id` over transport `T`.
pub struct Session<T: Transport> {
    id: PartyId,
    transport: T,
    correlated: Correlated,
    verifier: Verifier,
}

impl<T: Transport> Session<T> {
    /// A semi-honest session (see [`Session::start_with`]).
    pub async fn start<G: RngCore>(id: PartyId, transport: T, rng: &mut G) -> Result<Self> {
        Self::start_with(id, transport, rng, Security::SemiHonest).await
    }

    /// Agrees on seeds in one round: each party draws its seed k_i and sends it to its
    /// previous neighbour, so party i knows k_i and k_{i+1} (see `prf`). The round counts.
    /// All three parties must pass the same `security`.
    pub async fn start_with<G: RngCore>(
        id: PartyId,
        mut transport: T,
        rng: &mut G,
        security: Security,
    ) -> Result<Self> {
        if id > 2 {
            return Err(EngineError::Invalid(format!(
                "party id {id}, expected 0, 1 or 2"
            )));
        }
        let mut own: Seed = [0; 32];
        rng.fill_bytes(&mut own);
        // The seed and this party's mode: a neighbour in another mode refuses (each party
        // checks its next one, so any disagreement is seen by someone).
        let mut msg = own.to_vec();
        msg.push(security.code());
        let out = Outgoing {
            next: None,
            prev: Some(msg),
        };
        let expect = Expect {
            next: true,
            prev: false,
        };
        let incoming = transport.round(out, expect).await?;
        let bytes = take(incoming.next, Peer::Next)?;
        let (next, mode): (Seed, u8) = match bytes.split_last() {
            Some((&mode, seed)) if seed.len() == 32 => (seed.try_into().expect("32 bytes"), mode),
            _ => {
                return Err(EngineError::Malformed {
                    peer: Peer::Next.name(),
                    expected: "a 32-byte seed and a mode byte".into(),
                    found: format!("{} bytes", bytes.len()),
                })
            }
        };
        if mode != security.code() {
            let theirs = match mode {
                1 => "a malicious-mode session",
                2 => "a semi-honest session",
                _ => "an unknown mode byte",
            };
            return Err(EngineError::Malformed {
                peer: Peer::Next.name(),
                expected: format!(
                    "a {} session (every party must use the same `security` in cluster.toml)",
                    security.name()
                ),
                found: theirs.into(),
            });
        }
        Ok(Session {
            id,
            transport,
            correlated: Correlated::new(own, next),
            verifier: Verifier::new(security, own, next),
        })
    }

    /// This party's id, 0, 1 or 2.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// Rounds and bytes so far on this session's transport, as on the wire: the seed
    /// agreement round, and whatever ran on the transport before the session started on it
    /// (the link setup, a party's agreement rounds at intake).
    pub fn counters(&self) -> Counters {
        self.transport.counters()
    }

    /// The security mode of this session.
    pub fn security(&self) -> Security {
        self.verifier.security
    }

    pub(crate) fn malicious(&self) -> bool {
        self.verifier.malicious()
    }

    pub(crate) fn verifier_mut(&mut self) -> &mut Verifier {
        &mut self.verifier
    }

    pub(crate) fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Ends the session and hands back the transport.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// The correlated randomness; every party must draw from it in the same order.
    pub fn correlated(&mut self) -> &mut Correlated {
        &mut self.correlated
    }

    /// One communication round through the transport (which counts it).
    pub async fn exchange(&mut self, out: Outgoing, expect: Expect) -> Result<Incoming> {
        self.transport.round(out, expect).await
    }
}

/// The message expected from `peer`; its absence is a malformed round.
pub(crate) fn take(msg: Option<Vec<u8>>, peer: Peer) -> Result<Vec<u8>> {
    msg.ok_or_else(|| EngineError::Malformed {
        peer: peer.name(),
        expected: "a message".into(),
        found: "none".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::local::{local_transports, run3};
    use crate::engine::ring::Z64;
    use crate::engine::transport::framed;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// A party in another mode is refused at the setup by the party before it, which
    /// names the mode it expected; nothing else is exchanged.
    #[tokio::test]
    async fn a_neighbour_in_another_mode_is_refused_at_setup() {
        let modes = [
            Security::Malicious,
            Security::SemiHonest,
            Security::Malicious,
        ];
        let mut tasks = Vec::new();
        for (i, t) in local_transports().into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let mut rng = ChaCha20Rng::seed_from_u64(i as u64);
                Session::start_with(i, t, &mut rng, modes[i])
                    .await
                    .map(|_| ())
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        // Party 0 checks party 1 (semi-honest), party 1 checks party 2 (malicious).
        for (i, theirs) in [
            (0, "a semi-honest session"),
            (1, "a malicious-mode session"),
        ] {
            match &out[i] {
                Err(EngineError::Malformed {
                    expected, found, ..
                }) => {
                    assert!(expected.contains("same `security`"), "{expected}");
                    assert_eq!(found, theirs);
                }
                other => panic!("party {i} must refuse its next party: {other:?}"),
            }
        }
        assert!(out[2].is_ok(), "party 2's next (party 0) runs its mode");
    }

    #[tokio::test]
    async fn start_agrees_on_seeds_in_one_round() {
        let out = run3(11, |mut s| async move {
            assert_eq!(
                s.counters(),
                // One framed message each way: a 32-byte seed and the mode byte.
                Counters {
                    rounds: 1,
                    bytes_sent: framed(33),
                    bytes_received: framed(33)
                }
            );
            Ok(s.correlated().zero_shares::<Z64>(10))
        })
        .await;
        let z: Vec<Vec<Z64>> = out.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(z[2].len(), 10);
        for ((p, q), r) in z[0].iter().zip(&z[1]).zip(&z[2]) {
            assert_eq!(*p + *q + *r, Z64(0));
        }
    }

    #[tokio::test]
    async fn bad_id_and_short_seed_are_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let [other, _, _] = local_transports();
        assert!(matches!(
            Session::start(3, other, &mut rng).await,
            Err(EngineError::Invalid(_))
        ));
        let [_t0, t1, t2] = local_transports();
        // Party 1 expects a seed from party 2, which sends only 5 bytes.
        let mut t2 = t2;
        t2.round(
            Outgoing {
                next: None,
                prev: Some(vec![0; 5]),
            },
            Expect::default(),
        )
        .await
        .unwrap();
        let err = Session::start(1, t1, &mut rng).await.err().unwrap();
        assert!(
            matches!(err, EngineError::Malformed { peer: "next", .. }),
            "{err}"
        );
    }

    #[test]
    fn counters_display() {
        let c = Counters {
            rounds: 2,
            bytes_sent: 3,
            bytes_received: 4,
        };
        assert_eq!(c.to_string(), "2 rounds, 3 bytes sent, 4 bytes received");
    }
}
