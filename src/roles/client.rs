//! The client side shared by `share`, `query` and the demo: anonymous QUIC connections to the
//! coordinator and the three parties, each server verified against its pin in `cluster.toml`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use quinn::{Connection, Endpoint};
use rand::SeedableRng;
use serde::{de::DeserializeOwned, Serialize};

use super::party::ticket_hash;
use crate::config::{Cluster, ProofPolicy};
use crate::engine::{share, Security, Share, Z128};
use crate::net::endpoint::{client_endpoint, connect};
use crate::net::frame::{recv_msg, send_msg, MAX_CONTROL_FRAME};
use crate::net::pin::Pin;
use crate::oracle::proof::Proof;
use crate::stats::answer::{finish, open_results, Answer, Spent};
use crate::stats::Query;
use crate::wire::{
    ContributionOutcome, FromCoordinator, FromParty, Id, ProvenSubmission, QuerySpec, Ticket,
    TicketHash, ToCoordinator, ToParty,
};

/// Default bound on waiting for any one answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a provider keeps asking for the outcome of its contribution after losing the
/// coordinator's answer: longer than any decision takes (ticket timeout, the parties'
/// checks, a coordinator restart).
pub const OUTCOME_WAIT: Duration = Duration::from_secs(300);

/// The coordinator's queue was full; nothing was started. Ask again after `retry_after`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the coordinator is busy (its queue is full); retry after {} s", retry_after.as_secs())]
pub struct BusyError {
    pub retry_after: Duration,
}

/// What a client reports while it waits (the CLI prints it; the library stays quiet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Waiting in the coordinator's queue at this position (1 = next).
    Queued(u32),
    /// The coordinator issued this contribution id; from now on its outcome can be asked.
    Ticket(Id),
    /// The answer was lost; asking the coordinator for the contribution's outcome.
    AskingOutcome(Id),
}

/// Connections to the coordinator and the three parties.
pub struct Client {
    pub cluster: Cluster,
    _endpoint: Endpoint,
    coordinator: Connection,
    parties: Vec<Connection>,
    pub timeout: Duration,
    /// Called with what the client waits for; `None`: silent.
    pub progress: Option<std::sync::Arc<dyn Fn(Progress) + Send + Sync>>,
}

/// A contribution the cluster admitted.
#[derive(Clone, Copy, Debug)]
pub struct Admission {
    pub contribution: Id,
    /// Contributions of the dataset, this one included.
    pub count: u64,
}

/// One request on a fresh stream: sends `req`, returns the streams and the first answer.
pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    conn: &Connection,
    req: &Req,
) -> Result<(quinn::SendStream, quinn::RecvStream, Resp)> {
    let (mut send, mut recv) = conn.open_bi().await?;
    send_msg(&mut send, req).await?;
    let resp = recv_msg(&mut recv, MAX_CONTROL_FRAME).await?;
    Ok((send, recv, resp))
}

impl Client {
    /// Connects to the coordinator and every party, within the default timeout.
    pub async fn connect(cluster: &Cluster) -> Result<Client> {
        Self::connect_via(cluster, client_endpoint()?).await
    }

    /// [`Client::connect`] through a given endpoint (many clients may share one; tests bind
    /// it to a chosen source address).
    pub async fn connect_via(cluster: &Cluster, endpoint: Endpoint) -> Result<Client> {
        let coordinator = reach(
            &endpoint,
            "the coordinator",
            &cluster.coordinator.addr,
            cluster.coordinator_pin(),
        )
        .await?;
        let mut parties = Vec::new();
        for (i, p) in cluster.parties.iter().enumerate() {
            parties.push(
                reach(
                    &endpoint,
                    &format!("party {i}"),
                    &p.addr,
                    cluster.party_pin(i),
                )
                .await?,
            );
        }
        Ok(Client {
            cluster: cluster.clone(),
            _endpoint: endpoint,
            coordinator,
            parties,
            timeout: DEFAULT_TIMEOUT,
            progress: None,
        })
    }

    fn report(&self, p: Progress) {
        if let Some(f) = &self.progress {
            f(p);
        }
    }

    /// Reads the coordinator's first real answer on `recv`, past queue positions (each
    /// within the timeout; a queue moves or tells so every second).
    async fn past_queue(
        &self,
        first: FromCoordinator,
        recv: &mut quinn::RecvStream,
    ) -> Result<FromCoordinator> {
        let mut msg = first;
        loop {
            match msg {
                FromCoordinator::Queued { position } => self.report(Progress::Queued(position)),
                FromCoordinator::Busy { retry_after_secs } => {
                    return Err(BusyError {
                        retry_after: Duration::from_secs(u64::from(retry_after_secs)),
                    }
                    .into())
                }
                other => return Ok(other),
            }
            msg = self
                .timed("coordinator", async {
                    Ok(recv_msg(recv, MAX_CONTROL_FRAME).await?)
                })
                .await?;
        }
    }

