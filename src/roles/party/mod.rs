//! `mpcstats party --id N`: a computation party. It stores its share pairs in its own SQLite
//! database, checks every contribution with the two other parties, and computes statistics
//! in MPC sessions over the party mesh.
//!
//! One QUIC endpoint serves three kinds of peers, told apart by client-certificate pin:
//! the coordinator (control requests), the other parties (the mesh) and anonymous clients
//! (providers submitting share pairs, consumers fetching result pairs, both with tickets).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use super::drain::{self, Drain};
use crate::config::Cluster;
use crate::engine::PartyId;
use crate::net::endpoint::{peer_pin, server_endpoint};
use crate::net::frame::{recv_msg, send_msg, MAX_CONTROL_FRAME};
use crate::net::identity::Identity;
use crate::net::mesh::{Mesh, PeerInfo};
use crate::store::party::{PartyStore, Release};
use crate::wire::{short, Control, ControlReply, FromParty, Id, Ticket, TicketHash, ToParty};

/// Bound on checking a provider's submission once it arrived (a proven one runs an MPC).
const EXPECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a party waits for its neighbours to join an MPC session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a computed result waits to be fetched.
const RESULT_TTL: Duration = Duration::from_secs(600);

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example (after `mpcstats init --out deploy`, on the host of party 1):
  mpcstats party --id 1 --cluster deploy/cluster.toml
Key, certificate and database default to deploy/party1.key.pem, deploy/party1.cert.pem and
deploy/party1.db. Stop with Ctrl-C or SIGTERM; nothing acknowledged is lost: new sessions
are refused, those in flight finish for up to 10 s, the rest fail, then it exits 0.

Ports (UDP: every link is QUIC; answers return on the same flow):
  party <- coordinator: UDP to this party's address (control requests)
  party <-> party mesh: the lower id dials the higher one (party 0 -> 1, 0 -> 2, 1 -> 2),
    UDP to the higher party's address
  party <- providers (share submissions), consumers and api (result fetches): UDP to this
    party's address")]
pub struct Args {
    /// This party's id: 0, 1 or 2
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..3))]
    pub id: u8,
    /// Private key [default: partyN.key.pem beside the cluster file]
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Certificate [default: partyN.cert.pem beside the cluster file]
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// SQLite database [default: partyN.db beside the cluster file]
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Address to listen on [default: this party's address in the cluster file]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
}

/// Everything a party needs to run.
pub struct PartyOptions {
    pub id: PartyId,
    pub cluster: Cluster,
    pub identity: Identity,
    pub db: PathBuf,
}

pub async fn run(cluster_flag: Option<&Path>, args: Args) -> Result<()> {
    let file = Cluster::locate(cluster_flag);
    let cluster = Cluster::load(&file)?;
    let id = args.id as usize;
    let name = format!("party{id}");
    let cert = args
        .cert
        .unwrap_or_else(|| super::beside(&file, &format!("{name}.cert.pem")));
    let key = args
        .key
        .unwrap_or_else(|| super::beside(&file, &format!("{name}.key.pem")));
    info!(
        "party {id}: cluster fingerprint: {}",
        crate::fingerprint::show(&crate::fingerprint::of(&cluster))
    );
    let identity = Identity::load(&cert, &key)?;
    if identity.pin() != cluster.party_pin(id) {
        bail!(
            "{} is not the certificate of party {id} in {} (its pin differs)",
            cert.display(),
            file.display()
        );
    }
    let db = args
        .db
        .unwrap_or_else(|| super::beside(&file, &format!("{name}.db")));
    let listen = args.listen.unwrap_or(cluster.parties[id].addr);
    let endpoint = party_endpoint(&cluster, id, &identity, listen)?;
    let server = serve(
        PartyOptions {
            id,
            cluster,
            identity,
            db,
        },
        endpoint,
    )
    .await?;
    info!("party {id} listening on {}", server.addr);
    super::shutdown_signal().await;
    info!("party {id} shutting down");
    server.shutdown().await;
    Ok(())
}

