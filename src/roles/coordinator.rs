//! `mpcstats coordinator`: admission and orchestration. It issues single-use tickets, tells
//! the parties what to expect, decides (two-phase) whether a contribution counts, admits
//! queries over a snapshot of committed contributions, queues and rate-limits. It never
//! receives a share, a key share or a result. Every client request gets one log line
//! (`request`, `peer`, `outcome`, `reason`); on SIGTERM it drains (see `roles::drain`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use rand::RngCore;
use tracing::{debug, info, warn};

use super::admission::{Busy, Caps, Queue, Slot};
use super::client::call;
use super::drain::{self, Drain};
use super::ratelimit::{Kind, RateLimiter};
use crate::config::{Cluster, ProofPolicy};
use crate::net::endpoint::{connect, server_endpoint};
use crate::net::frame::{recv_msg, send_msg, MAX_CONTROL_FRAME};
use crate::net::identity::Identity;
use crate::oracle::admit;
use crate::oracle::attestation::SignedAttestation;
use crate::stats::Query;
use crate::store::coordinator::CoordinatorStore;
use crate::wire::TicketHash;
use crate::wire::{
    short, ContributionOutcome, Control, ControlReply, FromCoordinator, Id, Load, QuerySpec,
    StatusReport, ToCoordinator,
};

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

/// The coordinator's connection to one party, redialled when it is gone.
struct PartyLink {
    id: usize,
    addr: SocketAddr,
    pin: crate::net::pin::Pin,
    endpoint: Endpoint,
    identity: Arc<Identity>,
    conn: tokio::sync::Mutex<Option<Connection>>,
    /// The coordinator's cluster fingerprint, shown to the party on every new connection.
    fingerprint: crate::fingerprint::Fingerprint,
    /// The party's fingerprint and version as it last answered (for `status`).
    seen: Mutex<Option<(crate::fingerprint::Fingerprint, String)>>,
}