    /// Asks the coordinator once what became of `contribution`.
    pub async fn outcome(&self, contribution: Id) -> Result<ContributionOutcome> {
        let ask = ToCoordinator::Outcome { contribution };
        let conn = self.coordinator_connection().await?;
        let (_s, _r, reply) = self.timed("coordinator", call(&conn, &ask)).await?;
        match reply {
            FromCoordinator::Outcome(o) => Ok(o),
            FromCoordinator::Refused { reason } => bail!("the coordinator refused: {reason}"),
            other => bail!("unexpected answer from the coordinator: {other:?}"),
        }
    }

    /// The connection to the coordinator, redialled if it was lost (a restart).
    async fn coordinator_connection(&self) -> Result<Connection> {
        if self.coordinator.close_reason().is_none() {
            return Ok(self.coordinator.clone());
        }
        reach(
            &self._endpoint,
            "the coordinator",
            &self.cluster.coordinator.addr,
            self.cluster.coordinator_pin(),
        )
        .await
    }

    /// After the decision on `contribution` was lost (`lost` says how), asks for its outcome
    /// with backoff until it is decided or [`OUTCOME_WAIT`] passed: committed is an
    /// admission, aborted an error with the coordinator's reason.
    pub async fn await_outcome(&self, contribution: Id, lost: anyhow::Error) -> Result<Admission> {
        self.report(Progress::AskingOutcome(contribution));
        let deadline = tokio::time::Instant::now() + OUTCOME_WAIT;
        let mut pause = Duration::from_millis(250);
        let mut last = format!("{lost:#}");
        loop {
            match self.outcome(contribution).await {
                Ok(ContributionOutcome::Committed { count, .. }) => {
                    return Ok(Admission {
                        contribution,
                        count,
                    })
                }
                Ok(ContributionOutcome::Aborted { reason }) => bail!("not admitted: {reason}"),
                Ok(ContributionOutcome::Unknown) => bail!(
                    "the coordinator does not know contribution {} (a different cluster?)",
                    hex::encode(contribution)
                ),
                Ok(ContributionOutcome::Pending) => last = "not decided yet".into(),
                Err(e) => last = format!("{e:#}"),
            }
            if tokio::time::Instant::now() + pause > deadline {
                bail!(
                    "the outcome of contribution {} is still unknown after {} s ({last}); \
                     ask later with `mpcstats share --status {}`",
                    hex::encode(contribution),
                    OUTCOME_WAIT.as_secs(),
                    hex::encode(contribution)
                );
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    async fn timed<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r,
            Err(_) => bail!("{what}: no answer within {} s", self.timeout.as_secs()),
        }
    }

    /// Secret-shares `value` (decimal text in the dataset's units) to the parties and waits
    /// until the coordinator admits it.
    pub async fn share(&self, dataset: &str, value: &str) -> Result<Admission> {
        let ds = self.cluster.dataset(dataset)?;
        if ds.proof != ProofPolicy::None {
            bail!("dataset {dataset} takes proven contributions only: run `mpcstats prove`, then `mpcstats share --proof`");
        }
        let v = ds.parse_value(value)?;
        let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
        let pairs: [Share<Z128>; 3] = share::split(Z128(v), &mut rng);
        let intent = |ticket_hash| ToCoordinator::ShareIntent {
            dataset: dataset.into(),
            ticket_hash,
        };
        self.contribute(intent, |i, contribution, ticket| ToParty::Submit {
            contribution,
            ticket,
            a: pairs[i].a.0,
            b: pairs[i].b.0,
        })
        .await
    }

    /// Submits a proof: the attestation and the records in the clear to the coordinator and
    /// the parties, each AES key only as XOR-replicated shares (party i gets (k_i, k_{i+1})).
    pub async fn share_proof(&self, dataset: &str, proof: &Proof) -> Result<Admission> {
        let ds = self.cluster.dataset(dataset)?;
        if ds.proof != ProofPolicy::Tls {
            bail!("dataset {dataset} takes unproven values; use share --value");
        }
        let client = xor_split(proof.client_keys.key);
        let server = xor_split(proof.server_keys.key);
        let intent = |ticket_hash| ToCoordinator::ProvenIntent {
            dataset: dataset.into(),
            attestation: proof.attestation.clone(),
            ticket_hash,
        };
        self.contribute(intent, |i, contribution, ticket| {
            let s = proven_submission(proof, i, contribution, ticket, &client, &server);
            ToParty::SubmitProven(Box::new(s))
        })
        .await
    }

    /// The admission protocol: a fresh ticket of the provider's own, its hash in the intent
    /// `intent` builds, a message per party with the ticket, then the coordinator's decision.
    pub async fn contribute(
        &self,
        intent: impl FnOnce(TicketHash) -> ToCoordinator,
        to_party: impl Fn(usize, Id, Ticket) -> ToParty,
    ) -> Result<Admission> {
        let ticket = fresh_secret();
        let intent = intent(ticket_hash(&ticket));
        let (_send, mut recv, first) = self
            .timed("coordinator", call(&self.coordinator, &intent))
            .await
            .context("the coordinator did not take the contribution")?;
        // Before the ticket nothing can count: every failure here is final.
        let contribution = match self.past_queue(first, &mut recv).await? {
            FromCoordinator::Ticket { contribution } => contribution,
            FromCoordinator::Refused { reason } => bail!("the coordinator refused: {reason}"),
            other => bail!("unexpected answer from the coordinator: {other:?}"),
        };
        self.report(Progress::Ticket(contribution));
        let submits = (0..3).map(|i| {
            let msg = to_party(i, contribution, ticket);
            async move {
                let (_s, _r, resp) = self
                    .timed(
                        &format!("party {i}"),
                        call::<_, FromParty>(&self.parties[i], &msg),
                    )
                    .await
                    .with_context(|| format!("party {i} did not take the share"))?;
                match resp {
                    FromParty::Stored => Ok(()),
                    FromParty::Refused { reason } => Err(anyhow!("party {i} refused: {reason}")),
                    other => Err(anyhow!("unexpected answer from party {i}: {other:?}")),
                }
            }
        });
        let results = futures::future::join_all(submits).await;
        let party_error = results.into_iter().find_map(|r| r.err());
        let decision: Result<FromCoordinator> = self
            .timed("coordinator", async {
                Ok(recv_msg(&mut recv, MAX_CONTROL_FRAME).await?)
            })
            .await;
        match (decision, party_error) {
            (
                Ok(FromCoordinator::Admitted {
                    contribution,
                    count,
                }),
                _,
            ) => Ok(Admission {
                contribution,
                count,
            }),
            (Ok(FromCoordinator::Refused { reason }), None) => bail!("not admitted: {reason}"),
            // A party refused: that reason is the one that matters to the provider.
            (Ok(FromCoordinator::Refused { .. }), Some(e)) => Err(e),
            (Ok(other), _) => bail!("unexpected answer from the coordinator: {other:?}"),
            // The decision did not reach us: it may still have been made either way.
            (Err(e), _) => self.await_outcome(contribution, e).await,
        }
    }

    /// The coordinator's status report: committed contributions per dataset and which
    /// parties it reaches.
    pub async fn status(&self) -> Result<crate::wire::StatusReport> {
        let (_s, _r, reply) = self
            .timed(
                "coordinator",
                call(&self.coordinator, &ToCoordinator::Status),
            )
            .await
            .context("the coordinator did not answer the status request")?;
        match reply {
            FromCoordinator::Status(r) => Ok(*r),
            FromCoordinator::Refused { reason } => bail!("status refused: {reason}"),
            other => bail!("unexpected answer from the coordinator: {other:?}"),
        }
    }

    /// Asks for a statistic; checks the parties' share pairs against each other and returns
    /// the answer in the dataset's units.
    pub async fn query(&self, spec: &QuerySpec) -> Result<Answer> {
        let ds = self.cluster.dataset(&spec.dataset)?;
        let query = Query::new(spec, ds)?;
        // The result secret is the consumer's: the coordinator sees only its hash.
        let ticket = fresh_secret();
        let ask = ToCoordinator::Query {
            spec: spec.clone(),
            result_hash: ticket_hash(&ticket),
        };
        let (_s, mut r, first) = self
            .timed("coordinator", call(&self.coordinator, &ask))
            .await
            .context("the coordinator did not take the query")?;
        let session = match self.past_queue(first, &mut r).await? {
            FromCoordinator::QueryStarted { session, .. } => session,
            FromCoordinator::Refused { reason } => bail!("query refused: {reason}"),
            other => bail!("unexpected answer from the coordinator: {other:?}"),
        };
        let fetches = (0..3).map(|i| async move {
            let msg = ToParty::FetchResult { session, ticket };
            let (_s, _r, resp) = self
                .timed(
                    &format!("party {i}"),
                    call::<_, FromParty>(&self.parties[i], &msg),
                )
                .await
                .with_context(|| format!("party {i} did not deliver its result"))?;
            match resp {
                FromParty::Result {
                    count,
                    epoch,
                    pairs,
                    spent,
                    security,
                } => Ok((count, pairs, epoch, spent, security)),
                FromParty::Refused { reason } => Err(anyhow!("party {i} failed: {reason}")),
                other => Err(anyhow!("unexpected answer from party {i}: {other:?}")),
            }
        });
        let mut results = Vec::new();
        for r in futures::future::join_all(fetches).await {
            results.push(r?);
        }
        let count = results[0].0;
        let epoch = results[0].2;
        // Each party counts the releases it charged; report the most any of them counted.
        let spent = results.iter().map(|r| r.3).max().flatten();
        for (i, r) in results.iter().enumerate() {
            if r.2 != epoch || r.3.is_some() != spent.is_some() {
                bail!(
                    "the parties disagree on the epoch or on the dataset's privacy (party 0 and party {i}); one of them is faulty"
                );
            }
            if r.0 != count {
                bail!(
                    "the parties disagree on the number of contributions ({} from party 0, {} from party {i}); one of them is faulty",
                    count, r.0
                );
            }
        }
        let security = results[0].4;
        if let Some(i) = results.iter().position(|r| r.4 != security) {
            bail!(
                "the parties ran different security modes (party 0 {}, party {i} {}); one of them is misconfigured",
                security.name(),
                results[i].4.name()
            );
        }
        if security == Security::SemiHonest && self.cluster.security == Security::Malicious {
            bail!(
                "the parties computed this answer in semi-honest mode, but this cluster file \
                 asks for security = \"malicious\"; refusing an answer with a weaker guarantee"
            );
        }
        let opened = open_results(&query, std::array::from_fn(|i| &results[i].1[..]))?;
        let mut answer = finish(&query, count, &opened)?;
        answer.epoch = epoch;
        answer.security = Some(security);
        answer.spent = match (&ds.privacy, spent) {
            (Some(p), Some(used)) => Some(Spent::of(p, used)?),
            (None, None) => None,
            _ => bail!("the parties' budget report does not match this dataset's privacy setting"),
        };
        Ok(answer)
    }
}

/// Connects to a server role, verified by its pin, within 10 seconds.
async fn reach(
    endpoint: &Endpoint,
    what: &str,
    addr: &std::net::SocketAddr,
    pin: Pin,
) -> Result<Connection> {
    match tokio::time::timeout(Duration::from_secs(10), connect(endpoint, *addr, pin, None)).await {
        Ok(r) => r.with_context(|| format!("cannot reach {what} at {addr}")),
        Err(_) => bail!("cannot reach {what} at {addr}: no answer within 10 s"),
    }
}

/// How long [`patiently`] keeps retrying while the coordinator answers "busy".
pub const BUSY_PATIENCE: Duration = Duration::from_secs(600);

/// Runs `attempt` again while the coordinator is busy, up to [`BUSY_PATIENCE`].
pub async fn patiently<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let start = std::time::Instant::now();
    loop {
        match attempt().await {
            Err(e) => match e.downcast_ref::<BusyError>() {
                Some(b) if start.elapsed() + b.retry_after < BUSY_PATIENCE => {
                    tracing::warn!(
                        "the coordinator is busy; retrying in {} s",
                        b.retry_after.as_secs()
                    );
                    tokio::time::sleep(b.retry_after).await;
                }
                _ => return Err(e),
            },
            ok => return ok,
        }
    }
}

