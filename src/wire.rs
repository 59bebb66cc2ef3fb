//! Wire messages between roles: plain serde types, carried as bincode frames (`net::frame`).
//! Every request opens its own QUIC bidirectional stream and gets its answers on it.
//!
//! Who speaks to whom:
//! * provider/consumer → coordinator: [`ToCoordinator`] (anonymous client);
//! * coordinator → party: [`Control`] (client certificate pinned in `cluster.toml`);
//! * provider/consumer → party: [`ToParty`] (anonymous client, authorised by a ticket).
//!
//! No message to or from the coordinator ever carries a share.

use serde::{Deserialize, Serialize};

use crate::oracle::attestation::SignedAttestation;

/// A 16-byte identifier (contribution or query session), random.
pub type Id = [u8; 16];
/// A 32-byte single-use secret handed to a client by the coordinator.
pub type Ticket = [u8; 32];
/// SHA-256 of a ticket: what the parties are told to expect.
pub type TicketHash = [u8; 32];

/// Short hex form of an id, for logs.
pub fn short(id: &Id) -> String {
    hex::encode(&id[..6])
}

/// A statistic request, as a consumer states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuerySpec {
    pub dataset: String,
    /// Statistic name (`count`, `sum`, `mean`, `variance`, `stddev`); checked by the
    /// coordinator and again by every party.
    pub stat: String,
    /// Population instead of sample variance / standard deviation.
    pub population: bool,
    /// `quantile`: q in [0, 1]; `percentile`: p in [0, 100] (decimal text).
    pub param: Option<String>,
    /// `histogram`: bucket edges in the dataset's units, increasing (decimal text).
    pub edges: Vec<String>,
    /// A public filter such as `>= 0.5`: only matching contributions count.
    pub filter: Option<String>,
}

impl QuerySpec {
    /// A query for `stat` over `dataset` with no parameters.
    pub fn new(dataset: &str, stat: &str) -> QuerySpec {
        QuerySpec {
            dataset: dataset.into(),
            stat: stat.into(),
            population: false,
            param: None,
            edges: Vec::new(),
            filter: None,
        }
    }
}

/// Client → coordinator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToCoordinator {
    /// A provider wants to contribute one value to `dataset`.
    /// `ticket_hash` is SHA-256 of a ticket the provider chose and keeps: the parties take
    /// the submission only from its holder, so not even the coordinator can submit in its
    /// place.
    ShareIntent {
        dataset: String,
        ticket_hash: TicketHash,
    },
    /// A provider wants to contribute a proven value; the coordinator checks the attestation
    /// (signature, server, age, single use) before anything else happens.
    ProvenIntent {
        dataset: String,
        attestation: SignedAttestation,
        ticket_hash: TicketHash,
    },
    /// A consumer asks for a statistic. `result_hash` is SHA-256 of a secret the consumer
    /// chose and keeps: the parties release the result only to its holder, so the
    /// coordinator, which sees only the hash, cannot read a result.
    Query {
        spec: QuerySpec,
        result_hash: TicketHash,
    },
    /// Cluster status (contributions per dataset, party reachability).
    Status,
    /// A provider asks what became of its contribution (the id it got with its ticket),
    /// for instance after its connection was lost before the decision reached it.
    Outcome { contribution: Id },
}

/// What became of a contribution, as the coordinator decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContributionOutcome {
    /// It counts in all three parties' stores, as number `count` of `dataset`.
    Committed { dataset: String, count: u64 },
    /// It counts nowhere; `reason` says why.
    Aborted { reason: String },
    /// Not decided yet: the parties are still receiving or checking it.
    Pending,
    /// The coordinator never issued this id.
    Unknown,
}

/// Coordinator → client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FromCoordinator {
    /// The parties expect your submission for `contribution` under your ticket: send your
    /// share pairs to them, then wait on this stream.
    Ticket { contribution: Id },
    /// All three parties stored the contribution; it counts from now on.
    Admitted { contribution: Id, count: u64 },
    /// The parties are computing over release epoch `epoch` (its first `count`
    /// contributions); fetch the result shares from each with your result secret.
    QueryStarted { session: Id, count: u64, epoch: u64 },
    /// The answer to [`ToCoordinator::Status`] (boxed: the largest message by far).
    Status(Box<StatusReport>),
    /// The request was refused; the text says why and what to do.
    Refused { reason: String },
    /// The queue is full: nothing was started; ask again after `retry_after_secs`.
    Busy { retry_after_secs: u32 },
    /// The request waits in the queue at `position` (1 = next); more messages follow.
    Queued { position: u32 },
    /// The answer to [`ToCoordinator::Outcome`].
    Outcome(ContributionOutcome),
}

/// Public facts about a running cluster, as the coordinator knows them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusReport {
    /// Committed contributions per dataset.
    pub datasets: Vec<(String, u64)>,
    pub parties_reachable: [bool; 3],
    /// The coordinator's cluster fingerprint (`fingerprint::of` its cluster file).
    pub fingerprint: [u8; 32],
    /// Each party's cluster fingerprint as it last told the coordinator (None: never
    /// reached).
    pub party_fingerprints: [Option<[u8; 32]>; 3],
    /// The coordinator's version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// Each party's version as it last told the coordinator (None: never reached).
    pub party_versions: [Option<String>; 3],
    /// Closed release epochs per dataset, in the order of `datasets`: queries run over the
    /// newest of them (0: no release yet).
    pub closed_epochs: Vec<u64>,
    /// The coordinator's queues and sessions in flight.
    pub load: Load,
    /// MPC sessions each reachable party has in flight (submissions being checked, queries
    /// being computed).
    pub party_sessions: [Option<u32>; 3],
}