/// The QUIC endpoint of party `id`: serves anonymous clients, the coordinator and the peers.
pub fn party_endpoint(
    cluster: &Cluster,
    id: PartyId,
    identity: &Identity,
    listen: SocketAddr,
) -> Result<Endpoint> {
    let mut allowed = vec![cluster.coordinator_pin()];
    allowed.extend((0..3).filter(|&j| j != id).map(|j| cluster.party_pin(j)));
    server_endpoint(listen, identity, allowed)
        .with_context(|| format!("party {id} cannot listen on {listen}"))
}

/// A running party.
pub struct PartyServer {
    pub addr: SocketAddr,
    endpoint: Endpoint,
    accept: tokio::task::JoinHandle<()>,
    state: Arc<State>,
}

impl PartyServer {
    /// Closes every connection and stops accepting, at once (sessions in flight fail).
    pub async fn stop(self) {
        self.endpoint.close(0u32.into(), b"party shutting down");
        self.accept.abort();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }

    /// Stops gracefully (SIGTERM): refuses new sessions, lets those in flight finish for up
    /// to [`drain::DRAIN_TIME`], fails the rest, then stops.
    pub async fn shutdown(self) {
        let s = self
            .state
            .drain
            .stop(drain::DRAIN_TIME, drain::ABORT_TIME)
            .await;
        info!(
            in_flight = s.in_flight,
            aborted = s.aborted,
            left = s.left,
            "party {} drained",
            self.state.id
        );
        self.stop().await;
    }

