//! An in-process [`Transport`] over tokio unbounded channels, and [`run3`], which runs one
//! closure per party on three tokio tasks: the harness for tests, examples and benchmarks.
//!
//! A dropped peer closes its channels, so the survivors get `EngineError::Transport`, never
//! a hang. Each message counts as the frame a network transport would write for it
//! ([`framed`]). This module holds no protocol logic and no real networking.

use std::future::Future;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::error::{EngineError, Result};
use super::session::Session;
use super::transport::{framed, Counters, Expect, Incoming, Outgoing, PartyId, Peer, Transport};
use super::verify::Security;

/// One party's end of the in-process links to its two neighbours.
#[derive(Debug)]
pub struct LocalTransport {
    id: PartyId,
    to_next: UnboundedSender<Vec<u8>>,
    to_prev: UnboundedSender<Vec<u8>>,
    from_next: UnboundedReceiver<Vec<u8>>,
    from_prev: UnboundedReceiver<Vec<u8>>,
    counters: Counters,
}

impl LocalTransport {
    /// The party this end belongs to.
    pub fn id(&self) -> PartyId {
        self.id
    }
}

/// Transports for parties 0, 1 and 2, linked in a ring.
pub fn local_transports() -> [LocalTransport; 3] {
    let mut to_next = [None, None, None];
    let mut from_next = [None, None, None];
    let mut to_prev = [None, None, None];
    let mut from_prev = [None, None, None];
    for i in 0..3 {
        let j = (i + 1) % 3;
        // Party i to its next party j, and party j to its previous party i.
        let (tx, rx) = unbounded_channel();
        (to_next[i], from_prev[j]) = (Some(tx), Some(rx));
        let (tx, rx) = unbounded_channel();
        (to_prev[j], from_next[i]) = (Some(tx), Some(rx));
    }
    [0, 1, 2].map(|id| LocalTransport {
        id,
        to_next: to_next[id].take().expect("one link per direction"),
        to_prev: to_prev[id].take().expect("one link per direction"),
        from_next: from_next[id].take().expect("one link per direction"),
        from_prev: from_prev[id].take().expect("one link per direction"),
        counters: Counters::default(),
    })
}

fn closed(peer: Peer) -> EngineError {
    EngineError::Transport {
        peer: peer.name(),
        reason: "in-process channel closed".into(),
    }
}

