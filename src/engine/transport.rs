//! The abstract transport an engine session runs over.
//!
//! A party talks only to its two neighbours on the ring 0 → 1 → 2 → 0: `Next` is party
//! (i + 1) mod 3, `Prev` is party (i + 2) mod 3. One call to [`Transport::round`] is one
//! communication round: the messages to both neighbours are sent and the expected messages
//! from both neighbours are received *concurrently* (sending first and receiving afterwards
//! can deadlock under flow control when every party sends a large vector at once).
//!
//! This module holds no networking code: `engine::local` implements it over in-process
//! channels for tests, `net::session` over QUIC streams.

use std::future::Future;

use super::error::Result;

/// Party index, 0, 1 or 2.
pub type PartyId = usize;

/// One of the two neighbours of a party on the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Party (i + 1) mod 3.
    Next,
    /// Party (i + 2) mod 3.
    Prev,
}

impl Peer {
    /// The id of this neighbour of party `me`.
    pub fn of(self, me: PartyId) -> PartyId {
        match self {
            Peer::Next => (me + 1) % 3,
            Peer::Prev => (me + 2) % 3,
        }
    }

    /// A name for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Next => "next",
            Peer::Prev => "previous",
        }
    }
}

/// Messages to send in one round; `None` sends nothing to that neighbour.
#[derive(Debug, Default)]
pub struct Outgoing {
    pub next: Option<Vec<u8>>,
    pub prev: Option<Vec<u8>>,
}

/// Which neighbours a round expects a message from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expect {
    pub next: bool,
    pub prev: bool,
}

/// Messages received in one round, present exactly where [`Expect`] asked for them.
#[derive(Debug, Default)]
pub struct Incoming {
    pub next: Option<Vec<u8>>,
    pub prev: Option<Vec<u8>>,
}

/// A bidirectional, ordered, reliable message channel to each of the two neighbours.
///
/// Messages are delivered whole and in order per neighbour. An implementation must bound
/// the size of a received message before allocating for it and report a closed or failed
/// link as [`super::error::EngineError::Transport`].
pub trait Transport: Send {
    /// Sends `out` and receives what `expect` names, concurrently: one round.
    fn round(
        &mut self,
        out: Outgoing,
        expect: Expect,
    ) -> impl Future<Output = Result<Incoming>> + Send;
}
