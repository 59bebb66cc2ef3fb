//! Crash safety with real processes: `kill -9` of a party, the coordinator or the notary at
//! random moments while providers share and consumers query, each role restarted at once
//! with no operator action. After every kill point the next share and the next query must
//! succeed; at the end every store is read directly:
//! - every contribution a provider was told "committed" is in the coordinator's store and
//!   in all three parties' stores under the number it was told, and its three share pairs
//!   reconstruct exactly the value the provider shared;
//! - nothing else is counted anywhere, and nothing is left pending or undelivered;
//! - every answer a consumer accepted equals the plaintext statistic over the contributions
//!   it covers.
//!
//! A second test stops a party with SIGSTOP mid-session: the session must abort within its
//! timeout, never hang. The seed of the kill schedule is printed (set `CRASH_SEED` to replay).

mod procs;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use mpcstats::config::Cluster;
use mpcstats::decimal;
use mpcstats::roles::client::Client;
use mpcstats::stats::answer::Answer;
use mpcstats::stats::{reference, Query, Stat};
use mpcstats::wire::{Id, QuerySpec};
use procs::{party, role_name, Procs, COORDINATOR};

const DATASET: &str = "eth_balance";
/// Contributions per release epoch in these tests: small, so that epochs close often.
const EPOCH: u64 = 5;
/// Pause of each provider between shares.
const PACE: Duration = Duration::from_millis(25);
/// No share or query may take longer than this, whatever was killed (a hang fails).
const OP_BOUND: Duration = Duration::from_secs(120);
/// After a restart, a share and a query must have succeeded within this.
const RECOVERY_BOUND: Duration = Duration::from_secs(70);

fn seed() -> u64 {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash schedule seed: {seed} (replay with CRASH_SEED={seed})");
    seed
}

/// A cluster whose example dataset closes an epoch every [`EPOCH`] contributions and whose
/// tickets time out after 3 s; rate limits lifted for the many clients of one address.
fn cluster() -> Procs {
    Procs::init(|c| {
        c.limits.requests_per_minute = 1_000_000;
        c.limits.intents_per_minute = 1_000_000;
        c.limits.queries_per_minute = 1_000_000;
        c.limits.ticket_timeout_secs = 3;
        c.limits.tickets_per_address = 1_000;
        let ds = c
            .datasets
            .iter_mut()
            .find(|d| d.name == DATASET)
            .expect("the example dataset");
        ds.epoch_size = Some(EPOCH);
    })
}

/// What the providers and consumers were told, and what is in flight.
#[derive(Default)]
struct Ledger {
    /// Contributions told "committed": id → (number, scaled value).
    committed: Mutex<HashMap<Id, (u64, u128)>>,
    /// Answers accepted: (statistic, answer).
    answers: Mutex<Vec<(Stat, Answer)>>,
    /// Errors by their first words, for the report.
    errors: Mutex<BTreeMap<String, u64>>,
    shares_ok: AtomicU64,
    queries_ok: AtomicU64,
    /// Operations started and not finished: number → "share" or "query".
    in_flight: Mutex<HashMap<u64, &'static str>>,
    next_op: AtomicU64,
    stop: AtomicBool,
}

impl Ledger {
    fn begin(&self, what: &'static str) -> u64 {
        let op = self.next_op.fetch_add(1, Ordering::SeqCst);
        self.in_flight.lock().unwrap().insert(op, what);
        op
    }

    fn end(&self, op: u64) {
        self.in_flight.lock().unwrap().remove(&op);
    }

    /// The operations in flight now, and whether a share and a query are among them.
    fn flying(&self) -> (Vec<u64>, bool, bool) {
        let f = self.in_flight.lock().unwrap();
        let share = f.values().any(|w| *w == "share");
        let query = f.values().any(|w| *w == "query");
        (f.keys().copied().collect(), share, query)
    }

    fn error(&self, what: &str, e: &anyhow::Error) {
        let text = format!("{e:#}");
        assert!(!text.contains("panicked"), "{what}: {text}");
        if std::env::var_os("MPCSTATS_TEST_LOGS").is_some() {
            eprintln!("{:?} {what}: {text}", std::time::SystemTime::now());
        }
        let class: String = text
            .split_whitespace()
            .take(8)
            .collect::<Vec<_>>()
            .join(" ");
        *self
            .errors
            .lock()
            .unwrap()
            .entry(format!("{what}: {class}"))
            .or_default() += 1;
    }
}

