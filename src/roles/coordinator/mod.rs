//! `mpcstats coordinator`: admission and orchestration. It issues single-use tickets, tells
//! the parties what to expect, decides (two-phase) whether a contribution counts, admits
//! queries over a snapshot of committed contributions, queues and rate-limits. It never
//! receives a share, a key share or a result. Every client request gets one log line
//! (`request`, `peer`, `outcome`, `reason`); on SIGTERM it drains (see `roles::drain`).
//!
//! This file holds the server, the dispatch of requests, rate limits, queue slots and the
//! status report; `contribute` one contribution's two phases and decision, `query` one
//! query, `link` the control link to one party.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use quinn::{Endpoint, RecvStream, SendStream};
use rand::RngCore;
use tracing::{debug, info};

use super::admission::{Busy, Caps, Queue, Slot};
use super::drain::{self, Drain};
use super::ratelimit::{Kind, RateLimiter};
use crate::config::Cluster;
use crate::net::endpoint::server_endpoint;
use crate::net::frame::{recv_msg, send_msg, MAX_CONTROL_FRAME};
use crate::net::identity::Identity;
use crate::store::coordinator::CoordinatorStore;
use crate::wire::{
    short, ContributionOutcome, Control, ControlReply, FromCoordinator, Load, StatusReport,
    ToCoordinator,
};

mod contribute;
mod link;
mod query;

use contribute::{abort_everywhere, deliver_decisions, on_share_intent};
use link::PartyLink;
use query::on_query;

/// Bound on one control exchange with a party (connect, send, first answer).
const PARTY_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a party's check of a submission that arrived (the MPC of a proven one).
const PREPARE_TIMEOUT: Duration = Duration::from_secs(90);
/// Grace beyond the ticket timeout for a party's own "no submission" verdict to arrive.
const TICKET_GRACE: Duration = Duration::from_secs(5);
/// How often a waiting client hears its queue position.
const POSITION_EVERY: Duration = Duration::from_secs(1);

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example (after `mpcstats init --out deploy`):
  mpcstats coordinator --cluster deploy/cluster.toml
Key, certificate and database default to coordinator.key.pem, coordinator.cert.pem and
coordinator.db beside the cluster file. Rate limits and queue sizes are in [limits] of
cluster.toml. On SIGTERM it refuses new requests, lets contributions and queries in flight
finish for up to 10 s, aborts the contributions still undecided (recorded with the reason),
then exits 0.

Ports (UDP: every link is QUIC; answers return on the same flow):
  coordinator <- providers (share), consumers (query), api, status: UDP to its address
  coordinator -> party 0, 1, 2: UDP to each party's address
