//! A flood of providers against small limits, with the coordinator and the parties each in
//! its own process, over QUIC on loopback: 1,000 providers from 50 source addresses share at
//! once. Every one is admitted or refused with a reason (busy, its address's ticket cap,
//! rate limit); the number told "admitted" is exactly what the coordinator and each party
//! store, with nothing pending; each server's peak memory is printed.

mod procs;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mpcstats::roles::client::{BusyError, Client};
use procs::{party, role_name, Procs};

const PROVIDERS: usize = 1000;
const ADDRESSES: usize = 50;
const DATASET: &str = "eth_balance";

/// Committed and pending contributions of the dataset in a party's store.
fn party_counts(db: &Path) -> (u64, u64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let count = |sql: &str| -> u64 {
        conn.query_row(sql, [DATASET], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    };
    (
        count("SELECT COUNT(*) FROM contributions WHERE dataset = ?1 AND seq IS NOT NULL"),
        count("SELECT COUNT(*) FROM contributions WHERE dataset = ?1 AND seq IS NULL"),
    )
}

#[derive(Debug, Default)]
struct Tally {
    admitted: u64,
    busy: u64,
    capped: u64,
    rate_limited: u64,
    other: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_providers_are_each_admitted_or_told_why_not() {
    let mut p = Procs::init(|c| {
        c.limits.requests_per_minute = 30;
        c.limits.concurrent_contributions = 4;
        c.limits.contribution_queue = 32;
        c.limits.tickets_per_address = 4;
        c.limits.ticket_timeout_secs = 10;
    });
    for slot in 0..4 {
        p.spawn(slot);
    }
    let file = Arc::new(p.cluster());
    // The roles are up once one anonymous client reaches them all.
    drop(procs::connect(&p.cluster_file()).await);
    let endpoints: Vec<quinn::Endpoint> = (0..ADDRESSES)
        .map(|a| {
            let bind: SocketAddr = format!("127.0.0.{}:0", a + 2).parse().unwrap();
            quinn::Endpoint::client(bind).unwrap()
        })
        .collect();
    let tasks: Vec<_> = (0..PROVIDERS)
        .map(|p| {
            let ep = endpoints[p % ADDRESSES].clone();
            let file = file.clone();
            tokio::spawn(async move {
                let client = Client::connect_via(&file, ep).await?;
                client.share(DATASET, &format!("{}.5", p % 1000)).await
            })
        })
        .collect();
    let mut tally = Tally::default();
    for t in tasks {
        // A hang guard only: every provider must hear something.
        let r = tokio::time::timeout(Duration::from_secs(600), t)
            .await
            .expect("a provider never got an answer")
            .unwrap();
        match r {
            Ok(_) => tally.admitted += 1,
            Err(e) if e.downcast_ref::<BusyError>().is_some() => tally.busy += 1,
            Err(e) => {
                let text = format!("{e:#}");
                if text.contains("tickets_per_address") {
                    tally.capped += 1
                } else if text.contains("rate limit") {
                    tally.rate_limited += 1
                } else {
                    tally.other.push(text)
                }
            }
        }
    }
    let peaks: Vec<String> = (0..4)
        .map(|slot| format!("{} {} MiB", role_name(slot), p.peak_rss_kib(slot) / 1024))
        .collect();
    println!(
        "{PROVIDERS} providers from {ADDRESSES} addresses: {} admitted, {} busy, {} over their address's ticket cap, {} rate-limited; peak memory: {}",
        tally.admitted,
        tally.busy,
        tally.capped,
        tally.rate_limited,
        peaks.join(", ")
    );
    assert!(
        tally.other.is_empty(),
        "refused without a known reason: {:?}",
        tally.other
    );
    assert!(tally.admitted > 0);
    assert!(tally.busy > 0, "the queue of 32 never filled: {tally:?}");
    assert_eq!(
        tally.admitted + tally.busy + tally.capped + tally.rate_limited,
        PROVIDERS as u64
    );
    // Told admitted ⇔ counted: the coordinator and every party store exactly the admitted
    // contributions, with nothing left pending (once the processes stopped).
    let status = procs::connect(&p.cluster_file())
        .await
        .status()
        .await
        .unwrap();
    let counted = status
        .datasets
        .iter()
        .find(|d| d.0 == DATASET)
        .map(|d| d.1)
        .expect("the dataset in the status report");
    assert_eq!(counted, tally.admitted, "the coordinator's count");
    // Decisions the parties have not acknowledged yet are still on their way.
    let undelivered = || -> i64 {
        rusqlite::Connection::open(p.path("coordinator.db"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
            .unwrap()
    };
    for _ in 0..300 {
        if undelivered() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(undelivered(), 0, "decisions left undelivered");
    for slot in 0..4 {
        p.kill(slot);
    }
    for i in 0..3 {
        let (committed, pending) = party_counts(&p.path(&format!("party{i}.db")));
        assert_eq!(committed, tally.admitted, "{}", role_name(party(i)));
        assert_eq!(pending, 0, "{}: nothing pending", role_name(party(i)));
    }
}