    /// Queries the coordinator asked this party to run since it started.
    pub fn queries_run(&self) -> u64 {
        self.state
            .queries
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Committed contributions of `dataset` in this party's store, for tests and status.
    pub fn committed_count(&self, dataset: &str) -> Result<u64> {
        Ok(self
            .state
            .store
            .committed_counts()?
            .into_iter()
            .find(|(d, _)| d == dataset)
            .map_or(0, |(_, n)| n))
    }

    /// Rows in this party's store (pending and committed), for tests.
    pub fn stored_rows(&self) -> Result<u64> {
        self.state.store.rows()
    }
}

mod intake;
mod query;

use intake::Submission;

struct Expected {
    dataset: String,
    ticket_hash: TicketHash,
    /// The attestation id the coordinator checked (proven contributions).
    attestation: Option<[u8; 32]>,
    /// Fired when the provider's submission arrives (before its checks).
    received: oneshot::Sender<()>,
    done: oneshot::Sender<Result<(), String>>,
}

type Outcome = Result<(u64, Release), String>;

struct ResultSlot {
    ticket_hash: TicketHash,
    tx: watch::Sender<Option<Outcome>>,
    created: Instant,
}

struct State {
    id: PartyId,
    /// The fingerprint of this party's cluster file.
    fingerprint: crate::fingerprint::Fingerprint,
    /// Key of the keyed hash this party keeps of every proven account id (sybil stop).
    account_key: [u8; 32],
    cluster: Cluster,
    store: PartyStore,
    mesh: Arc<Mesh>,
    expected: Mutex<HashMap<Id, Expected>>,
    results: Mutex<HashMap<Id, ResultSlot>>,
    /// Queries the coordinator asked this party to run (tests and status).
    queries: std::sync::atomic::AtomicU64,
    /// Sessions in flight (expected submissions, queries) and the graceful stop.
    drain: Arc<Drain>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a control reply may take to be acknowledged by the coordinator: the session
/// stays in flight until then, so a stopping party does not close the connection under it.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Ends a control stream after its last reply and waits (a little) until the coordinator
/// has it.
async fn finish(send: &mut SendStream) {
    if send.finish().is_ok() {
        let _ = tokio::time::timeout(FLUSH_TIMEOUT, send.stopped()).await;
    }
}

/// SHA-256 of a ticket, as the coordinator announces it.
pub fn ticket_hash(ticket: &Ticket) -> TicketHash {
    Sha256::digest(ticket).into()
}

/// Starts party `opts.id` on `endpoint` (see [`party_endpoint`]).
pub async fn serve(opts: PartyOptions, endpoint: Endpoint) -> Result<PartyServer> {
    let store = PartyStore::open(&opts.db)?;
    let peers: [PeerInfo; 3] = std::array::from_fn(|j| PeerInfo {
        addr: opts.cluster.parties[j].addr,
        pin: opts.cluster.party_pin(j),
    });
    let account_key: [u8; 32] = {
        let mut h = Sha256::new();
        h.update(b"mpcstats/account-tag/v1");
        h.update(opts.identity.key_der.secret_pkcs8_der());
        h.finalize().into()
    };
    let fingerprint = crate::fingerprint::of(&opts.cluster);
    let mesh = Mesh::start(
        opts.id,
        endpoint.clone(),
        Arc::new(opts.identity),
        peers,
        fingerprint,
    );
    let state = Arc::new(State {
        id: opts.id,
        fingerprint,
        account_key,
        cluster: opts.cluster,
        store,
        mesh,
        expected: Mutex::new(HashMap::new()),
        results: Mutex::new(HashMap::new()),
        queries: std::sync::atomic::AtomicU64::new(0),
        drain: Drain::new(),
    });
    let addr = endpoint.local_addr()?;
    let accept = tokio::spawn(accept_loop(endpoint.clone(), state.clone()));
    Ok(PartyServer {
        addr,
        endpoint,
        accept,
        state,
    })
}

async fn accept_loop(endpoint: Endpoint, state: Arc<State>) {
    while let Some(incoming) = endpoint.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    debug!("handshake failed: {e}");
                    return;
                }
            };
            let pin = peer_pin(&conn);
            if pin.is_some() && pin == Some(state.cluster.coordinator_pin()) {
                serve_streams(conn, state, Caller::Coordinator).await;
            } else if let Some(j) =
                (0..3).find(|&j| j != state.id && pin == Some(state.cluster.party_pin(j)))
            {
                info!("party {j} connected from {}", conn.remote_address());
                state.mesh.add_incoming(j, conn);
            } else {
                serve_streams(conn, state, Caller::Client).await;
            }
        });
    }
}

#[derive(Clone, Copy)]
enum Caller {
    Coordinator,
    Client,
}

async fn serve_streams(conn: Connection, state: Arc<State>, caller: Caller) {
    // Whether the coordinator showed this party's cluster fingerprint on this connection.
    let hello = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(e) => {
                debug!("connection from {} ended: {e}", conn.remote_address());
                return;
            }
        };
        let state = state.clone();
        let hello = hello.clone();
        tokio::spawn(async move {
            let r = match caller {
                Caller::Coordinator => on_control(&state, &hello, send, recv).await,
                Caller::Client => on_client(&state, send, recv).await,
            };
            if let Err(e) = r {
                debug!("request failed: {e:#}");
            }
        });
    }
}