Providers and consumers also reach the parties directly (see `mpcstats party --help`).")]
pub struct Args {
    /// Private key [default: coordinator.key.pem beside the cluster file]
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Certificate [default: coordinator.cert.pem beside the cluster file]
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// SQLite database [default: coordinator.db beside the cluster file]
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Address to listen on [default: the coordinator's address in the cluster file]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
}

pub struct CoordinatorOptions {
    pub cluster: Cluster,
    pub identity: Identity,
    pub db: PathBuf,
}

pub async fn run(cluster_flag: Option<&Path>, args: Args) -> Result<()> {
    let file = Cluster::locate(cluster_flag);
    let cluster = Cluster::load(&file)?;
    info!(
        "coordinator: cluster fingerprint: {}",
        crate::fingerprint::show(&crate::fingerprint::of(&cluster))
    );
    let cert = args
        .cert
        .unwrap_or_else(|| super::beside(&file, "coordinator.cert.pem"));
    let key = args
        .key
        .unwrap_or_else(|| super::beside(&file, "coordinator.key.pem"));
    let identity = Identity::load(&cert, &key)?;
    if identity.pin() != cluster.coordinator_pin() {
        bail!(
            "{} is not the coordinator's certificate in {}",
            cert.display(),
            file.display()
        );
    }
    let db = args
        .db
        .unwrap_or_else(|| super::beside(&file, "coordinator.db"));
    let listen = args.listen.unwrap_or(cluster.coordinator.addr);
    let endpoint = server_endpoint(listen, &identity, vec![])
        .with_context(|| format!("the coordinator cannot listen on {listen}"))?;
    let server = serve(
        CoordinatorOptions {
            cluster,
            identity,
            db,
        },
        endpoint,
    )
    .await?;
    info!("coordinator listening on {}", server.addr);
    super::shutdown_signal().await;
    info!("coordinator shutting down");
    server.shutdown().await;
    Ok(())
}

/// A running coordinator.
pub struct CoordinatorServer {
    pub addr: SocketAddr,
    endpoint: Endpoint,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    state: Arc<State>,
}

impl CoordinatorServer {
    /// Stops gracefully (SIGTERM): refuses new share intents and queries, lets the sessions
    /// in flight finish for up to [`drain::DRAIN_TIME`], aborts the contributions still
    /// undecided (recorded with their reason, delivered to the parties), then stops.
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
            "coordinator drained"
        );
        self.stop().await;
    }

    /// Stops at once: closes every connection (sessions in flight fail; a contribution left
    /// undecided is aborted at the next start).
    pub async fn stop(self) {
        self.endpoint
            .close(0u32.into(), b"coordinator shutting down");
        for t in &self.tasks {
            t.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

struct State {
    cluster: Cluster,
    store: CoordinatorStore,
    parties: Vec<PartyLink>,
    limiter: RateLimiter,
    contributions: Arc<Queue>,
    queries: Arc<Queue>,
    /// Tickets issued and not yet decided, per client address.
    tickets: Arc<Caps>,
    /// One lock per release (dataset, epoch, query) being computed: see [`release_lock`].
    releases: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    /// Contributions and queries in flight, and the graceful stop.
    drain: Arc<Drain>,
}

/// One client request, for its single log line: what it asked and from where (never its
/// body).
#[derive(Clone, Copy)]
struct Req {
    kind: &'static str,
    ip: IpAddr,
}

impl Req {
    fn refused(&self, reason: &str) {
        info!(
            request = self.kind,
            peer = %self.ip,
            outcome = "refused",
            reason = %reason,
            "request refused"
        );
    }
}

pub async fn serve(opts: CoordinatorOptions, endpoint: Endpoint) -> Result<CoordinatorServer> {
    let store = CoordinatorStore::open(&opts.db)?;
    let aborted = store.abort_undecided()?;
    if !aborted.is_empty() {
        info!(
            "aborted {} contributions left undecided by a restart",
            aborted.len()
        );
    }
    let identity = Arc::new(opts.identity);
    let parties = (0..3)
        .map(|i| PartyLink {
            id: i,
            addr: opts.cluster.parties[i].addr,
            pin: opts.cluster.party_pin(i),
            endpoint: endpoint.clone(),
            identity: identity.clone(),
            conn: tokio::sync::Mutex::new(None),
            fingerprint: crate::fingerprint::of(&opts.cluster),
            seen: Mutex::new(None),
        })
        .collect();
    let limits = opts.cluster.limits.clone();
    let limiter = RateLimiter::load(&limits, &store)?;
    let state = Arc::new(State {
        cluster: opts.cluster,
        store,
        parties,
        limiter,
        contributions: Queue::new(
            limits.concurrent_contributions as usize,
            limits.contribution_queue as usize,
        ),
        queries: Queue::new(
            limits.concurrent_queries as usize,
            limits.query_queue as usize,
        ),
        tickets: Caps::new(limits.tickets_per_address),
        releases: Mutex::new(HashMap::new()),
        drain: Drain::new(),
    });
    for id in aborted {
        let state = state.clone();
        tokio::spawn(async move { abort_everywhere(&state, &id).await });
    }
    let addr = endpoint.local_addr()?;
    let accept = tokio::spawn(accept_loop(endpoint.clone(), state.clone()));
    let deliver = tokio::spawn({
        let state = state.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                for p in 0..3 {
                    if let Err(e) = deliver_decisions(&state, p).await {
                        debug!("commit delivery: {e:#}");
                    }
                }
            }
        }
    });
    Ok(CoordinatorServer {
        addr,
        endpoint,
        tasks: vec![accept, deliver],
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
            loop {
                let (send, recv) = match conn.accept_bi().await {
                    Ok(s) => s,
                    Err(_) => return,
                };
                let state = state.clone();
                let ip = conn.remote_address().ip();
                tokio::spawn(async move {
                    if let Err(e) = on_request(&state, ip, send, recv).await {
                        debug!("request from {ip} failed: {e:#}");
                    }
                });
            }
        });
    }
}

/// How long a final answer may take to be acknowledged by the client: the session stays in
/// flight until then, so a stopping coordinator does not close the connection under it.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Ends the stream after a final answer and waits (a little) until the client has it.
async fn finish(send: &mut SendStream) {
    if send.finish().is_ok() {
        let _ = tokio::time::timeout(FLUSH_TIMEOUT, send.stopped()).await;
    }
}

/// Refuses `req` with `reason`: logs it and tells the client.
async fn refuse(send: &mut SendStream, req: Req, reason: impl Into<String>) -> Result<()> {
    let reason = reason.into();
    req.refused(&reason);
    send_msg(send, &FromCoordinator::Refused { reason }).await?;
    finish(send).await;
    Ok(())
}