/// One provider: shares distinct values back to back until told to stop. Every attempt is
/// a new client, as every `mpcstats share` is.
async fn provider(cluster: Cluster, me: u128, ledger: Arc<Ledger>) {
    let mut k = 0u128;
    while !ledger.stop.load(Ordering::SeqCst) {
        k += 1;
        // Distinct per provider and attempt; in units of 10^-8 of the dataset's unit.
        let value = me * 1_000_000_000 + k * 1_000 + 7;
        tokio::time::sleep(PACE).await;
        let op = ledger.begin("share");
        let attempt = tokio::time::timeout(OP_BOUND, async {
            let client = Client::connect(&cluster).await?;
            client.share(DATASET, &decimal::format(value, 8)).await
        })
        .await;
        ledger.end(op);
        match attempt {
            Err(_) => panic!("a share hung for more than {OP_BOUND:?}"),
            Ok(Ok(admission)) => {
                let before = ledger
                    .committed
                    .lock()
                    .unwrap()
                    .insert(admission.contribution, (admission.count, value));
                assert!(before.is_none(), "one contribution id admitted twice");
                ledger.shares_ok.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Err(e)) => {
                ledger.error("share", &e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One consumer: asks sum, mean and count in turn until told to stop.
async fn consumer(cluster: Cluster, ledger: Arc<Ledger>) {
    let stats = [Stat::Sum, Stat::Mean, Stat::Count];
    let mut k = 0;
    while !ledger.stop.load(Ordering::SeqCst) {
        let stat = stats[k % stats.len()];
        k += 1;
        let op = ledger.begin("query");
        let attempt = tokio::time::timeout(OP_BOUND, async {
            let client = Client::connect(&cluster).await?;
            client.query(&QuerySpec::new(DATASET, stat.name())).await
        })
        .await;
        ledger.end(op);
        match attempt {
            Err(_) => panic!("a query hung for more than {OP_BOUND:?}"),
            Ok(Ok(answer)) => {
                ledger.answers.lock().unwrap().push((stat, answer));
                ledger.queries_ok.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Err(e)) => {
                ledger.error("query", &e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Waits until `counter` passes `after`: the operation it counts succeeded once more.
/// Returns how long that took.
async fn progressed(counter: &AtomicU64, after: u64, what: &str, killed: &str) -> Duration {
    let started = Instant::now();
    let deadline = started + RECOVERY_BOUND;
    while counter.load(Ordering::SeqCst) <= after {
        assert!(
            Instant::now() < deadline,
            "no {what} succeeded within {RECOVERY_BOUND:?} after {killed} was restarted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// The committed rows of the dataset in a store: id → (number, share pair or none).
type Rows = HashMap<Id, (u64, Option<(u128, u128)>)>;

fn id_of(b: Vec<u8>) -> Id {
    b.try_into().expect("16-byte id")
}

fn u128_of(b: Vec<u8>) -> u128 {
    u128::from_le_bytes(b.try_into().expect("16-byte share"))
}

fn party_rows(db: &Path) -> (Rows, u64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, seq, a, b FROM contributions WHERE dataset = ?1")
        .unwrap();
    let mut rows = Rows::new();
    let mut pending = 0;
    let all = stmt
        .query_map([DATASET], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })
        .unwrap();
    for row in all {
        let (id, seq, a, b) = row.unwrap();
        match seq {
            Some(seq) => {
                rows.insert(id_of(id), (seq as u64, Some((u128_of(a), u128_of(b)))));
            }
            None => pending += 1,
        }
    }
    (rows, pending)
}

/// The coordinator's committed rows, and how many are undecided or undelivered.
fn coordinator_rows(db: &Path) -> (Rows, u64, u64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, seq FROM contributions WHERE dataset = ?1 AND state = 'committed'")
        .unwrap();
    let rows = stmt
        .query_map([DATASET], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })
        .unwrap()
        .map(|r| {
            let (id, seq) = r.unwrap();
            (id_of(id), (seq as u64, None))
        })
        .collect();
    let preparing: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM contributions WHERE state = 'preparing'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let outbox: i64 = conn
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    (rows, preparing as u64, outbox as u64)
}

/// Every store against what the providers were told (the processes are stopped).
fn check_stores(p: &Procs, ledger: &Ledger) {
    let told = ledger.committed.lock().unwrap().clone();
    let numbers = |rows: &Rows| -> HashMap<Id, u64> {
        rows.iter().map(|(id, (seq, _))| (*id, *seq)).collect()
    };
    let want: HashMap<Id, u64> = told.iter().map(|(id, (seq, _))| (*id, *seq)).collect();
    let (rows, preparing, outbox) = coordinator_rows(&p.path("coordinator.db"));
    assert_eq!(preparing, 0, "the coordinator left contributions undecided");
    assert_eq!(outbox, 0, "the coordinator left decisions undelivered");
    let got = numbers(&rows);
    for (id, seq) in &want {
        assert_eq!(
            got.get(id),
            Some(seq),
            "contribution {} told committed as {seq}: not so at the coordinator",
            hex::encode(id)
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "the coordinator counts contributions whose providers were not told committed"
    );
    let parties: Vec<Rows> = (0..3)
        .map(|i| {
            let (rows, pending) = party_rows(&p.path(&format!("party{i}.db")));
            assert_eq!(pending, 0, "party {i} kept pending contributions");
            assert_eq!(
                numbers(&rows),
                want,
                "party {i}'s committed contributions differ from those told committed"
            );
            rows
        })
        .collect();
    for (id, (_, value)) in &told {
        let pair = |i: usize| parties[i][id].1.expect("a share pair");
        let (p0, p1, p2) = (pair(0), pair(1), pair(2));
        assert!(
            p0.1 == p1.0 && p1.1 == p2.0 && p2.1 == p0.0,
            "the parties' share pairs of {} disagree",
            hex::encode(id)
        );
        let sum = p0.0.wrapping_add(p1.0).wrapping_add(p2.0);
        assert_eq!(
            sum,
            *value,
            "contribution {} does not hold the value shared",
            hex::encode(id)
        );
    }
}

/// Every accepted answer against the plaintext statistic over the contributions numbered
/// 1..=its count, all of which were told committed.
fn check_answers(ledger: &Ledger) {
    let told = ledger.committed.lock().unwrap();
    let by_number: BTreeMap<u64, u128> = told.values().copied().collect();
    let ds = mpcstats::roles::init::example_dataset();
    for (stat, answer) in ledger.answers.lock().unwrap().iter() {
        assert_eq!(answer.count % EPOCH, 0, "an answer over a part of an epoch");
        let values: Vec<u128> = (1..=answer.count)
            .map(|n| {
                *by_number.get(&n).unwrap_or_else(|| {
                    panic!("an answer covers contribution number {n}, never told committed")
                })
            })
            .collect();
        let q = Query::new(&QuerySpec::new(DATASET, stat.name()), &ds).unwrap();
        let want = reference::answer(&q, &values).unwrap();
        assert_eq!(
            answer.text,
            want.text,
            "{} over {} contributions",
            stat.name(),
            answer.count
        );
    }
}

fn report(ledger: &Ledger, kills: &BTreeMap<String, u64>, during: (u64, u64), took: Duration) {
    eprintln!(
        "faults: {kills:?}; with a share in flight: {}, with a query in flight: {}; \
         {} shares committed, {} answers accepted in {:.1} s",
        during.0,
        during.1,
        ledger.shares_ok.load(Ordering::SeqCst),
        ledger.queries_ok.load(Ordering::SeqCst),
        took.as_secs_f64()
    );
    for (class, n) in ledger.errors.lock().unwrap().iter() {
        eprintln!("  {n:>4} × {class}");
    }
}

/// Providers and a consumer running against the cluster of `p` until [`Load::finish`].
struct Load {
    ledger: Arc<Ledger>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

impl Load {
    async fn start(p: &Procs, providers: u128) -> Load {
        let cluster = p.cluster();
        let ledger = Arc::new(Ledger::default());
        let mut tasks = Vec::new();
        for me in 1..=providers {
            tasks.push(tokio::spawn(provider(cluster.clone(), me, ledger.clone())));
        }
        tasks.push(tokio::spawn(consumer(cluster, ledger.clone())));
        // The first epoch closes before any fault, so queries have something to answer.
        progressed(&ledger.queries_ok, 0, "query", "the start").await;
        Load {
            ledger,
            tasks,
            started: Instant::now(),
        }
    }

    /// The counts of successful shares and queries so far.
    fn marks(&self) -> (u64, u64) {
        (
            self.ledger.shares_ok.load(Ordering::SeqCst),
            self.ledger.queries_ok.load(Ordering::SeqCst),
        )
    }

    /// Waits until a share and a query succeeded after `marks` (taken before `fault`).
    async fn recovered(&self, marks: (u64, u64), fault: &str) -> (Duration, Duration) {
        let s = progressed(&self.ledger.shares_ok, marks.0, "share", fault).await;
        let q = progressed(&self.ledger.queries_ok, marks.1, "query", fault).await;
        (s, q)
    }

    /// Stops the load, runs one more query (which delivers every decision to every party
    /// before it computes), stops every process and checks every store and answer.
    async fn finish(self, mut p: Procs, kills: &BTreeMap<String, u64>, during: (u64, u64)) {
        self.ledger.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.expect("no provider or consumer panicked");
        }
        report(&self.ledger, kills, during, self.started.elapsed());
        let client = procs::connect(&p.cluster_file()).await;
        let last = client
            .query(&QuerySpec::new(DATASET, Stat::Count.name()))
            .await
            .expect("a query after the last fault");
        self.ledger
            .answers
            .lock()
            .unwrap()
            .push((Stat::Count, last));
        for slot in 0..4 {
            p.kill(slot);
        }
        check_stores(&p, &self.ledger);
        check_answers(&self.ledger);
    }
}

/// `kill -9` of a party or the coordinator at `KILLS` random moments under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_parties_and_coordinator_loses_nothing_acknowledged() {
    const KILLS: usize = 60;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed());
    let mut p = cluster();
    for slot in 0..4 {
        p.spawn(slot);
    }
    let load = Load::start(&p, 4).await;
    let mut kills = BTreeMap::new();
    let mut during = (0, 0);
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..400))).await;
        let slot = if rng.gen_bool(0.3) {
            COORDINATOR
        } else {
            party(rng.gen_range(0..3))
        };
        let (_, share, query) = load.ledger.flying();
        during.0 += u64::from(share);
        during.1 += u64::from(query);
        let marks = load.marks();
        p.kill(slot);
        *kills.entry(role_name(slot)).or_insert(0) += 1;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        p.spawn(slot);
        // Rejoined without operator action: the next share and query succeed.
        let (s, q) = load.recovered(marks, &role_name(slot)).await;
        eprintln!(
            "kill {} of {}: next share after {:.2} s, next query {:.2} s later",
            kills.values().sum::<u64>(),
            role_name(slot),
            s.as_secs_f64(),
            q.as_secs_f64()
        );
    }
    load.finish(p, &kills, during).await;
}

/// A party that stops answering mid-session (SIGSTOP, as a hung host) while shares and
/// queries run: every share and query in flight at that moment ends while the party is
/// still stopped, within [`STALL_BOUND`] (an error naming what failed, or its answer if it
/// was done). After SIGCONT the party rejoins and the next share and query succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_that_stops_answering_makes_sessions_abort_within_their_timeout() {
    /// QUIC's idle timeout (10 s) and the ticket timeout (3 s here) plus its grace (5 s)
    /// bound every wait on a silent party; this adds room for a loaded machine.
    const STALL_BOUND: Duration = Duration::from_secs(30);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed());
    let mut p = cluster();
    for slot in 0..4 {
        p.spawn(slot);
    }
    let load = Load::start(&p, 3).await;
    let mut stalls = BTreeMap::new();
    let mut during = (0, 0);
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        let (flying, share, query) = load.ledger.flying();
        during.0 += u64::from(share);
        during.1 += u64::from(query);
        let marks = load.marks();
        p.signal(party(i), "STOP");
        *stalls.entry(role_name(party(i))).or_insert(0) += 1;
        let stopped = Instant::now();
        loop {
            let (now, _, _) = load.ledger.flying();
            if flying.iter().all(|op| !now.contains(op)) {
                break;
            }
            assert!(
                stopped.elapsed() < STALL_BOUND,
                "with {} stopped, {} operations in flight at the stop still run after {STALL_BOUND:?}",
                role_name(party(i)),
                flying.iter().filter(|op| now.contains(op)).count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ended = stopped.elapsed();
        p.signal(party(i), "CONT");
        let (s, q) = load.recovered(marks, &role_name(party(i))).await;
        eprintln!(
            "{} stopped: the {} operations in flight ended within {:.1} s; after SIGCONT the \
             next share took {:.2} s, the next query {:.2} s more",
            role_name(party(i)),
            flying.len(),
            ended.as_secs_f64(),
            s.as_secs_f64(),
            q.as_secs_f64()
        );
    }
    load.finish(p, &stalls, during).await;
}

/// `kill -9` of the notary at random moments while provers run: every proof ends within
/// [`OP_BOUND`], done or failed with an error; after each restart the next proof succeeds
/// without operator action; and proofs made before, between and after the kills are
/// admitted by the cluster, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_notary_during_proofs() {
    use mpcstats::oracle::exchange::{self, Exchange, ExchangeConfig, ExchangePki, LeafKey};
    use mpcstats::oracle::proof::Proof;
    use mpcstats::roles::prove::prove;
    use procs::NOTARY;

    const KILLS: usize = 40;
    const PROVERS: usize = 2;
    const ACCOUNTS: usize = 10_000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed());
    let mut p = cluster();
    let pki = ExchangePki::generate(
        exchange::DEFAULT_NAME,
        mpcstats::oracle::admit::now(),
        30,
        LeafKey::EcdsaP256,
    )
    .unwrap();
    let ca = p.path("exchange-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = listener.local_addr().unwrap();
    let config = ExchangeConfig {
        tls: pki.server_config().unwrap(),
        exchange: Arc::new(Exchange::new(exchange::generate_accounts(ACCOUNTS, 11))),
    };
    let exchange_task = tokio::spawn(exchange::serve(listener, config));
    p.notary_args = vec![
        "--resolve".into(),
        format!("{}:{site}", exchange::DEFAULT_NAME),
        "--extra-root".into(),
        ca.display().to_string(),
        "--no-default-roots".into(),
    ];
    for slot in [0, 1, 2, 3, NOTARY] {
        p.spawn(slot);
    }
    let cluster = p.cluster();
    let roots = vec![pki.ca_pem.clone().into_bytes()];
    let url = format!("https://{}/api/v1/account", exchange::DEFAULT_NAME);

    let ledger = Arc::new(Ledger::default());
    let proofs: Arc<Mutex<Vec<(usize, Proof)>>> = Arc::default();
    let next_account = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..PROVERS {
        let (cluster, roots, url) = (cluster.clone(), roots.clone(), url.clone());
        let (ledger, proofs, next_account) = (ledger.clone(), proofs.clone(), next_account.clone());
        tasks.push(tokio::spawn(async move {
            while !ledger.stop.load(Ordering::SeqCst) {
                let k = next_account.fetch_add(1, Ordering::SeqCst) as usize;
                assert!(k < ACCOUNTS, "the test ran out of exchange accounts");
                let header = format!("X-API-KEY: key-{k}");
                tokio::time::sleep(Duration::from_millis(5)).await;
                let op = ledger.begin("proof");
                let attempt = tokio::time::timeout(
                    OP_BOUND,
                    prove(&cluster, "exchange_eth", &url, &[header], &roots),
                )
                .await;
                ledger.end(op);
                match attempt {
                    Err(_) => panic!("a proof hung for more than {OP_BOUND:?}"),
                    Ok(Ok(proof)) => {
                        proofs.lock().unwrap().push((k, proof));
                        ledger.shares_ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Err(e)) => {
                        ledger.error("proof", &e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    progressed(&ledger.shares_ok, 0, "proof", "the start").await;
    let first = ledger.shares_ok.load(Ordering::SeqCst) as usize;
    let mut during = 0;
    let mut recoveries = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..400))).await;
        during += u64::from(!ledger.flying().0.is_empty());
        let mark = ledger.shares_ok.load(Ordering::SeqCst);
        p.kill(NOTARY);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        p.spawn(NOTARY);
        recoveries.push(progressed(&ledger.shares_ok, mark, "proof", "the notary").await);
    }
    ledger.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("no prover panicked");
    }
    let slowest = recoveries.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{KILLS} kills of the notary, {during} with a proof in flight; {} proofs made in \
         {:.1} s; slowest recovery after a restart: {:.2} s",
        proofs.lock().unwrap().len(),
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64()
    );
    for (class, n) in ledger.errors.lock().unwrap().iter() {
        eprintln!("  {n:>4} × {class}");
    }

    // A proof from before the first kill, one from the middle and the last are admitted by
    // the cluster; a second share of the first one is refused (single use).
    let proofs = proofs.lock().unwrap().clone();
    let client = procs::connect(&p.cluster_file()).await;
    let picks = [0, first.max(proofs.len() / 2), proofs.len() - 1];
    for (n, &i) in picks.iter().enumerate() {
        let (k, proof) = &proofs[i];
        let admitted = client
            .share_proof("exchange_eth", proof)
            .await
            .unwrap_or_else(|e| panic!("the proof of account {k} made around the kills: {e:#}"));
        assert_eq!(admitted.count, n as u64 + 1);
    }
    let again = client
        .share_proof("exchange_eth", &proofs[0].1)
        .await
        .expect_err("a proof admitted twice");
    assert!(format!("{again:#}").contains("already used"), "{again:#}");
    exchange_task.abort();
}