async fn on_control(
    state: &Arc<State>,
    hello: &std::sync::atomic::AtomicBool,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<()> {
    use crate::fingerprint::show;
    use std::sync::atomic::Ordering;
    let msg: Control = recv_msg(&mut recv, MAX_CONTROL_FRAME).await?;
    if let Control::Hello { fingerprint } = msg {
        let agree = fingerprint == state.fingerprint;
        hello.store(agree, Ordering::SeqCst);
        if !agree {
            warn!(
                "cluster fingerprint check failed: the coordinator runs cluster {}, this party \
                 (party {}) runs {}; refusing its control requests",
                show(&fingerprint),
                state.id,
                show(&state.fingerprint)
            );
        }
        let reply = ControlReply::Hello {
            fingerprint: state.fingerprint,
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        send_msg(&mut send, &reply).await?;
        let _ = send.finish();
        return Ok(());
    }
    if !hello.load(Ordering::SeqCst) {
        let reason = format!(
            "cluster fingerprint check failed: the coordinator has not shown this party's \
             cluster fingerprint {} on this connection (party {}); their cluster.toml files \
             differ or it sent no Hello",
            show(&state.fingerprint),
            state.id
        );
        send_msg(&mut send, &ControlReply::Failed { reason }).await?;
        let _ = send.finish();
        return Ok(());
    }
    let starts_session = matches!(msg, Control::Expect { .. } | Control::RunQuery { .. });
    if starts_session && state.drain.closing() {
        let reason = format!("party {}: {}", state.id, drain::SHUTTING_DOWN);
        send_msg(&mut send, &ControlReply::Failed { reason }).await?;
        let _ = send.finish();
        return Ok(());
    }
    let _session = starts_session.then(|| state.drain.session());
    let reply = match msg {
        Control::Expect {
            contribution,
            dataset,
            ticket_hash,
            attestation,
        } => {
            if let Err(e) = state.cluster.dataset(&dataset) {
                send_msg(
                    &mut send,
                    &ControlReply::Failed {
                        reason: format!("{e:#}"),
                    },
                )
                .await?;
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            let (received_tx, received_rx) = oneshot::channel();
            lock(&state.expected).insert(
                contribution,
                Expected {
                    dataset,
                    ticket_hash,
                    attestation,
                    received: received_tx,
                    done: tx,
                },
            );
            send_msg(&mut send, &ControlReply::Accepted).await?;
            // The provider has the ticket timeout to deliver; an unused ticket frees this
            // party's pending state when it runs out.
            let ticket_timeout = state.cluster.limits.ticket_timeout();
            let received = tokio::select! {
                r = tokio::time::timeout(ticket_timeout, received_rx) => r,
                _ = state.drain.aborted() => {
                    lock(&state.expected).remove(&contribution);
                    let reason = format!("party {} shut down before the submission", state.id);
                    send_msg(&mut send, &ControlReply::Failed { reason }).await?;
                    finish(&mut send).await;
                    return Ok(());
                }
            };
            match received {
                Ok(Ok(())) => {
                    send_msg(&mut send, &ControlReply::Received).await?;
                    match tokio::time::timeout(EXPECT_TIMEOUT, rx).await {
                        Ok(Ok(Ok(()))) => ControlReply::Prepared,
                        Ok(Ok(Err(reason))) => ControlReply::Failed { reason },
                        Ok(Err(_)) => ControlReply::Failed {
                            reason: "the submission was dropped".into(),
                        },
                        Err(_) => ControlReply::Failed {
                            reason: format!(
                                "the submission's checks took more than {} s",
                                EXPECT_TIMEOUT.as_secs()
                            ),
                        },
                    }
                }
                Ok(Err(_)) => ControlReply::Failed {
                    reason: "the submission was dropped".into(),
                },
                Err(_) => {
                    lock(&state.expected).remove(&contribution);
                    ControlReply::Failed {
                        reason: format!(
                            "no submission within {} s (ticket_timeout_secs)",
                            ticket_timeout.as_secs()
                        ),
                    }
                }
            }
        }
        Control::Commit { contribution, seq } => match state.store.commit(&contribution, seq) {
            Ok(()) => ControlReply::Ack,
            Err(e) => ControlReply::Failed {
                reason: format!("{e:#}"),
            },
        },
        Control::Abort { contribution } => {
            lock(&state.expected).remove(&contribution);
            match state.store.abort(&contribution) {
                Ok(()) => ControlReply::Ack,
                Err(e) => ControlReply::Failed {
                    reason: format!("{e:#}"),
                },
            }
        }
        Control::RunQuery {
            session,
            spec,
            epoch,
            ticket_hash,
        } => {
            state
                .queries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            send_msg(&mut send, &ControlReply::Accepted).await?;
            let tx = watch::Sender::new(None);
            {
                let mut results = lock(&state.results);
                results.retain(|_, s| s.created.elapsed() < RESULT_TTL);
                results.insert(
                    session,
                    ResultSlot {
                        ticket_hash,
                        tx: tx.clone(),
                        created: Instant::now(),
                    },
                );
            }
            let outcome = tokio::select! {
                r = query::answer(state, session, &spec, epoch) => r
                    .map(|r| (epoch, r))
                    .map_err(|e| format!("{e:#}")),
                _ = state.drain.aborted() => {
                    Err(format!("party {} shut down during the computation", state.id))
                }
            };
            let reply = match &outcome {
                Ok(_) => ControlReply::QueryDone,
                Err(reason) => {
                    warn!(
                        "query {} ({} over {}) failed: {reason}",
                        short(&session),
                        spec.stat,
                        spec.dataset
                    );
                    ControlReply::Failed {
                        reason: reason.clone(),
                    }
                }
            };
            tx.send_replace(Some(outcome));
            reply
        }
        Control::Status => match state.store.committed_counts() {
            Ok(committed) => ControlReply::Status {
                committed,
                sessions: state.drain.in_flight() as u32,
            },
            Err(e) => ControlReply::Failed {
                reason: format!("{e:#}"),
            },
        },
        // Answered above, before the check.
        Control::Hello { fingerprint } => ControlReply::Hello {
            fingerprint,
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
    };
    send_msg(&mut send, &reply).await?;
    finish(&mut send).await;
    Ok(())
}

async fn on_client(state: &Arc<State>, mut send: SendStream, mut recv: RecvStream) -> Result<()> {
    let msg: ToParty = match recv_msg(&mut recv, MAX_CONTROL_FRAME).await {
        Ok(m) => m,
        Err(e) => {
            let reason = format!("malformed request: {e}");
            send_msg(&mut send, &FromParty::Refused { reason }).await?;
            let _ = send.finish();
            return Ok(());
        }
    };
    let reply = match msg {
        ToParty::Submit {
            contribution,
            ticket,
            a,
            b,
        } => intake::on_submit(state, contribution, ticket, Submission::Plain { a, b }).await,
        ToParty::SubmitProven(p) => {
            let (contribution, ticket) = (p.contribution, p.ticket);
            intake::on_submit(state, contribution, ticket, Submission::Proven(p)).await
        }
        ToParty::FetchResult { session, ticket } => on_fetch(state, session, ticket).await,
    };
    send_msg(&mut send, &reply).await?;
    let _ = send.finish();
    Ok(())
}

async fn on_fetch(state: &Arc<State>, session: Id, ticket: Ticket) -> FromParty {
    // The consumer may ask before the coordinator's RunQuery arrived here: wait a little.
    let deadline = Instant::now() + SESSION_TIMEOUT;
    let mut rx = loop {
        {
            let results = lock(&state.results);
            if let Some(slot) = results.get(&session) {
                if slot.ticket_hash != ticket_hash(&ticket) {
                    return FromParty::Refused {
                        reason: "the ticket does not match this query".into(),
                    };
                }
                break slot.tx.subscribe();
            }
        }
        if Instant::now() > deadline {
            return FromParty::Refused {
                reason: "unknown query session".into(),
            };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let outcome = match rx.wait_for(|o| o.is_some()).await {
        Ok(o) => o.clone().expect("checked"),
        Err(_) => Err("the computation was dropped".into()),
    };
    lock(&state.results).remove(&session);
    match outcome {
        Ok((epoch, r)) => FromParty::Result {
            count: r.count,
            epoch,
            pairs: r.pairs,
            spent: r.spent,
            security: state.cluster.security,
        },
        Err(reason) => FromParty::Refused { reason },
    }
}
