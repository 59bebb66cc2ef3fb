//! The party mesh: one QUIC connection between each pair of the three parties, kept alive
//! across restarts, and one bidirectional stream per pair per MPC session.
//!
//! Connections: the lower party id dials the higher one (presenting its certificate) from a
//! background task that redials with backoff (100 ms doubling to 2 s) whenever the
//! connection is absent or closed. The party's accept loop (in `roles::party`) identifies
//! incoming peer connections by client-certificate pin and hands them to
//! [`Mesh::add_incoming`], which replaces any previous connection to that peer.
//!
//! Sessions: per session and pair, the lower id opens a bidirectional stream and writes a
//! header frame holding the 16-byte session id and its 32-byte cluster fingerprint; the
//! higher id accepts streams on each connection, reads the header (bounded in size and time),
//! compares the fingerprint with its own and answers with a one-byte acknowledgement, or with
//! a refusal carrying its own fingerprint, so that both sides of a pair whose cluster files
//! differ fail the session with an error naming both fingerprints. It parks the stream (or
//! the refusal) keyed by (peer, session id) until [`Mesh::session`] claims it; unclaimed
//! streams are dropped after [`PARKED_TTL`]. This module moves bytes only; what a session
//! computes is the engine's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use anyhow::{anyhow, bail};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::engine::transport::{PartyId, Peer};

use super::endpoint::connect;
use super::frame::{read_frame, write_frame, HEADER_LEN};
use super::identity::Identity;
use super::pin::{short_pin, Pin};
use super::session::{Link, QuicTransport};
use crate::fingerprint::{show, Fingerprint};

/// First redial delay.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Largest redial delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a peer may take to send a stream's session header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an accepted session stream waits to be claimed.
///
/// Both ends of a pair act on one message of the coordinator, sent to the three parties at
/// once and bounded by its 10 s party timeout; the claimer then waits at most its own
/// session timeout (10 s at the parties). A stream parked for longer belongs to a session its
/// party never joined: it restarted after the coordinator's message, or refused before the
/// session. Dropping the stream ends the opener's wait for the session's first message, so
/// that the session aborts within this bound instead of hanging on a peer that forgot it.
pub const PARKED_TTL: Duration = Duration::from_secs(20);

/// Where a party listens and the pin of its certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub addr: SocketAddr,
    pub pin: Pin,
}

struct Parked {
    seq: u64,
    /// The stream, or why it was refused (the peer's cluster fingerprint differs).
    link: Result<Link, String>,
}

/// The session header: session id, then the sender's cluster fingerprint.
const SESSION_HEADER: usize = 16 + 32;
/// The answer to a header: `[1]`, or `[0]` and the answering party's fingerprint.
const ACK_MAX: usize = 1 + 32;

/// The error both parties of a pair report when their cluster files differ.
fn fingerprint_mismatch(
    me: PartyId,
    ours: &Fingerprint,
    peer: PartyId,
    theirs: &Fingerprint,
) -> String {
    format!(
        "cluster fingerprint check failed: party {peer} runs cluster {}, this party (party {me}) \
         runs {}; their cluster.toml files differ (compare them: every role logs its \
         fingerprint at start, `mpcstats status` shows them)",
        show(theirs),
        show(ours)
    )
}

#[derive(Default)]
struct State {
    conns: [Option<quinn::Connection>; 3],
    parked: HashMap<(PartyId, [u8; 16]), Parked>,
    next_seq: u64,
}

/// One party's connections to the two others.
pub struct Mesh {
    me: PartyId,
    endpoint: quinn::Endpoint,
    identity: Arc<Identity>,
    peers: [PeerInfo; 3],
    /// The fingerprint of this party's cluster file; a peer with another is refused.
    fingerprint: Fingerprint,
    state: Mutex<State>,
    /// Bumped whenever a connection is installed or a stream parked.
    changed: watch::Sender<u64>,
    /// Set (or dropped with the mesh) to stop the background tasks.
    shutdown: watch::Sender<bool>,
    this: Weak<Mesh>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("me", &self.me)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

fn is_live(conn: &quinn::Connection) -> bool {
    conn.close_reason().is_none()
}

impl Mesh {
    /// Starts party `me`'s mesh on `endpoint` (which must serve with `identity` and admit the
    /// other parties' pins); `peers[me]` is unused; `fingerprint` is this party's cluster
    /// fingerprint, which every session checks against each peer's. Spawns the dialer tasks,
    /// so it must run inside a tokio runtime. The tasks stop when the mesh is dropped or shut
    /// down.
    pub fn start(
        me: PartyId,
        endpoint: quinn::Endpoint,
        identity: Arc<Identity>,
        peers: [PeerInfo; 3],
        fingerprint: Fingerprint,
    ) -> Arc<Mesh> {
        assert!(me < 3, "party id {me} out of range 0..3");
        let mesh = Arc::new_cyclic(|this| Mesh {
            me,
            endpoint,
            identity,
            peers,
            fingerprint,
            state: Mutex::new(State::default()),
            changed: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            this: this.clone(),
        });
        for peer in (me + 1)..3 {
            tokio::spawn(dial_loop(
                Arc::downgrade(&mesh),
                peer,
                mesh.shutdown.subscribe(),
            ));
        }
        mesh
    }