impl Transport for LocalTransport {
    async fn round(&mut self, out: Outgoing, expect: Expect) -> Result<Incoming> {
        self.counters.rounds += 1;
        // Unbounded sends never block, so sending first cannot deadlock.
        for (m, to, peer) in [
            (out.next, &self.to_next, Peer::Next),
            (out.prev, &self.to_prev, Peer::Prev),
        ] {
            if let Some(m) = m {
                let len = framed(m.len());
                to.send(m).map_err(|_| closed(peer))?;
                self.counters.bytes_sent += len;
            }
        }
        let mut incoming = Incoming::default();
        for (wanted, from, got, peer) in [
            (
                expect.next,
                &mut self.from_next,
                &mut incoming.next,
                Peer::Next,
            ),
            (
                expect.prev,
                &mut self.from_prev,
                &mut incoming.prev,
                Peer::Prev,
            ),
        ] {
            if wanted {
                let m = from.recv().await.ok_or_else(|| closed(peer))?;
                self.counters.bytes_received += framed(m.len());
                *got = Some(m);
            }
        }
        Ok(incoming)
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}

/// Starts three sessions over `transports` (party i gets `transports[i]` and a ChaCha RNG
/// seeded from `seed` and i) on three tokio tasks and runs `f` for each party.
/// A panic in a party's task is propagated.
pub async fn run3_over<T, F, Fut, O>(seed: u64, transports: [T; 3], f: F) -> [Result<O>; 3]
where
    T: Transport + 'static,
    F: Fn(Session<T>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<O>> + Send + 'static,
    O: Send + 'static,
{
    run3_secure(seed, Security::SemiHonest, transports, f).await
}

/// [`run3_over`] with sessions in the given security mode.
pub async fn run3_secure<T, F, Fut, O>(
    seed: u64,
    security: Security,
    transports: [T; 3],
    f: F,
) -> [Result<O>; 3]
where
    T: Transport + 'static,
    F: Fn(Session<T>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<O>> + Send + 'static,
    O: Send + 'static,
{
    let mut handles = Vec::with_capacity(3);
    for (id, transport) in transports.into_iter().enumerate() {
        let f = f.clone();
        handles.push(tokio::spawn(async move {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            rng.set_stream(id as u64);
            let session = Session::start_with(id, transport, &mut rng, security).await?;
            f(session).await
        }));
    }
    let mut results = Vec::with_capacity(3);
    for h in handles {
        results.push(match h.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(EngineError::Transport {
                peer: "local",
                reason: format!("party task failed: {e}"),
            }),
        });
    }
    let mut results = results.into_iter();
    [0, 1, 2].map(|_| results.next().expect("three results"))
}

/// [`run3_over`] the in-process transports of [`local_transports`].
pub async fn run3<F, Fut, O>(seed: u64, f: F) -> [Result<O>; 3]
where
    F: Fn(Session<LocalTransport>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<O>> + Send + 'static,
    O: Send + 'static,
{
    run3_over(seed, local_transports(), f).await
}

/// A test transport that cuts the last byte off every message received from `Next` after
/// the seed round, so that the receiver must report a malformed message.
#[cfg(test)]
pub(crate) struct Truncating {
    pub inner: LocalTransport,
    pub rounds: usize,
}

#[cfg(test)]
impl Transport for Truncating {
    async fn round(&mut self, out: Outgoing, expect: Expect) -> Result<Incoming> {
        let mut inc = self.inner.round(out, expect).await?;
        self.rounds += 1;
        if self.rounds > 1 {
            if let Some(m) = inc.next.as_mut() {
                m.pop();
            }
        }
        Ok(inc)
    }

    fn counters(&self) -> Counters {
        self.inner.counters()
    }
}

/// How a cheating party deviates in the one round it tampers with.
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
pub(crate) enum Tamper {
    /// Flip one bit of the message (its index taken modulo the message's bits).
    Flip(usize),
    /// Add a non-zero δ to one byte (index modulo the length).
    Add(usize, u8),
    /// Send the message this link carried in an earlier round instead.
    Replay,
    /// Send each neighbour the message meant for the other (both must exist).
    Swap,
    /// Send the message to the other neighbour as well, in place of its own.
    CopyToOther,
    /// Cut the last byte.
    Truncate,
    /// Append a byte.
    Extend,
}

/// A test transport for a party that deviates once: in round `at` (0 is the seed round)
/// it changes what it sends to `to` as `how` says. `fired` tells whether the round had a
/// message to change.
#[cfg(test)]
pub(crate) struct Cheater {
    pub inner: LocalTransport,
    pub at: usize,
    pub to: Peer,
    pub how: Tamper,
    pub round: usize,
    pub fired: std::sync::Arc<std::sync::atomic::AtomicBool>,
    history: [Vec<Vec<u8>>; 2],
}

#[cfg(test)]
impl Cheater {
    pub fn new(inner: LocalTransport, at: usize, to: Peer, how: Tamper) -> Self {
        Cheater {
            inner,
            at,
            to,
            how,
            round: 0,
            fired: Default::default(),
            history: [Vec::new(), Vec::new()],
        }
    }

    fn tamper(&mut self, out: &mut Outgoing) -> bool {
        let (mine, other) = match self.to {
            Peer::Next => (&mut out.next, &mut out.prev),
            Peer::Prev => (&mut out.prev, &mut out.next),
        };
        let Some(m) = mine.as_mut() else {
            return false;
        };
        let hist = &self.history[(self.to == Peer::Prev) as usize];
        match self.how {
            Tamper::Flip(bit) if !m.is_empty() => {
                let bit = bit % (m.len() * 8);
                m[bit / 8] ^= 1 << (bit % 8);
            }
            Tamper::Add(pos, delta) if !m.is_empty() => {
                let pos = pos % m.len();
                m[pos] = m[pos].wrapping_add(delta.max(1));
            }
            Tamper::Replay => match hist.iter().rev().find(|h| *h != m) {
                Some(h) => *m = h.clone(),
                None => return false,
            },
            Tamper::Swap => match other.as_mut() {
                Some(o) if o != m => std::mem::swap(m, o),
                _ => return false,
            },
            Tamper::CopyToOther => match other.as_mut() {
                Some(o) if o != m => *o = m.clone(),
                _ => return false,
            },
            Tamper::Truncate if !m.is_empty() => {
                m.pop();
            }
            Tamper::Extend => m.push(0),
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
impl Transport for Cheater {
    async fn round(&mut self, mut out: Outgoing, expect: Expect) -> Result<Incoming> {
        for (k, m) in [&out.next, &out.prev].into_iter().enumerate() {
            if let Some(m) = m {
                self.history[k].push(m.clone());
            }
        }
        if self.round == self.at && self.tamper(&mut out) {
            self.fired.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.round += 1;
        self.inner.round(out, expect).await
    }

    fn counters(&self) -> Counters {
        self.inner.counters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn messages_reach_the_right_neighbour() {
        let ts = local_transports();
        let mut joins = Vec::new();
        for mut t in ts {
            joins.push(tokio::spawn(async move {
                let id = t.id() as u8;
                let inc = t
                    .round(
                        Outgoing {
                            next: Some(vec![id, 1]),
                            prev: Some(vec![id, 2]),
                        },
                        Expect {
                            next: true,
                            prev: true,
                        },
                    )
                    .await
                    .unwrap();
                (id, inc)
            }));
        }
        for j in joins {
            let (id, inc) = j.await.unwrap();
            // From next: it sent to its prev (tag 2); from prev: it sent to its next (tag 1).
            assert_eq!(inc.next, Some(vec![(id + 1) % 3, 2]));
            assert_eq!(inc.prev, Some(vec![(id + 2) % 3, 1]));
        }
    }

    /// The counters are exactly the framed lengths of what went out and came in: a payload
    /// byte or a header byte left out shows here. Message lengths and directions vary per
    /// round (empty messages still cost a header).
    #[tokio::test]
    async fn counters_are_the_framed_lengths_moved() {
        use rand::Rng;
        const ROUNDS: usize = 40;
        // Round r: party i sends to next a message of len[r][i] bytes (or nothing if None),
        // and to prev the same length plus one.
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let plan: Vec<[Option<usize>; 3]> = (0..ROUNDS)
            .map(|_| std::array::from_fn(|_| rng.gen_bool(0.8).then(|| rng.gen_range(0..300))))
            .collect();
        let plan = std::sync::Arc::new(plan);
        let mut joins = Vec::new();
        for mut t in local_transports() {
            let plan = plan.clone();
            joins.push(tokio::spawn(async move {
                let me = t.id();
                let (next, prev) = (Peer::Next.of(me), Peer::Prev.of(me));
                let (mut sent, mut received) = (0u64, 0u64);
                for round in plan.iter() {
                    let out = Outgoing {
                        next: round[me].map(|n| vec![1; n]),
                        prev: round[me].map(|n| vec![2; n + 1]),
                    };
                    // From next: what it sent to its prev; from prev: what it sent to its next.
                    let expect = Expect {
                        next: round[next].is_some(),
                        prev: round[prev].is_some(),
                    };
                    // 4: the u32 length prefix a frame carries before its payload.
                    if let Some(n) = round[me] {
                        sent += (4 + n as u64) + (4 + n as u64 + 1);
                    }
                    let inc = t.round(out, expect).await.unwrap();
                    for m in [inc.next, inc.prev].into_iter().flatten() {
                        received += 4 + m.len() as u64;
                    }
                }
                (t.counters(), sent, received)
            }));
        }
        let mut total = (0, 0);
        for j in joins {
            let (c, sent, received) = j.await.unwrap();
            assert_eq!(c.rounds, ROUNDS as u64);
            assert_eq!((c.bytes_sent, c.bytes_received), (sent, received));
            total = (total.0 + sent, total.1 + received);
        }
        // Everything sent was received, and the plan did send something.
        assert_eq!(total.0, total.1);
        assert!(total.0 > 0);
    }

    #[tokio::test]
    async fn dropped_peer_is_a_transport_error() {
        let [t0, t1, t2] = local_transports();
        drop(t1);
        let mut t0 = t0;
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            t0.round(
                Outgoing::default(),
                Expect {
                    next: true,
                    prev: false,
                },
            ),
        )
        .await
        .expect("no hang");
        assert!(matches!(
            r,
            Err(EngineError::Transport { peer: "next", .. })
        ));
        let mut t2 = t2;
        let r = t2
            .round(
                Outgoing {
                    next: None,
                    prev: Some(vec![1]),
                },
                Expect::default(),
            )
            .await;
        assert!(matches!(
            r,
            Err(EngineError::Transport {
                peer: "previous",
                ..
            })
        ));
    }
}