/// A fresh 32-byte secret (a provider's ticket, a consumer's result secret).
pub fn fresh_secret() -> Ticket {
    let mut t = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut t);
    t
}

/// Three random XOR shares of a 16-byte key: k = s_0 ⊕ s_1 ⊕ s_2.
pub fn xor_split(key: [u8; 16]) -> [[u8; 16]; 3] {
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    let mut s0 = [0u8; 16];
    let mut s1 = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rng, &mut s0);
    rand::RngCore::fill_bytes(&mut rng, &mut s1);
    let s2: [u8; 16] = std::array::from_fn(|j| key[j] ^ s0[j] ^ s1[j]);
    [s0, s1, s2]
}

/// Party `i`'s submission of `proof`, given the XOR shares of the client and server keys.
pub fn proven_submission(
    proof: &Proof,
    i: usize,
    contribution: Id,
    ticket: Ticket,
    client_key: &[[u8; 16]; 3],
    server_key: &[[u8; 16]; 3],
) -> ProvenSubmission {
    ProvenSubmission {
        contribution,
        ticket,
        attestation: proof.attestation.clone(),
        template_hash: proof.template_hash,
        params: proof.declaration.params.clone(),
        client_records: proof.client_records.clone(),
        server_records: proof.server_records.clone(),
        client_iv: proof.client_keys.iv,
        server_iv: proof.server_keys.iv,
        value: (proof.declaration.value.start, proof.declaration.value.end),
        client_key: (client_key[i], client_key[(i + 1) % 3]),
        server_key: (server_key[i], server_key[(i + 1) % 3]),
    }
}
