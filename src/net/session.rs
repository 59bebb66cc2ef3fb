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

use bytes::Bytes;

use super::frame::{FrameError, HEADER_LEN};

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
    // One frame as two chunks handed to QUIC as they are: the payload is not copied.
    let header = (msg.len() as u32).to_be_bytes();
    let len = (HEADER_LEN + msg.len()) as u64;
    let mut chunks = [Bytes::copy_from_slice(&header), Bytes::from(msg)];
    link_send
        .write_all_chunks(&mut chunks)
        .await
        .map_err(|e| transport_error(peer, me, "sending to", e))?;
    *sent += len;
    Ok(())
}

/// Reads one frame (see `frame`) of at most [`MAX_MPC_FRAME`] payload bytes from QUIC's
/// received chunks: each byte is copied once and nothing is zero-filled first. The length
/// is checked before anything is allocated, and the buffer grows only as bytes arrive
/// (to at most twice what has arrived), so a huge announced length costs nothing.
async fn read_mpc_frame(r: &mut quinn::RecvStream) -> std::result::Result<Vec<u8>, FrameError> {
    let io = |e: quinn::ReadError| FrameError::Io(e.into());
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read_chunk(HEADER_LEN - got, true).await.map_err(io)? {
            Some(c) => {
                header[got..got + c.bytes.len()].copy_from_slice(&c.bytes);
                got += c.bytes.len();
            }
            None if got == 0 => return Err(FrameError::Closed),
            None => return Err(FrameError::Truncated),
        }
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_MPC_FRAME {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_MPC_FRAME,
        });
    }
    let mut buf = Vec::with_capacity(len.min(FIRST_RESERVE));
    while buf.len() < len {
        match r.read_chunk(len - buf.len(), true).await.map_err(io)? {
            Some(c) => buf.extend_from_slice(&c.bytes),
            None => return Err(FrameError::Truncated),
        }
    }
    Ok(buf)
}

/// A frame's buffer starts at most this large; it grows as bytes arrive.
const FIRST_RESERVE: usize = 1 << 20;

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
    match read_mpc_frame(link_recv).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::endpoint::{client_endpoint, connect, server_endpoint};
    use crate::net::identity::Identity;
    use std::net::{Ipv4Addr, SocketAddr};

    /// What keeps a test stream's connection open until the test ends.
    type Keep = (
        quinn::Connection,
        quinn::Connection,
        quinn::Endpoint,
        quinn::Endpoint,
    );

    /// A QUIC stream pair on loopback: what the test writes raw on the client's send side
    /// arrives at the server's receive side, which `read_mpc_frame` reads.
    async fn stream_pair() -> (quinn::SendStream, quinn::RecvStream, Keep) {
        let id = Identity::generate("party0").unwrap();
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server = server_endpoint(bind, &id, vec![]).unwrap();
        let addr = server.local_addr().unwrap();
        let accept = {
            let server = server.clone();
            tokio::spawn(async move {
                let conn = server.accept().await.unwrap().await.unwrap();
                let (_s, r) = conn.accept_bi().await.unwrap();
                (r, conn)
            })
        };
        let client = client_endpoint().unwrap();
        let conn = connect(&client, addr, id.pin(), None).await.unwrap();
        let (mut s, _) = conn.open_bi().await.unwrap();
        // A stream reaches the peer with its first bytes: an empty frame.
        s.write_all(&[0, 0, 0, 0]).await.unwrap();
        let (mut r, server_conn) = accept.await.unwrap();
        assert_eq!(read_mpc_frame(&mut r).await.unwrap(), Vec::<u8>::new());
        (s, r, (conn, server_conn, client, server))
    }

    /// Frames written as [`send_one`] writes them read back whole, across QUIC's chunks
    /// (3 MiB, several chunks and more than the first reservation); then the clean end of
    /// the stream reads as closed.
    #[tokio::test]
    async fn frames_read_back_whole_then_the_end_is_clean() {
        let (mut s, mut r, _keep) = stream_pair().await;
        let big: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut sent = 0;
        send_one(&mut s, &mut sent, Some(big.clone()), Peer::Next, 0)
            .await
            .unwrap();
        send_one(&mut s, &mut sent, Some(vec![9, 8, 7]), Peer::Next, 0)
            .await
            .unwrap();
        s.finish().unwrap();
        assert_eq!(sent, (big.len() + 3 + 2 * HEADER_LEN) as u64);
        assert_eq!(read_mpc_frame(&mut r).await.unwrap(), big);
        assert_eq!(read_mpc_frame(&mut r).await.unwrap(), vec![9, 8, 7]);
        assert!(matches!(
            read_mpc_frame(&mut r).await,
            Err(FrameError::Closed)
        ));
    }

    /// A length above the limit is refused from the header alone (the peer sends 3 bytes
    /// after announcing 1 GiB + 1); a stream that ends inside a header or inside a payload
    /// is truncated, not a short message.
    #[tokio::test]
    async fn oversized_and_truncated_frames_are_refused() {
        let (mut s, mut r, _keep) = stream_pair().await;
        let over = (MAX_MPC_FRAME as u32 + 1).to_be_bytes();
        s.write_all(&over).await.unwrap();
        s.write_all(&[1, 2, 3]).await.unwrap();
        match read_mpc_frame(&mut r).await {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!((len, max), (MAX_MPC_FRAME + 1, MAX_MPC_FRAME))
            }
            other => panic!("expected too large, got {other:?}"),
        }

        let (mut s, mut r, _keep) = stream_pair().await;
        s.write_all(&[0, 0, 0, 10, 1, 2, 3]).await.unwrap();
        s.finish().unwrap();
        assert!(matches!(
            read_mpc_frame(&mut r).await,
            Err(FrameError::Truncated)
        ));

        let (mut s, mut r, _keep) = stream_pair().await;
        s.write_all(&[0, 0]).await.unwrap();
        s.finish().unwrap();
        assert!(matches!(
            read_mpc_frame(&mut r).await,
            Err(FrameError::Truncated)
        ));
    }
}
