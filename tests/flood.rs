//! A flood of providers against small limits, in-process over QUIC on loopback: 1,000
//! providers from 50 source addresses share at once. Every one is admitted or refused with
//! a reason (busy, its address's ticket cap, rate limit); the number told "admitted" is
//! exactly what each party stores; the process's peak memory is printed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mpcstats::config::Limits;
use mpcstats::roles::client::{BusyError, Client};
use mpcstats::roles::demo::LocalCluster;

const PROVIDERS: usize = 1000;
const ADDRESSES: usize = 50;
const DATASET: &str = "eth_balance";

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
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
    let limits = Limits {
        requests_per_minute: 30,
        concurrent_contributions: 4,
        contribution_queue: 32,
        tickets_per_address: 4,
        ticket_timeout_secs: 10,
        ..Limits::default()
    };
    let cluster = LocalCluster::start_limits(limits).await.unwrap();
    let file = Arc::new(cluster.cluster.clone());
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
    println!(
        "{PROVIDERS} providers from {ADDRESSES} addresses: {} admitted, {} busy, {} over their address's ticket cap, {} rate-limited; peak memory of the process (all roles) {} MiB",
        tally.admitted,
        tally.busy,
        tally.capped,
        tally.rate_limited,
        peak_rss_kib() / 1024
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
    // Told admitted ⇔ counted: every party stores exactly the admitted contributions.
    for (i, p) in cluster.parties.iter().enumerate() {
        let p = p.as_ref().unwrap();
        let mut stored = 0;
        for _ in 0..100 {
            stored = p.committed_count(DATASET).unwrap();
            if stored == tally.admitted {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(stored, tally.admitted, "party {i}");
        assert_eq!(
            p.stored_rows().unwrap(),
            tally.admitted,
            "party {i}: nothing pending"
        );
    }
    cluster.stop().await;
}
