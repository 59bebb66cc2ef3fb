//! [`QuicTransport`]: the engine's [`Transport`] over one QUIC bidirectional stream to each
//! ring neighbour, as set up by [`super::mesh::Mesh::session`].
//!
//! Each engine message is one frame (see `frame`) of at most [`MAX_MPC_FRAME`] bytes; the
//! receive buffer grows only as bytes arrive. In a round, the sends and receives on both
//! streams run concurrently: sending everything before receiving would deadlock under flow
//! control when all three parties send large vectors at once.
//!
//! Each link counts the stream bytes it wrote and read: the session header and its
//! acknowledgement that `mesh` exchanged to open it, then every frame, header included.
//! Holds no MPC logic.

use crate::engine::error::{EngineError, Result};
use crate::engine::transport::{
    Counters, Expect, Incoming, Outgoing, PartyId, Peer, Transport, FRAME_HEADER,
};

use super::frame::{read_frame, write_frame, FrameError, HEADER_LEN};

/// Largest engine message: 1 GiB.
pub const MAX_MPC_FRAME: usize = 1 << 30;

// The engine charges its in-process transport the header this transport writes.
const _: () = assert!(FRAME_HEADER == HEADER_LEN);

/// The two streams of one party in one MPC session, with the bytes moved on them.
pub(super) struct Link {
    pub(super) send: quinn::SendStream,
    pub(super) recv: quinn::RecvStream,
    /// Keeps the connection alive as long as the session uses it.
    pub(super) _conn: quinn::Connection,
    /// Bytes written to `send`, frame headers included.
    pub(super) sent: u64,
    /// Bytes read from `recv`, frame headers included.
    pub(super) received: u64,
}

/// One party's end of an MPC session over QUIC.
pub struct QuicTransport {
    me: PartyId,
    session: [u8; 16],
    next: Link,
    prev: Link,
    rounds: u64,
}

impl std::fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicTransport")
            .field("me", &self.me)
            .field("session", &hex::encode(self.session))
            .finish_non_exhaustive()
    }
}

impl QuicTransport {
    pub(super) fn new(me: PartyId, session: [u8; 16], next: Link, prev: Link) -> Self {
        Self {
            me,
            session,
            next,
            prev,
            rounds: 0,
        }
    }

    /// This party's id.
    pub fn me(&self) -> PartyId {
        self.me
    }

    /// The session id.
    pub fn session_id(&self) -> [u8; 16] {
        self.session
    }

    /// Closes both send streams gracefully (the neighbours see a clean end of stream once
    /// they have read everything sent).
    pub fn finish(mut self) {
        // A stream the peer already reset or a closed connection has nothing left to finish.
        let _ = self.next.send.finish();
        let _ = self.prev.send.finish();
    }
}

fn transport_error(peer: Peer, me: PartyId, what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Transport {
        peer: peer.name(),
        reason: format!("{what} party {}: {e}", peer.of(me)),
    }
}

async fn send_one(
    link_send: &mut quinn::SendStream,
    sent: &mut u64,
    msg: Option<Vec<u8>>,
    peer: Peer,
    me: PartyId,
) -> Result<()> {
    let Some(msg) = msg else { return Ok(()) };
    if msg.len() > MAX_MPC_FRAME {
        return Err(EngineError::Invalid(format!(
            "message to the {} party is {} bytes; at most {MAX_MPC_FRAME} allowed",
            peer.name(),
            msg.len()
        )));
    }
    *sent += write_frame(link_send, &msg)
        .await
        .map_err(|e| transport_error(peer, me, "sending to", e))?;
    Ok(())
}

async fn recv_one(
    link_recv: &mut quinn::RecvStream,
    received: &mut u64,
    expect: bool,
    peer: Peer,
    me: PartyId,
) -> Result<Option<Vec<u8>>> {
    if !expect {
        return Ok(None);
    }
    match read_frame(link_recv, MAX_MPC_FRAME).await {
        Ok(msg) => {
            *received += (HEADER_LEN + msg.len()) as u64;
            Ok(Some(msg))
        }
        Err(FrameError::TooLarge { len, max }) => Err(EngineError::Malformed {
            peer: peer.name(),
            expected: format!("a message of at most {max} bytes"),
            found: format!("a length prefix of {len} bytes"),
        }),
        Err(e) => Err(transport_error(peer, me, "receiving from", e)),
    }
}

async fn link_round(
    link: &mut Link,
    out: Option<Vec<u8>>,
    expect: bool,
    peer: Peer,
    me: PartyId,
) -> Result<Option<Vec<u8>>> {
    let ((), received) = tokio::try_join!(
        send_one(&mut link.send, &mut link.sent, out, peer, me),
        recv_one(&mut link.recv, &mut link.received, expect, peer, me)
    )?;
    Ok(received)
}

impl Transport for QuicTransport {
    async fn round(&mut self, out: Outgoing, expect: Expect) -> Result<Incoming> {
        self.rounds += 1;
        let me = self.me;
        let (next, prev) = tokio::try_join!(
            link_round(&mut self.next, out.next, expect.next, Peer::Next, me),
            link_round(&mut self.prev, out.prev, expect.prev, Peer::Prev, me),
        )?;
        Ok(Incoming { next, prev })
    }

    fn counters(&self) -> Counters {
        Counters {
            rounds: self.rounds,
            bytes_sent: self.next.sent + self.prev.sent,
            bytes_received: self.next.received + self.prev.received,
        }
    }
}
