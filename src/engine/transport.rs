//! The abstract transport an engine session runs over.
//!
//! A party talks only to its two neighbours on the ring 0 → 1 → 2 → 0: `Next` is party
//! (i + 1) mod 3, `Prev` is party (i + 2) mod 3. One call to [`Transport::round`] is one
//! communication round: the messages to both neighbours are sent and the expected messages
//! from both neighbours are received *concurrently* (sending first and receiving afterwards
//! can deadlock under flow control when every party sends a large vector at once).
//!
//! Every transport counts what it puts on the wire ([`Transport::counters`]): each message
//! as a frame of [`FRAME_HEADER`] length bytes and its payload, plus any bytes it wrote to
//! set its links up. This module holds no networking code: `engine::local` implements it
//! over in-process channels for tests (charging the same frame header), `net::session` over
//! QUIC streams.

use std::fmt;
use std::future::Future;

use super::error::Result;

/// Bytes a transport puts on the wire per message besides the payload: the `u32` length
/// prefix of `net::frame`. The in-process transport charges it too, so that both count a
/// round alike.
pub const FRAME_HEADER: usize = 4;

/// The wire length of a message of `payload` bytes: its frame header and the payload.
pub const fn framed(payload: usize) -> u64 {
    (FRAME_HEADER + payload) as u64
}

/// Communication cost so far, as seen by one party: rounds run, and every byte it wrote to
/// and read from its two links (frame headers and link setup included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub rounds: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rounds, {} bytes sent, {} bytes received",
            self.rounds, self.bytes_sent, self.bytes_received
        )
    }
}

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

    /// Rounds run and bytes written and read since this transport was made, as they went
    /// on the wire: each message with its frame header, and the bytes that set the links
    /// up. A round that failed counts the messages it completed.
    fn counters(&self) -> Counters;
}