impl PartyLink {
    async fn connection(&self) -> Result<Connection> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            if c.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        let c = tokio::time::timeout(
            PARTY_TIMEOUT,
            connect(&self.endpoint, self.addr, self.pin, Some(&self.identity)),
        )
        .await
        .map_err(|_| anyhow!("no answer within {} s", PARTY_TIMEOUT.as_secs()))??;
        self.hello(&c).await?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Shows the party our cluster fingerprint and checks its own: a party whose cluster
    /// file differs gets no control request (and refuses them anyway).
    async fn hello(&self, c: &Connection) -> Result<()> {
        use crate::fingerprint::show;
        let msg = Control::Hello {
            fingerprint: self.fingerprint,
        };
        let (theirs, version) = match call(c, &msg).await?.2 {
            ControlReply::Hello {
                fingerprint,
                version,
            } => (fingerprint, version),
            other => bail!("party {}: unexpected answer to Hello: {other:?}", self.id),
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some((theirs, version));
        if theirs != self.fingerprint {
            c.close(1u32.into(), b"cluster fingerprint mismatch");
            bail!(
                "cluster fingerprint check failed: party {} runs cluster {}, the coordinator \
                 runs {}; their cluster.toml files differ",
                self.id,
                show(&theirs),
                show(&self.fingerprint)
            );
        }
        Ok(())
    }

    /// Sends one control request; returns the streams and the first reply. A request that
    /// failed because the connection turned out dead (the party restarted) is sent once more
    /// on a fresh connection; every control request is idempotent.
    async fn call(&self, msg: &Control) -> Result<(SendStream, RecvStream, ControlReply)> {
        let r = tokio::time::timeout(PARTY_TIMEOUT, async {
            let conn = self.connection().await?;
            match call(&conn, msg).await {
                Err(_) if conn.close_reason().is_some() => {
                    let conn = self.connection().await?;
                    call(&conn, msg).await
                }
                r => r,
            }
        })
        .await
        .map_err(|_| anyhow!("no answer within {} s", PARTY_TIMEOUT.as_secs()))
        .and_then(|r| r);
        r.with_context(|| format!("party {} at {} is unreachable", self.id, self.addr))
    }

    /// A request with a single `Ack`-style answer.
    async fn simple(&self, msg: &Control) -> Result<ControlReply> {
        let (_s, _r, reply) = self.call(msg).await?;
        match reply {
            ControlReply::Failed { reason } => bail!("party {} failed: {reason}", self.id),
            other => Ok(other),
        }
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

/// The lock under which the parties answer one release: identical queries over the same
/// epoch run one after another, so the second finds the release every party kept.
///
/// Run at once, a party that finished the first session could serve the kept answer while
/// a slower one computed a fresh sharing of it, and the consumer would get pairs that
/// contradict each other (the load bench saw exactly that with four consumers asking for
/// a mean the moment its epoch closed). The consumer rejects such an answer, so this is
/// about availability; a coordinator that skipped the lock makes queries fail, never wrong.
fn release_lock(
    state: &State,
    dataset: &str,
    epoch: u64,
    query: &Query,
) -> Arc<tokio::sync::Mutex<()>> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(dataset.as_bytes());
    h.update([0]);
    h.update(epoch.to_le_bytes());
    h.update(query.key());
    let key: [u8; 32] = h.finalize().into();
    let mut locks = state.releases.lock().unwrap_or_else(|p| p.into_inner());
    // Forget the locks nobody holds or waits for.
    locks.retain(|_, l| Arc::strong_count(l) > 1);
    locks.entry(key).or_default().clone()
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

async fn on_share_intent(
    state: &Arc<State>,
    req: Req,
    dataset: String,
    attestation: Option<SignedAttestation>,
    ticket_hash: TicketHash,
    mut send: SendStream,
) -> Result<()> {
    let ds = match state.cluster.dataset(&dataset) {
        Ok(d) => d,
        Err(e) => return refuse(&mut send, req, format!("{e:#}")).await,
    };
    // The attestation is checked here first, so that forged or stale proofs cost the
    // parties nothing; every party checks it again.
    let attestation_id = match (ds.proof, &attestation, &ds.template) {
        (ProofPolicy::None, None, _) => None,
        (ProofPolicy::None, Some(_), _) => {
            let reason = format!("dataset {dataset} takes unproven values; use share --value");
            return refuse(&mut send, req, reason).await;
        }
        (ProofPolicy::Tls, None, _) | (ProofPolicy::Tls, _, None) => {
            let reason = format!(
                "dataset {dataset} takes proven contributions only: run `mpcstats prove`, then `mpcstats share --proof`"
            );
            return refuse(&mut send, req, reason).await;
        }
        (ProofPolicy::Tls, Some(a), Some(template)) => {
            let checked = state
                .cluster
                .notary_key()
                .and_then(|key| admit::check_attestation(a, &key, template, admit::now()));
            if let Err(e) = checked {
                return refuse(&mut send, req, format!("{e:#}")).await;
            }
            Some(admit::attestation_id(a))
        }
    };
    let Some(_held) = state.tickets.take(req.ip) else {
        let cap = state.cluster.limits.tickets_per_address;
        let reason = format!(
            "this address already holds {cap} undecided contributions (tickets_per_address); \
             finish or let them time out first"
        );
        return refuse(&mut send, req, reason).await;
    };
    let Some(_slot) = wait_for_slot(state, &state.contributions, req, &mut send).await? else {
        return Ok(());
    };
    let contribution: Id = random_bytes();
    // From here until its decision the contribution is in flight: a stop waits for it, then
    // tells it to abort.
    let _session = state.drain.session();
    state.store.begin(&contribution, &dataset)?;
    if let Some(id) = attestation_id {
        if !state.store.use_attestation(&id, &contribution)? {
            let reason = "this attestation was already used";
            state.store.abort(&contribution, reason)?;
            return refuse(&mut send, req, reason).await;
        }
    }
    // Phase 1: every party must be ready for the submission before the provider gets a ticket.
    let expect = Control::Expect {
        contribution,
        dataset: dataset.clone(),
        ticket_hash,
        attestation: attestation_id,
    };
    let calls = futures::future::join_all(state.parties.iter().map(|p| p.call(&expect))).await;
    let mut streams = Vec::new();
    let mut failure = None;
    for (i, c) in calls.into_iter().enumerate() {
        match c {
            Ok((s, r, ControlReply::Accepted)) => streams.push((s, r)),
            Ok((_, _, other)) => {
                failure = Some(format!(
                    "party {i} cannot take contributions now: {other:?}"
                ))
            }
            Err(e) => failure = Some(format!("{e:#}")),
        }
    }
    if let Some(reason) = failure {
        let reason = format!("{reason}; try again later");
        state.store.abort(&contribution, &reason)?;
        // The abort is recorded: the provider hears it at once, and the parties get it now
        // or from the outbox later (a party that stopped answering must not delay this).
        let told = refuse(&mut send, req, reason).await;
        abort_everywhere(state, &contribution).await;
        return told;
    }
    // From here on the provider knows the id and can ask for its outcome whatever happens
    // to this stream; a send that fails does not stop the decision.
    if let Err(e) = send_msg(&mut send, &FromCoordinator::Ticket { contribution }).await {
        debug!(
            "the provider of {} went away before its ticket: {e}",
            short(&contribution)
        );
    }
    // Phase 2: every party must receive the submission within the ticket timeout, then
    // check it within PREPARE_TIMEOUT.
    let ticket_timeout = state.cluster.limits.ticket_timeout() + TICKET_GRACE;
    // The first party to fail decides: the others need not be waited for (a party that
    // stops fails its expected submissions while the others would wait out the ticket).
    let verdicts = futures::future::try_join_all(
        streams
            .into_iter()
            .enumerate()
            .map(|(i, (_s, mut r))| async move { verdict(i, &mut r, ticket_timeout).await }),
    );
    let failure = tokio::select! {
        v = verdicts => v.err(),
        _ = state.drain.aborted() => Some(format!(
            "the coordinator shut down before the decision (it waited {} s); send the value again",
            drain::DRAIN_TIME.as_secs()
        )),
    };
    if let Some(reason) = failure {
        state.store.abort(&contribution, &reason)?;
        let reason = format!("contribution {} aborted: {reason}", short(&contribution));
        // Recorded: the provider hears it at once, the parties now or from the outbox.
        let told = refuse(&mut send, req, reason).await;
        abort_everywhere(state, &contribution).await;
        return told;
    }
    let seq = state.store.commit(&contribution)?;
    info!(
        request = req.kind,
        peer = %req.ip,
        outcome = "admitted",
        contribution = %short(&contribution),
        dataset = %dataset,
        count = seq,
        "contribution admitted"
    );
    futures::future::join_all((0..3).map(|p| deliver_decisions(state, p))).await;
    let admitted = FromCoordinator::Admitted {
        contribution,
        count: seq,
    };
    if let Err(e) = send_msg(&mut send, &admitted).await {
        debug!(
            "the provider of {} went away before the decision (it can ask for the outcome): {e}",
            short(&contribution)
        );
    }
    finish(&mut send).await;
    Ok(())
}

/// Party `i`'s verdict on a submission, from its `Expect` stream: `Received` within the
/// ticket timeout (or a verdict at once), then `Prepared` within [`PREPARE_TIMEOUT`].
async fn verdict(i: usize, r: &mut RecvStream, ticket_timeout: Duration) -> Result<(), String> {
    let mut received = false;
    loop {
        let bound = if received {
            PREPARE_TIMEOUT
        } else {
            ticket_timeout
        };
        match tokio::time::timeout(bound, recv_msg::<_, ControlReply>(r, MAX_CONTROL_FRAME)).await {
            Ok(Ok(ControlReply::Received)) if !received => received = true,
            Ok(Ok(ControlReply::Prepared)) => return Ok(()),
            Ok(Ok(ControlReply::Failed { reason })) => return Err(format!("party {i}: {reason}")),
            Ok(Ok(other)) => return Err(format!("party {i} answered {other:?}")),
            Ok(Err(e)) => return Err(format!("party {i} is unreachable: {e}")),
            Err(_) if !received => {
                return Err(format!(
                    "party {i} did not receive the submission within {} s (ticket_timeout_secs)",
                    ticket_timeout.saturating_sub(TICKET_GRACE).as_secs()
                ))
            }
            Err(_) => {
                return Err(format!(
                    "party {i} gave no verdict within {} s",
                    PREPARE_TIMEOUT.as_secs()
                ))
            }
        }
    }
}

/// Delivers the abort of `contribution` (queued in the outbox by the store) to every party
/// now; a party that cannot be reached gets it from the background delivery later.
async fn abort_everywhere(state: &State, contribution: &Id) {
    for (p, r) in futures::future::join_all((0..3).map(|p| deliver_decisions(state, p)))
        .await
        .into_iter()
        .enumerate()
    {
        if let Err(e) = r {
            debug!("abort of {} at party {p}: {e:#}", short(contribution));
        }
    }
}

/// Delivers every decision (commit or abort) party `p` has not acknowledged yet.
async fn deliver_decisions(state: &State, p: usize) -> Result<()> {
    for (contribution, seq) in state.store.outbox(p)? {
        let msg = match seq {
            Some(seq) => Control::Commit { contribution, seq },
            None => Control::Abort { contribution },
        };
        state.parties[p].simple(&msg).await?;
        state.store.delivered(&contribution, p)?;
    }
    Ok(())
}

async fn on_query(
    state: &Arc<State>,
    req: Req,
    spec: QuerySpec,
    result_hash: TicketHash,
    mut send: SendStream,
) -> Result<()> {
    let ds = match state.cluster.dataset(&spec.dataset) {
        Ok(d) => d,
        Err(e) => return refuse(&mut send, req, format!("{e:#}")).await,
    };
    let query = match Query::new(&spec, ds) {
        Ok(q) => q,
        Err(e) => return refuse(&mut send, req, format!("{e:#}")).await,
    };
    let committed = state.store.count(&ds.name)?;
    // Queries run over the newest closed epoch only, never over the latest contributions.
    let epoch = ds.closed_epoch(committed);
    if epoch == 0 {
        return refuse(
            &mut send,
            req,
            format!(
                "dataset {} has {committed} contributions; its first release needs {} (epoch_size, \
                 at least min_cohort = {}), so that no answer reveals a single value",
                ds.name,
                ds.epoch_size(),
                ds.min_cohort
            ),
        )
        .await;
    }
    let count = match ds.epoch_end(epoch) {
        Ok(c) => c,
        Err(e) => return refuse(&mut send, req, format!("{e:#}")).await,
    };
    // With a filter the parties check the matching count; without one it is `count`.
    if query.filter.is_none() || count < query.min_count() {
        if let Err(e) = query.check_count(count) {
            return refuse(&mut send, req, format!("{e:#}")).await;
        }
    }
    let Some(_slot) = wait_for_slot(state, &state.queries, req, &mut send).await? else {
        return Ok(());
    };
    let _session = state.drain.session();
    // Every party must hold every commit up to the snapshot before computing over it.
    for p in 0..3 {
        if let Err(e) = deliver_decisions(state, p).await {
            return refuse(&mut send, req, format!("{e:#}; try again later")).await;
        }
    }
    let release = release_lock(state, &ds.name, epoch, &query);
    let _computing = release.lock().await;
    let session: Id = random_bytes();
    let run = Control::RunQuery {
        session,
        spec: spec.clone(),
        epoch,
        ticket_hash: result_hash,
    };
    let started = Instant::now();
    let calls = futures::future::join_all(state.parties.iter().map(|p| p.call(&run))).await;
    let mut streams = Vec::new();
    for (i, c) in calls.into_iter().enumerate() {
        match c {
            Ok((s, r, ControlReply::Accepted)) => streams.push((s, r)),
            Ok((_, _, other)) => {
                return refuse(
                    &mut send,
                    req,
                    format!("party {i} cannot run the query: {other:?}"),
                )
                .await
            }
            Err(e) => return refuse(&mut send, req, format!("{e:#}; try again later")).await,
        }
    }
    send_msg(
        &mut send,
        &FromCoordinator::QueryStarted {
            session,
            count,
            epoch,
        },
    )
    .await?;
    let _ = send.finish();
    let outcomes = futures::future::join_all(streams.into_iter().map(|(_s, mut r)| async move {
        recv_msg::<_, ControlReply>(&mut r, MAX_CONTROL_FRAME).await
    }));
    // The parties compute and answer the consumer by themselves: a stopping coordinator
    // only stops waiting for their word.
    let outcomes = tokio::select! {
        o = outcomes => o,
        _ = state.drain.aborted() => {
            info!(
                request = req.kind,
                peer = %req.ip,
                outcome = "admitted",
                session = %short(&session),
                "query left to the parties: the coordinator shut down"
            );
            return Ok(());
        }
    };
    let failed: Vec<String> = outcomes
        .into_iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            Ok(ControlReply::QueryDone) => None,
            Ok(other) => Some(format!("party {i}: {other:?}")),
            Err(e) => Some(format!("party {i}: {e}")),
        })
        .collect();
    let ms = (started.elapsed().as_secs_f64() * 1e3).round() as u64;
    if failed.is_empty() {
        info!(
            request = req.kind,
            peer = %req.ip,
            outcome = "admitted",
            session = %short(&session),
            stat = query.stat.name(),
            dataset = %ds.name,
            epoch,
            count,
            ms,
            "query answered"
        );
    } else {
        warn!(
            request = req.kind,
            peer = %req.ip,
            outcome = "failed",
            session = %short(&session),
            reason = %failed.join("; "),
            "query failed"
        );
    }
    Ok(())
}