    /// This party's id.
    pub fn me(&self) -> PartyId {
        self.me
    }

    /// Whether a live connection to `peer` exists.
    pub fn connected(&self, peer: PartyId) -> bool {
        peer < 3 && self.lock().conns[peer].as_ref().is_some_and(is_live)
    }

    /// UDP bytes this party has sent on its current connections to the other two parties,
    /// as QUIC counts them (`udp_tx` of each connection's stats: packet headers,
    /// encryption tags, acknowledgements and retransmissions included). A connection that
    /// was replaced takes its count with it, so take differences over spans without a
    /// reconnection.
    pub fn udp_sent(&self) -> u64 {
        self.lock()
            .conns
            .iter()
            .flatten()
            .map(|c| c.stats().udp_tx.bytes)
            .sum()
    }

    /// Hands an incoming connection from party `peer` (identified by its certificate pin) to
    /// the mesh, replacing and closing any previous connection to that peer.
    pub fn add_incoming(&self, peer: PartyId, conn: quinn::Connection) {
        if peer >= 3 || peer == self.me {
            tracing::warn!(
                peer,
                me = self.me,
                "refusing a mesh connection from an invalid party id"
            );
            conn.close(1u32.into(), b"not a peer party");
            return;
        }
        tracing::info!(peer, remote = %conn.remote_address(), "peer party connected");
        self.install(peer, conn);
    }

    /// Stops the background tasks and closes the mesh connections (not the endpoint).
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let mut state = self.lock();
        for conn in state.conns.iter_mut().filter_map(Option::take) {
            conn.close(0u32.into(), b"shutdown");
        }
        state.parked.clear();
    }

    /// Opens MPC session `session` with both neighbours: waits up to `timeout` for the
    /// connections and for the streams the lower-id neighbours open.
    pub async fn session(
        &self,
        session: [u8; 16],
        timeout: Duration,
    ) -> anyhow::Result<QuicTransport> {
        let deadline = Instant::now() + timeout;
        let (next, prev) = tokio::try_join!(
            self.link(Peer::Next.of(self.me), session, deadline, timeout),
            self.link(Peer::Prev.of(self.me), session, deadline, timeout),
        )?;
        Ok(QuicTransport::new(self.me, session, next, prev))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panicking holder: every update is one step.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live_conn(&self, peer: PartyId) -> Option<quinn::Connection> {
        self.lock().conns[peer].clone().filter(is_live)
    }

    fn describe(&self, peer: PartyId) -> String {
        format!(
            "party {peer} ({}, pin {})",
            self.peers[peer].addr,
            short_pin(&self.peers[peer].pin)
        )
    }

    fn install(&self, peer: PartyId, conn: quinn::Connection) {
        let old = self.lock().conns[peer].replace(conn.clone());
        if let Some(old) = old {
            if old.stable_id() != conn.stable_id() {
                old.close(0u32.into(), b"replaced by a new connection");
            }
        }
        if peer < self.me {
            tokio::spawn(accept_streams(
                self.this.clone(),
                peer,
                conn,
                self.shutdown.subscribe(),
            ));
        }
        self.changed.send_modify(|v| *v += 1);
    }

    fn park(&self, peer: PartyId, session: [u8; 16], link: Result<Link, String>) {
        let seq = {
            let mut state = self.lock();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.parked.insert((peer, session), Parked { seq, link });
            seq
        };
        self.changed.send_modify(|v| *v += 1);
        let this = self.this.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PARKED_TTL).await;
            if let Some(mesh) = this.upgrade() {
                let mut state = mesh.lock();
                if state
                    .parked
                    .get(&(peer, session))
                    .is_some_and(|p| p.seq == seq)
                {
                    state.parked.remove(&(peer, session));
                    tracing::debug!(peer, session = %hex::encode(session), "dropped an unclaimed session stream");
                }
            }
        });
    }

    /// The stream of `session` to `peer`: opened by us if we have the lower id, else the one
    /// the peer opened.
    async fn link(
        &self,
        peer: PartyId,
        session: [u8; 16],
        deadline: Instant,
        timeout: Duration,
    ) -> anyhow::Result<Link> {
        let mut last_error: Option<anyhow::Error> = None;
        loop {
            let mut changes = self.changed.subscribe();
            if peer > self.me {
                if let Some(conn) = self.live_conn(peer) {
                    let opened = open_stream(&conn, session, &self.fingerprint);
                    match tokio::time::timeout_at(deadline, opened).await {
                        Ok(Ok(Ok(link))) => return Ok(link),
                        Ok(Ok(Err(theirs))) => bail!(
                            "{}",
                            fingerprint_mismatch(self.me, &self.fingerprint, peer, &theirs)
                        ),
                        Ok(Err(e)) => last_error = Some(e),
                        Err(_) => bail!(
                            "{} unreachable: could not open the session stream within {timeout:?}",
                            self.describe(peer)
                        ),
                    }
                }
            } else if let Some(parked) = self.lock().parked.remove(&(peer, session)) {
                return parked.link.map_err(|e| anyhow!("{e}"));
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                let connected = self.connected(peer);
                let why = match (connected, peer > self.me) {
                    (false, _) => "no connection".to_string(),
                    (true, true) => "could not open the session stream".to_string(),
                    (true, false) => format!(
                        "connected, but it opened no stream for session {}",
                        hex::encode(session)
                    ),
                };
                let mut err = anyhow!(
                    "{} unreachable: {why} within {timeout:?}",
                    self.describe(peer)
                );
                if let Some(last) = last_error {
                    err = err.context(format!("last attempt: {last:#}"));
                }
                return Err(err);
            }
        }
    }
}