/// The coordinator's admission queues now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    /// Share intents waiting for a slot.
    pub contributions_waiting: u32,
    /// Contributions holding a slot: being received, checked and decided.
    pub contributions_in_progress: u32,
    /// Queries waiting for a slot.
    pub queries_waiting: u32,
    /// Queries holding a slot: running in the parties.
    pub queries_in_progress: u32,
}

/// Coordinator → party (authenticated by certificate pin).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Control {
    /// A provider holding the ticket with this hash will submit share pairs for `contribution`.
    /// The party answers [`ControlReply::Prepared`] once it checked and durably stored them as
    /// pending, or [`ControlReply::Failed`].
    Expect {
        contribution: Id,
        dataset: String,
        ticket_hash: TicketHash,
        /// For a proven contribution: the id of the attestation the coordinator checked.
        /// The submission must carry exactly that attestation.
        attestation: Option<[u8; 32]>,
    },
    /// The contribution counts, as number `seq` of its dataset.
    Commit { contribution: Id, seq: u64 },
    /// The contribution does not count; forget it.
    Abort { contribution: Id },
    /// Compute `spec` over release epoch `epoch` of the dataset (its contributions
    /// 1..=epoch·epoch_size, which every party checks it holds) in MPC session `session`, and
    /// hand the result pair to the client presenting the ticket with this hash.
    RunQuery {
        session: Id,
        spec: QuerySpec,
        epoch: u64,
        ticket_hash: TicketHash,
    },
    /// Highest committed sequence number per dataset, and pending contributions.
    Status,
    /// The first request on every control connection: the coordinator's cluster
    /// fingerprint. The party answers [`ControlReply::Hello`] with its own and refuses every
    /// other request on the connection unless the two are equal.
    Hello { fingerprint: [u8; 32] },
}

/// Party → coordinator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControlReply {
    /// First answer to `Expect` and `RunQuery`: the party took the request and works on it.
    Accepted,
    Prepared,
    Ack,
    QueryDone,
    Status {
        committed: Vec<(String, u64)>,
        /// MPC sessions in flight at the party (submissions being checked, queries).
        sessions: u32,
    },
    Failed {
        reason: String,
    },
    /// After `Accepted` for an `Expect`: the provider's submission arrived within the
    /// ticket timeout and is being checked; `Prepared` or `Failed` follows.
    Received,
    /// The answer to [`Control::Hello`]: the party's cluster fingerprint and version
    /// (`CARGO_PKG_VERSION`).
    Hello {
        fingerprint: [u8; 32],
        version: String,
    },
}

/// Client → party (anonymous; authorised by a ticket).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToParty {
    /// A provider's replicated share pair (x_i, x_{i+1}) of its value, for party i.
    Submit {
        contribution: Id,
        ticket: Ticket,
        a: u128,
        b: u128,
    },
    /// A consumer fetches this party's result pairs of a query session.
    FetchResult { session: Id, ticket: Ticket },
    /// A provider's proven contribution for party i: the public session data and this
    /// party's pair of XOR shares of each AES key.
    SubmitProven(Box<ProvenSubmission>),
}

/// Everything a party needs to check a proven contribution. The AES keys travel only as
/// XOR-replicated shares: party i receives (k_i, k_{i+1}) of k = k_0 ⊕ k_1 ⊕ k_2.
#[derive(Clone, Serialize, Deserialize)]
pub struct ProvenSubmission {
    pub contribution: Id,
    pub ticket: Ticket,
    pub attestation: SignedAttestation,
    /// `Template::hash` of the dataset template the proof was made for.
    pub template_hash: [u8; 32],
    /// Lengths of the request's public and hidden query parameter values, in order.
    pub params: Vec<u32>,
    /// Application-data records, whole, in order, as attested.
    pub client_records: Vec<Vec<u8>>,
    pub server_records: Vec<Vec<u8>>,
    pub client_iv: [u8; 12],
    pub server_iv: [u8; 12],
    /// The value's text in the server's application data: start and end offsets.
    pub value: (u64, u64),
    pub client_key: ([u8; 16], [u8; 16]),
    pub server_key: ([u8; 16], [u8; 16]),
}

/// Party → client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FromParty {
    /// The share pair passed the checks and is stored, pending the coordinator's admission.
    Stored,
    /// This party's result: the number of contributions computed over, the epoch, its
    /// share pairs (x_i, x_{i+1}) of each opened value, and for a differentially private
    /// dataset the releases spent so far (this one included).
    Result {
        count: u64,
        epoch: u64,
        pairs: Vec<(u128, u128)>,
        spent: Option<u32>,
        /// The security mode of the session that computed the pairs.
        security: crate::engine::Security,
    },
    Refused {
        reason: String,
    },
}

impl std::fmt::Debug for ProvenSubmission {
    /// Never prints key shares.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvenSubmission")
            .field("contribution", &short(&self.contribution))
            .field("client_records", &self.client_records.len())
            .field("server_records", &self.server_records.len())
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}