async fn on_request(
    state: &Arc<State>,
    ip: IpAddr,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<()> {
    let msg: ToCoordinator = match recv_msg(&mut recv, MAX_CONTROL_FRAME).await {
        Ok(m) => m,
        Err(e) => {
            let req = Req {
                kind: "malformed",
                ip,
            };
            return refuse(&mut send, req, format!("malformed request: {e}")).await;
        }
    };
    let kind = match &msg {
        ToCoordinator::ShareIntent { .. } => "share_intent",
        ToCoordinator::ProvenIntent { .. } => "proven_intent",
        ToCoordinator::Query { .. } => "query",
        ToCoordinator::Status => "status",
        ToCoordinator::Outcome { .. } => "outcome",
    };
    let req = Req { kind, ip };
    let exempt = matches!(msg, ToCoordinator::Status | ToCoordinator::Outcome { .. });
    if !exempt && state.drain.closing() {
        return refuse(&mut send, req, drain::SHUTTING_DOWN).await;
    }
    // Status and outcome requests start no work: they cost no token.
    let kinds: &[Kind] = match msg {
        ToCoordinator::ShareIntent { .. } | ToCoordinator::ProvenIntent { .. } => {
            &[Kind::Any, Kind::Intent]
        }
        ToCoordinator::Query { .. } => &[Kind::Any, Kind::Query],
        ToCoordinator::Status | ToCoordinator::Outcome { .. } => &[],
    };
    if let Err(limited) = state.limiter.take(ip, kinds, &state.store)? {
        return refuse(&mut send, req, limited.to_string()).await;
    }
    match msg {
        ToCoordinator::ShareIntent {
            dataset,
            ticket_hash,
        } => on_share_intent(state, req, dataset, None, ticket_hash, send).await,
        ToCoordinator::ProvenIntent {
            dataset,
            attestation,
            ticket_hash,
        } => on_share_intent(state, req, dataset, Some(attestation), ticket_hash, send).await,
        ToCoordinator::Outcome { contribution } => {
            let outcome = state
                .store
                .outcome(&contribution)?
                .unwrap_or(ContributionOutcome::Unknown);
            let decided = match &outcome {
                ContributionOutcome::Committed { .. } => "committed",
                ContributionOutcome::Aborted { .. } => "aborted",
                ContributionOutcome::Pending => "pending",
                ContributionOutcome::Unknown => "unknown",
            };
            info!(
                request = kind,
                peer = %ip,
                outcome = "admitted",
                contribution = %short(&contribution),
                decided,
                "outcome answered"
            );
            send_msg(&mut send, &FromCoordinator::Outcome(outcome)).await?;
            let _ = send.finish();
            Ok(())
        }
        ToCoordinator::Query { spec, result_hash } => {
            on_query(state, req, spec, result_hash, send).await
        }
        ToCoordinator::Status => {
            let report = status_report(state).await?;
            info!(request = kind, peer = %ip, outcome = "admitted", "status answered");
            send_msg(&mut send, &FromCoordinator::Status(Box::new(report))).await?;
            let _ = send.finish();
            Ok(())
        }
    }
}

/// The status report: public facts only (counts, epochs, queues, versions, fingerprints).
async fn status_report(state: &State) -> Result<StatusReport> {
    let mut report = StatusReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        fingerprint: crate::fingerprint::of(&state.cluster),
        load: Load {
            contributions_waiting: state.contributions.len() as u32,
            contributions_in_progress: state.contributions.active() as u32,
            queries_waiting: state.queries.len() as u32,
            queries_in_progress: state.queries.active() as u32,
        },
        ..StatusReport::default()
    };
    for d in &state.cluster.datasets {
        let committed = state.store.count(&d.name)?;
        report.datasets.push((d.name.clone(), committed));
        report.closed_epochs.push(d.closed_epoch(committed));
    }
    let replies =
        futures::future::join_all(state.parties.iter().map(|p| p.simple(&Control::Status))).await;
    for (i, (p, reply)) in state.parties.iter().zip(replies).enumerate() {
        report.parties_reachable[i] = reply.is_ok();
        if let Ok(ControlReply::Status { sessions, .. }) = reply {
            report.party_sessions[i] = Some(sessions);
        }
        let seen = p.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some((fingerprint, version)) = seen {
            report.party_fingerprints[i] = Some(fingerprint);
            report.party_versions[i] = Some(version);
        }
    }
    Ok(report)
}

/// Waits for a slot of `queue`, telling the client its position while it waits; answers
/// [`FromCoordinator::Busy`] at once (and returns `None`) when the queue is full, and
/// refuses (returning `None`) when the coordinator began to stop meanwhile.
async fn wait_for_slot(
    state: &State,
    queue: &Arc<Queue>,
    req: Req,
    send: &mut SendStream,
) -> Result<Option<Slot>> {
    let place = match queue.join() {
        Ok(p) => p,
        Err(Busy { retry_after }) => {
            req.refused(&format!(
                "queue full ({} waiting); retry after {} s",
                queue.len(),
                retry_after.as_secs()
            ));
            let msg = FromCoordinator::Busy {
                retry_after_secs: retry_after.as_secs() as u32,
            };
            send_msg(send, &msg).await?;
            let _ = send.finish();
            return Ok(None);
        }
    };
    let slot = place.slot();
    tokio::pin!(slot);
    let mut told = 0;
    loop {
        tokio::select! {
            s = &mut slot => {
                if state.drain.closing() {
                    refuse(send, req, drain::SHUTTING_DOWN).await?;
                    return Ok(None);
                }
                return Ok(Some(s));
            }
            _ = tokio::time::sleep(if told == 0 { Duration::ZERO } else { POSITION_EVERY }) => {
                let position = place.position();
                if position != told {
                    // A client that went away gives up its place here.
                    send_msg(send, &FromCoordinator::Queued { position }).await?;
                    told = position;
                }
            }
        }
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}