/// Opens the stream of `session`, sends the header with our cluster fingerprint and waits
/// for the peer's one-byte acknowledgement, or its refusal with its own fingerprint (the
/// inner `Err`). The acknowledgement proves the connection alive: a stream opened on the
/// stale connection to a peer that just restarted fails here, before any MPC message is
/// sent, and `link` retries on the new connection.
async fn open_stream(
    conn: &quinn::Connection,
    session: [u8; 16],
    fingerprint: &Fingerprint,
) -> anyhow::Result<Result<Link, Fingerprint>> {
    let (mut send, mut recv) = conn.open_bi().await?;
    let mut header = session.to_vec();
    header.extend_from_slice(fingerprint);
    let sent = write_frame(&mut send, &header).await?;
    let ack = read_frame(&mut recv, ACK_MAX).await?;
    match ack.as_slice() {
        [1] => {}
        [0, theirs @ ..] if theirs.len() == 32 => {
            return Ok(Err(theirs.try_into().expect("32 bytes")));
        }
        _ => bail!("bad session acknowledgement: {} bytes", ack.len()),
    }
    Ok(Ok(Link {
        send,
        recv,
        _conn: conn.clone(),
        sent,
        received: (HEADER_LEN + ack.len()) as u64,
    }))
}

/// Keeps a connection to the higher-id `peer`, redialing with backoff.
async fn dial_loop(mesh: Weak<Mesh>, peer: PartyId, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(m) = mesh.upgrade() else { return };
        if let Some(conn) = m.live_conn(peer) {
            drop(m);
            tokio::select! {
                _ = conn.closed() => {}
                _ = shutdown.changed() => return,
            }
            tracing::info!(peer, "connection to peer party lost; redialing");
            backoff = MIN_BACKOFF;
            continue;
        }
        let (endpoint, identity, info) = (m.endpoint.clone(), m.identity.clone(), m.peers[peer]);
        drop(m);
        let dialed = tokio::select! {
            r = connect(&endpoint, info.addr, info.pin, Some(&identity)) => r,
            _ = shutdown.changed() => return,
        };
        match dialed {
            Ok(conn) => {
                let Some(m) = mesh.upgrade() else { return };
                tracing::info!(peer, addr = %info.addr, "connected to peer party");
                m.install(peer, conn);
                backoff = MIN_BACKOFF;
            }
            Err(e) => {
                tracing::debug!(peer, addr = %info.addr, "dialing peer party failed: {e:#}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Accepts the session streams the lower-id `peer` opens on `conn` and parks them.
async fn accept_streams(
    mesh: Weak<Mesh>,
    peer: PartyId,
    conn: quinn::Connection,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = conn.accept_bi() => r,
            _ = shutdown.changed() => return,
        };
        let (mut send, mut recv) = match accepted {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(peer, "peer connection ended: {e}");
                return;
            }
        };
        let mesh = mesh.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            let header =
                match tokio::time::timeout(HEADER_TIMEOUT, read_frame(&mut recv, SESSION_HEADER))
                    .await
                {
                    Ok(Ok(h)) => h,
                    Ok(Err(e)) => {
                        tracing::warn!(peer, "bad session stream header: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(peer, "no session stream header within {HEADER_TIMEOUT:?}");
                        return;
                    }
                };
            if header.len() != SESSION_HEADER {
                tracing::warn!(
                    peer,
                    len = header.len(),
                    "session header: expected {SESSION_HEADER} bytes"
                );
                return;
            }
            let (session, theirs) = header.split_at(16);
            let session: [u8; 16] = session.try_into().expect("16 bytes");
            let theirs: Fingerprint = theirs.try_into().expect("32 bytes");
            let Some(mesh) = mesh.upgrade() else { return };
            let ours = mesh.fingerprint;
            let ack = if theirs == ours {
                vec![1]
            } else {
                [&[0u8][..], &ours].concat()
            };
            let sent = match write_frame(&mut send, &ack).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(peer, "cannot acknowledge a session stream: {e}");
                    return;
                }
            };
            let link = if theirs == ours {
                Ok(Link {
                    send,
                    recv,
                    _conn: conn,
                    sent,
                    received: (HEADER_LEN + header.len()) as u64,
                })
            } else {
                let _ = send.finish();
                let why = fingerprint_mismatch(mesh.me, &ours, peer, &theirs);
                tracing::warn!(peer, "{why}");
                Err(why)
            };
            mesh.park(peer, session, link);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::transport::{Counters, Expect, Outgoing, Transport};
    use crate::net::endpoint::{peer_pin, server_endpoint};
    use std::net::{Ipv4Addr, SocketAddr};

    const MSG_LEN: usize = 10 << 20;
    const FP: Fingerprint = [7; 32];

    fn message(from: PartyId, to: PartyId, round: u32) -> Vec<u8> {
        let seed = (from * 3 + to) as u32 * 1000 + round;
        (0..MSG_LEN as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) >> 13) ^ seed.wrapping_mul(97)) as u8)
            .collect()
    }

    struct Party {
        mesh: Arc<Mesh>,
        endpoint: quinn::Endpoint,
        accept: tokio::task::JoinHandle<()>,
    }

    fn start_party(
        me: PartyId,
        ids: &[Arc<Identity>; 3],
        peers: [PeerInfo; 3],
        bind: SocketAddr,
        fingerprint: Fingerprint,
    ) -> anyhow::Result<Party> {
        let pins: Vec<Pin> = (0..3).filter(|&p| p != me).map(|p| ids[p].pin()).collect();
        let endpoint = server_endpoint(bind, &ids[me], pins)?;
        let mesh = Mesh::start(me, endpoint.clone(), ids[me].clone(), peers, fingerprint);
        let all_pins: Vec<Pin> = ids.iter().map(|i| i.pin()).collect();
        let (ep, m) = (endpoint.clone(), mesh.clone());
        let accept = tokio::spawn(async move {
            while let Some(incoming) = ep.accept().await {
                let m = m.clone();
                let all_pins = all_pins.clone();
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    let Some(pin) = peer_pin(&conn) else { return };
                    if let Some(peer) = all_pins.iter().position(|p| *p == pin) {
                        m.add_incoming(peer, conn);
                    }
                });
            }
        });
        Ok(Party {
            mesh,
            endpoint,
            accept,
        })
    }

    /// Runs `rounds` rounds of `MSG_LEN`-byte messages both ways and one one-sided round;
    /// checks that each party's transport counted exactly the bytes of the frames it wrote
    /// and read (the session header or its acknowledgement included) and returns the
    /// counters.
    async fn run_session(meshes: [Arc<Mesh>; 3], session: [u8; 16], rounds: u32) -> Vec<Counters> {
        let mut tasks = Vec::new();
        for mesh in meshes {
            tasks.push(tokio::spawn(async move {
                let me = mesh.me();
                let mut t = mesh
                    .session(session, Duration::from_secs(20))
                    .await
                    .unwrap_or_else(|e| panic!("party {me}: {e:#}"));
                let (next, prev) = (Peer::Next.of(me), Peer::Prev.of(me));
                for r in 0..rounds {
                    let out = Outgoing {
                        next: Some(message(me, next, r)),
                        prev: Some(message(me, prev, r)),
                    };
                    let got = t
                        .round(
                            out,
                            Expect {
                                next: true,
                                prev: true,
                            },
                        )
                        .await
                        .unwrap_or_else(|e| panic!("party {me} round {r}: {e}"));
                    assert!(
                        got.next.unwrap() == message(next, me, r),
                        "party {me} round {r} from next"
                    );
                    assert!(
                        got.prev.unwrap() == message(prev, me, r),
                        "party {me} round {r} from prev"
                    );
                }
                // A round with one-sided traffic: send to next only, receive from prev only.
                let out = Outgoing {
                    next: Some(vec![me as u8; 3]),
                    prev: None,
                };
                let got = t
                    .round(
                        out,
                        Expect {
                            next: false,
                            prev: true,
                        },
                    )
                    .await
                    .unwrap();
                assert!(got.next.is_none());
                assert_eq!(got.prev.unwrap(), vec![prev as u8; 3]);
                // On the wire, a frame is a 4-byte length and its payload. Toward a higher
                // id this party wrote the 48-byte session header (id and fingerprint) and read the 1-byte
                // acknowledgement; toward a lower id the other way around.
                let frame = |len: usize| (4 + len) as u64;
                let (mut sent, mut received) = (0, 0);
                for peer in [next, prev] {
                    let (out, back) = if peer > me { (48, 1) } else { (1, 48) };
                    sent += frame(out);
                    received += frame(back);
                }
                let big = 2 * rounds as u64 * frame(MSG_LEN);
                let c = t.counters();
                assert_eq!(c.rounds, rounds as u64 + 1, "party {me}");
                assert_eq!(c.bytes_sent, sent + big + frame(3), "party {me}");
                assert_eq!(c.bytes_received, received + big + frame(3), "party {me}");
                t.finish();
                c
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    /// Three party identities and a peer table of free loopback ports (bound first to learn
    /// the ports, then released for the meshes to take).
    fn identities_and_peers() -> ([Arc<Identity>; 3], [PeerInfo; 3]) {
        let ids: [Arc<Identity>; 3] =
            std::array::from_fn(|i| Arc::new(Identity::generate(&format!("party{i}")).unwrap()));
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let probes: Vec<std::net::UdpSocket> = (0..3)
            .map(|_| std::net::UdpSocket::bind(local).unwrap())
            .collect();
        let addrs: Vec<SocketAddr> = probes.iter().map(|s| s.local_addr().unwrap()).collect();
        drop(probes);
        let peers = std::array::from_fn(|i| PeerInfo {
            addr: addrs[i],
            pin: ids[i].pin(),
        });
        (ids, peers)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_party_sessions_survive_a_restart() {
        let (ids, peers) = identities_and_peers();
        let mut parties: Vec<Party> = (0..3)
            .map(|i| start_party(i, &ids, peers, peers[i].addr, FP).unwrap())
            .collect();

        let meshes = || -> [Arc<Mesh>; 3] { std::array::from_fn(|i| parties[i].mesh.clone()) };
        let udp_before: Vec<u64> = parties.iter().map(|p| p.mesh.udp_sent()).collect();
        let counted = run_session(meshes(), [1; 16], 3).await;
        // QUIC sends the counted stream bytes and its own packet headers, tags and
        // acknowledgements (and any retransmissions); all three parties are done, so every
        // counted byte has gone out.
        for (i, c) in counted.iter().enumerate() {
            let udp = parties[i].mesh.udp_sent() - udp_before[i];
            eprintln!("party {i}: {} bytes counted, {udp} UDP bytes", c.bytes_sent);
            assert!(
                c.bytes_sent <= udp && udp < 3 * c.bytes_sent,
                "party {i}: {} bytes counted, {udp} UDP bytes sent",
                c.bytes_sent
            );
        }
        assert!(parties[0].mesh.connected(1) && parties[0].mesh.connected(2));
        assert!(parties[1].mesh.connected(0) && parties[2].mesh.connected(0));

        // Restart party 1 (dialed by 0, dials 2) on the same port.
        let old = parties.remove(1);
        old.mesh.shutdown();
        old.accept.abort();
        old.endpoint.close(0u32.into(), b"restart");
        old.endpoint.wait_idle().await;
        drop(old);
        let mut restarted = None;
        for _ in 0..50 {
            match start_party(1, &ids, peers, peers[1].addr, FP) {
                Ok(p) => {
                    restarted = Some(p);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        parties.insert(1, restarted.expect("rebinding party 1's port"));

        run_session(std::array::from_fn(|i| parties[i].mesh.clone()), [2; 16], 1).await;
        for p in &parties {
            p.mesh.shutdown();
            p.endpoint.close(0u32.into(), b"done");
        }
    }

    #[tokio::test]
    async fn unreachable_party_is_named() {
        let ids: [Arc<Identity>; 3] =
            std::array::from_fn(|i| Arc::new(Identity::generate(&format!("party{i}")).unwrap()));
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let probes: Vec<std::net::UdpSocket> = (0..3)
            .map(|_| std::net::UdpSocket::bind(local).unwrap())
            .collect();
        let peers: [PeerInfo; 3] = std::array::from_fn(|i| PeerInfo {
            addr: probes[i].local_addr().unwrap(),
            pin: ids[i].pin(),
        });
        // Only party 0 runs; the probe sockets stay bound and silent.
        let endpoint = server_endpoint(local, &ids[0], vec![]).unwrap();
        let mesh = Mesh::start(0, endpoint.clone(), ids[0].clone(), peers, FP);
        let err = mesh
            .session([9; 16], Duration::from_millis(300))
            .await
            .expect_err("no peer is up");
        let msg = format!("{err:#}");
        assert!(msg.contains("party 1") || msg.contains("party 2"), "{msg}");
        assert!(msg.contains("unreachable"), "{msg}");
        assert!(!mesh.connected(1) && !mesh.connected(2));
        mesh.shutdown();
        endpoint.close(0u32.into(), b"done");
    }

    /// The cluster files of party 2 and of parties 0 and 1 differ in one dataset limit.
    fn clusters() -> (Fingerprint, Fingerprint) {
        let text = |min_cohort: u32| {
            let mut t = String::new();
            t.push_str("[coordinator]\naddr = \"10.0.0.4:7000\"\n");
            t.push_str(&format!("pin = \"{}\"\n", "a".repeat(64)));
            for i in 0..3 {
                t.push_str(&format!(
                    "[[parties]]\naddr = \"10.0.0.{i}:7100\"\npin = \"{}\"\n",
                    i.to_string().repeat(64)
                ));
            }
            t.push_str(&format!(
                "[notary]\naddr = \"10.0.0.5:7200\"\npin = \"{}\"\n",
                "b".repeat(64)
            ));
            t.push_str("[[dataset]]\nname = \"d\"\nscale = 2\nmax = \"100\"\nproof = \"none\"\n");
            t.push_str(&format!("min_cohort = {min_cohort}\n"));
            let c: crate::config::Cluster = toml::from_str(&t).unwrap();
            c.validate().unwrap();
            crate::fingerprint::of(&c)
        };
        (text(5), text(6))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parties_whose_cluster_files_differ_refuse_the_session() {
        let (same, other) = clusters();
        assert_ne!(same, other);
        let (ids, peers) = identities_and_peers();
        let fps = [same, same, other];
        let parties: Vec<Party> = (0..3)
            .map(|i| start_party(i, &ids, peers, peers[i].addr, fps[i]).unwrap())
            .collect();
        let mut tasks = Vec::new();
        for p in &parties {
            let mesh = p.mesh.clone();
            tasks.push(tokio::spawn(async move {
                mesh.session([3; 16], Duration::from_secs(5))
                    .await
                    .map(|_| ())
            }));
        }
        // Every party has party 2 as a neighbour, so every party refuses: 0 and 1 because
        // party 2 answered their header with its other fingerprint (or sent it), 2 because
        // both of its neighbours did.
        for (i, t) in tasks.into_iter().enumerate() {
            let err = format!(
                "{:#}",
                t.await.unwrap().expect_err("a mismatched session runs")
            );
            assert!(
                err.contains("cluster fingerprint check failed"),
                "party {i}: {err}"
            );
            let (mine, theirs) = if i == 2 { (other, same) } else { (same, other) };
            assert!(
                err.contains(&format!("this party (party {i}) runs {}", show(&mine))),
                "party {i}: {err}"
            );
            assert!(
                err.contains(&format!("runs cluster {}", show(&theirs))),
                "party {i}: {err}"
            );
            assert!(!err.contains("unreachable"), "party {i}: {err}");
        }
        for p in &parties {
            p.mesh.shutdown();
            p.endpoint.close(0u32.into(), b"done");
        }
    }
}
