//! `mpcstats coordinator`: admission and orchestration. It issues single-use tickets, tells
//! the parties what to expect, decides (two-phase) whether a contribution counts, admits
//! queries over a snapshot of committed contributions, queues and rate-limits. It never
//! receives a share, a key share or a result.

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
    short, ContributionOutcome, Control, ControlReply, FromCoordinator, Id, QuerySpec,
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
cluster.toml.")]
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
    server.stop().await;
    Ok(())
}

/// A running coordinator.
pub struct CoordinatorServer {
    pub addr: SocketAddr,
    endpoint: Endpoint,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl CoordinatorServer {
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
    /// The party's fingerprint as it last answered (for `status`).
    seen: Mutex<Option<crate::fingerprint::Fingerprint>>,
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
        let theirs = match call(c, &msg).await?.2 {
            ControlReply::Hello { fingerprint } => fingerprint,
            other => bail!("party {}: unexpected answer to Hello: {other:?}", self.id),
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(theirs);
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

async fn refuse(send: &mut SendStream, reason: impl Into<String>) -> Result<()> {
    send_msg(
        send,
        &FromCoordinator::Refused {
            reason: reason.into(),
        },
    )
    .await?;
    let _ = send.finish();
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
        Err(e) => return refuse(&mut send, format!("malformed request: {e}")).await,
    };
    // Status and outcome requests start no work: they cost no token.
    let kinds: &[Kind] = match msg {
        ToCoordinator::ShareIntent { .. } | ToCoordinator::ProvenIntent { .. } => {
            &[Kind::Any, Kind::Intent]
        }
        ToCoordinator::Query { .. } => &[Kind::Any, Kind::Query],
        ToCoordinator::Status | ToCoordinator::Outcome { .. } => &[],
    };
    if let Err(limited) = state.limiter.take(ip, kinds, &state.store)? {
        info!("request from {ip} refused: {}", limited.kind.key());
        return refuse(&mut send, limited.to_string()).await;
    }
    match msg {
        ToCoordinator::ShareIntent {
            dataset,
            ticket_hash,
        } => on_share_intent(state, ip, dataset, None, ticket_hash, send).await,
        ToCoordinator::ProvenIntent {
            dataset,
            attestation,
            ticket_hash,
        } => on_share_intent(state, ip, dataset, Some(attestation), ticket_hash, send).await,
        ToCoordinator::Outcome { contribution } => {
            let outcome = state
                .store
                .outcome(&contribution)?
                .unwrap_or(ContributionOutcome::Unknown);
            send_msg(&mut send, &FromCoordinator::Outcome(outcome)).await?;
            let _ = send.finish();
            Ok(())
        }
        ToCoordinator::Query { spec, result_hash } => {
            on_query(state, spec, result_hash, send).await
        }
        ToCoordinator::Status => {
            let mut report = StatusReport::default();
            for d in &state.cluster.datasets {
                report
                    .datasets
                    .push((d.name.clone(), state.store.count(&d.name)?));
            }
            report.fingerprint = crate::fingerprint::of(&state.cluster);
            for (i, p) in state.parties.iter().enumerate() {
                report.parties_reachable[i] = p.simple(&Control::Status).await.is_ok();
                report.party_fingerprints[i] = *p.seen.lock().unwrap_or_else(|p| p.into_inner());
            }
            send_msg(&mut send, &FromCoordinator::Status(report)).await?;
            let _ = send.finish();
            Ok(())
        }
    }
}

/// Waits for a slot of `queue`, telling the client its position while it waits; answers
/// [`FromCoordinator::Busy`] at once (and returns `None`) when the queue is full.
async fn wait_for_slot(
    queue: &Arc<Queue>,
    what: &str,
    send: &mut SendStream,
) -> Result<Option<Slot>> {
    let place = match queue.join() {
        Ok(p) => p,
        Err(Busy { retry_after }) => {
            info!(
                "{what} refused: queue full ({} waiting); retry after {} s",
                queue.len(),
                retry_after.as_secs()
            );
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
            s = &mut slot => return Ok(Some(s)),
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
    ip: IpAddr,
    dataset: String,
    attestation: Option<SignedAttestation>,
    ticket_hash: TicketHash,
    mut send: SendStream,
) -> Result<()> {
    let ds = match state.cluster.dataset(&dataset) {
        Ok(d) => d,
        Err(e) => return refuse(&mut send, format!("{e:#}")).await,
    };
    // The attestation is checked here first, so that forged or stale proofs cost the
    // parties nothing; every party checks it again.
    let attestation_id = match (ds.proof, &attestation, &ds.template) {
        (ProofPolicy::None, None, _) => None,
        (ProofPolicy::None, Some(_), _) => {
            let reason = format!("dataset {dataset} takes unproven values; use share --value");
            return refuse(&mut send, reason).await;
        }
        (ProofPolicy::Tls, None, _) | (ProofPolicy::Tls, _, None) => {
            let reason = format!(
                "dataset {dataset} takes proven contributions only: run `mpcstats prove`, then `mpcstats share --proof`"
            );
            return refuse(&mut send, reason).await;
        }
        (ProofPolicy::Tls, Some(a), Some(template)) => {
            let checked = state
                .cluster
                .notary_key()
                .and_then(|key| admit::check_attestation(a, &key, template, admit::now()));
            if let Err(e) = checked {
                return refuse(&mut send, format!("{e:#}")).await;
            }
            Some(admit::attestation_id(a))
        }
    };
    let Some(_held) = state.tickets.take(ip) else {
        let cap = state.cluster.limits.tickets_per_address;
        info!("share intent from {ip} refused: it holds {cap} undecided tickets");
        let reason = format!(
            "this address already holds {cap} undecided contributions (tickets_per_address); \
             finish or let them time out first"
        );
        return refuse(&mut send, reason).await;
    };
    let Some(_slot) = wait_for_slot(&state.contributions, "share intent", &mut send).await? else {
        return Ok(());
    };
    let contribution: Id = random_bytes();
    state.store.begin(&contribution, &dataset)?;
    if let Some(id) = attestation_id {
        if !state.store.use_attestation(&id, &contribution)? {
            let reason = "this attestation was already used";
            state.store.abort(&contribution, reason)?;
            return refuse(&mut send, reason).await;
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
        let told = refuse(&mut send, reason).await;
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
    let verdicts = futures::future::join_all(
        streams
            .into_iter()
            .enumerate()
            .map(|(i, (_s, mut r))| async move { verdict(i, &mut r, ticket_timeout).await }),
    )
    .await;
    if let Some(reason) = verdicts.into_iter().find_map(|v| v.err()) {
        state.store.abort(&contribution, &reason)?;
        info!(
            "contribution {} to {dataset} refused: {reason}",
            short(&contribution)
        );
        let told = refuse(&mut send, reason).await;
        abort_everywhere(state, &contribution).await;
        return told;
    }
    let seq = state.store.commit(&contribution)?;
    info!(
        "contribution {} admitted as number {seq} of {dataset}",
        short(&contribution)
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
    let _ = send.finish();
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
    spec: QuerySpec,
    result_hash: TicketHash,
    mut send: SendStream,
) -> Result<()> {
    let ds = match state.cluster.dataset(&spec.dataset) {
        Ok(d) => d,
        Err(e) => return refuse(&mut send, format!("{e:#}")).await,
    };
    let query = match Query::new(&spec, ds) {
        Ok(q) => q,
        Err(e) => return refuse(&mut send, format!("{e:#}")).await,
    };
    let committed = state.store.count(&ds.name)?;
    // Queries run over the newest closed epoch only, never over the latest contributions.
    let epoch = ds.closed_epoch(committed);
    if epoch == 0 {
        return refuse(
            &mut send,
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
        Err(e) => return refuse(&mut send, format!("{e:#}")).await,
    };
    // With a filter the parties check the matching count; without one it is `count`.
    if query.filter.is_none() || count < query.min_count() {
        if let Err(e) = query.check_count(count) {
            return refuse(&mut send, format!("{e:#}")).await;
        }
    }
    let Some(_slot) = wait_for_slot(&state.queries, "query", &mut send).await? else {
        return Ok(());
    };
    // Every party must hold every commit up to the snapshot before computing over it.
    for p in 0..3 {
        if let Err(e) = deliver_decisions(state, p).await {
            return refuse(&mut send, format!("{e:#}; try again later")).await;
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
                    format!("party {i} cannot run the query: {other:?}"),
                )
                .await
            }
            Err(e) => return refuse(&mut send, format!("{e:#}; try again later")).await,
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
    }))
    .await;
    let failed: Vec<String> = outcomes
        .into_iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            Ok(ControlReply::QueryDone) => None,
            Ok(other) => Some(format!("party {i}: {other:?}")),
            Err(e) => Some(format!("party {i}: {e}")),
        })
        .collect();
    if failed.is_empty() {
        info!(
            "query {} {} over epoch {epoch} of {} ({count} contributions) done in {:.1} ms",
            short(&session),
            query.stat.name(),
            ds.name,
            started.elapsed().as_secs_f64() * 1e3
        );
    } else {
        warn!("query {} failed: {}", short(&session), failed.join("; "));
    }
    Ok(())
}
