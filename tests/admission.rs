//! Exactly-once contributions and fair admission, against an in-process cluster over QUIC:
//! a provider that loses the decision learns it by its contribution id; a coordinator
//! restart before the decision aborts everywhere; an unused ticket times out and frees its
//! slot and the parties' pending state; a full queue is busy at once; one address cannot
//! hoard tickets while others wait.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpcstats::config::Limits;
use mpcstats::engine::{split, Z128};
use mpcstats::roles::client::{call, fresh_secret, BusyError, Client, Progress};
use mpcstats::roles::demo::LocalCluster;
use mpcstats::roles::party::ticket_hash;
use mpcstats::wire::{ContributionOutcome, FromCoordinator, FromParty, Id, ToCoordinator, ToParty};

const DATASET: &str = "eth_balance";

/// An anonymous QUIC connection from `from` (an address of the loopback network) to the
/// coordinator (`None`) or a party.
async fn connection(cluster: &LocalCluster, party: Option<usize>, from: &str) -> quinn::Connection {
    let bind: SocketAddr = format!("{from}:0").parse().unwrap();
    let ep = quinn::Endpoint::client(bind).unwrap();
    let (addr, pin) = match party {
        None => (
            cluster.cluster.coordinator.addr,
            cluster.cluster.coordinator_pin(),
        ),
        Some(i) => (
            cluster.cluster.parties[i].addr,
            cluster.cluster.party_pin(i),
        ),
    };
    mpcstats::net::endpoint::connect(&ep, addr, pin, None)
        .await
        .unwrap()
}

/// Sends a share intent; returns the coordinator's stream and its first answer.
async fn intent(conn: &quinn::Connection) -> (quinn::RecvStream, FromCoordinator, [u8; 32]) {
    let ticket = fresh_secret();
    let msg = ToCoordinator::ShareIntent {
        dataset: DATASET.into(),
        ticket_hash: ticket_hash(&ticket),
    };
    let (_s, r, first): (_, _, FromCoordinator) = call(conn, &msg).await.unwrap();
    (r, first, ticket)
}

async fn ticket(conn: &quinn::Connection) -> (quinn::RecvStream, Id, [u8; 32]) {
    match intent(conn).await {
        (r, FromCoordinator::Ticket { contribution }, t) => (r, contribution, t),
        (_, other, _) => panic!("expected a ticket, got {other:?}"),
    }
}

/// Submits a sharing of `value` (scaled) to the given parties, at once (the parties check
/// a submission together, so each waits for the others).
async fn submit(
    cluster: &LocalCluster,
    to: &[usize],
    id: Id,
    ticket: [u8; 32],
    value: u128,
) -> Vec<FromParty> {
    let pairs = split(Z128(value), &mut rand::thread_rng());
    let sends = to.iter().map(|&i| async move {
        let conn = connection(cluster, Some(i), "127.0.0.1").await;
        let msg = ToParty::Submit {
            contribution: id,
            ticket,
            a: pairs[i].a.0,
            b: pairs[i].b.0,
        };
        let (_s, _r, reply): (_, _, FromParty) = call(&conn, &msg).await.unwrap();
        reply
    });
    futures::future::join_all(sends).await
}

/// Polls until `f` holds, for at most 20 s.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 20 s");
}

fn committed_everywhere(cluster: &LocalCluster) -> Vec<u64> {
    cluster
        .parties
        .iter()
        .map(|p| p.as_ref().unwrap().committed_count(DATASET).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_decision_is_learnt_by_contribution_id() {
    let cluster = LocalCluster::start(None).await.unwrap();
    let coord = connection(&cluster, None, "127.0.0.1").await;
    let (recv, id, ticket) = ticket(&coord).await;
    let replies = submit(&cluster, &[0, 1, 2], id, ticket, 150_000_000).await;
    assert!(
        replies.iter().all(|r| matches!(r, FromParty::Stored)),
        "{replies:?}"
    );
    // The provider's connection dies before the decision reaches it.
    drop(recv);
    coord.close(0u32.into(), b"provider lost its network");
    let client = Client::connect(&cluster.cluster).await.unwrap();
    let admission = client
        .await_outcome(id, anyhow::anyhow!("connection lost"))
        .await
        .expect("committed");
    assert_eq!((admission.contribution, admission.count), (id, 1));
    // Told committed ⇔ counted in all three stores.
    eventually("the commit reaching every party", || {
        committed_everywhere(&cluster) == vec![1, 1, 1]
    })
    .await;
    assert_eq!(
        client.outcome(id).await.unwrap(),
        ContributionOutcome::Committed {
            dataset: DATASET.into(),
            count: 1
        }
    );
    // An id the coordinator never issued is unknown, not pending.
    assert_eq!(
        client.outcome([7; 16]).await.unwrap(),
        ContributionOutcome::Unknown
    );
    // The next provider is admitted as number 2.
    assert_eq!(client.share(DATASET, "2.5").await.unwrap().count, 2);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_restart_before_the_decision_aborts_everywhere() {
    let mut cluster = LocalCluster::start(None).await.unwrap();
    let coord = connection(&cluster, None, "127.0.0.1").await;
    let (_recv, id, ticket) = ticket(&coord).await;
    // The coordinator dies right after issuing the ticket; the parties still take the
    // submission and hold it as pending, undecided.
    cluster.stop_coordinator().await;
    let replies = submit(&cluster, &[0, 1, 2], id, ticket, 300_000_000).await;
    assert!(
        replies.iter().all(|r| matches!(r, FromParty::Stored)),
        "{replies:?}"
    );
    let pending = |c: &LocalCluster| -> Vec<u64> {
        c.parties
            .iter()
            .map(|p| p.as_ref().unwrap().stored_rows().unwrap())
            .collect()
    };
    assert_eq!(pending(&cluster), vec![1, 1, 1]);
    assert_eq!(committed_everywhere(&cluster), vec![0, 0, 0]);
    cluster.restart_coordinator().await.unwrap();
    let client = Client::connect(&cluster.cluster).await.unwrap();
    // Stopping the in-process coordinator aborts what it had in flight (a kill -9 would
    // leave it undecided, and the restart aborts it): aborted either way.
    let err = client
        .await_outcome(id, anyhow::anyhow!("connection lost"))
        .await
        .expect_err("aborted");
    assert!(format!("{err:#}").starts_with("not admitted: "), "{err:#}");
    assert!(matches!(
        client.outcome(id).await.unwrap(),
        ContributionOutcome::Aborted { .. }
    ));
    // Told aborted ⇔ counted nowhere: the restarted coordinator delivers the abort.
    eventually("the abort reaching every party", || {
        pending(&cluster) == vec![0, 0, 0]
    })
    .await;
    assert_eq!(committed_everywhere(&cluster), vec![0, 0, 0]);
    // A replay of the submission finds nothing to submit to.
    let late = submit(&cluster, &[2], id, ticket, 300_000_000).await;
    assert!(matches!(&late[0], FromParty::Refused { .. }), "{late:?}");
    // The next share succeeds and is number 1.
    assert_eq!(client.share(DATASET, "1").await.unwrap().count, 1);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_ticket_times_out_and_frees_its_slot() {
    let limits = Limits {
        requests_per_minute: 1_000_000,
        concurrent_contributions: 1,
        ticket_timeout_secs: 2,
        ..Limits::default()
    };
    let cluster = LocalCluster::start_limits(limits).await.unwrap();
    let hoarder = connection(&cluster, None, "127.0.0.1").await;
    let (_recv, hoarded, hoarded_ticket) = ticket(&hoarder).await;
    // The only slot is taken: an honest provider waits at position 1, then gets through
    // once the unused ticket runs out.
    let mut client = Client::connect(&cluster.cluster).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    client.progress = Some(Arc::new(move |p| log.lock().unwrap().push(p)));
    let admitted = client
        .share(DATASET, "4")
        .await
        .expect("admitted after the timeout");
    assert_eq!(admitted.count, 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.first(), Some(&Progress::Queued(1)), "{seen:?}");
    assert!(seen.contains(&Progress::Ticket(admitted.contribution)));
    // The hoarded contribution was aborted for its timeout and counts nowhere.
    match client.outcome(hoarded).await.unwrap() {
        ContributionOutcome::Aborted { reason } => {
            assert!(reason.contains("ticket_timeout_secs"), "{reason}")
        }
        other => panic!("expected an abort, got {other:?}"),
    }
    // The parties dropped its pending state: the ticket is of no use any more.
    let late = submit(&cluster, &[0], hoarded, hoarded_ticket, 1).await;
    assert!(matches!(&late[0], FromParty::Refused { .. }), "{late:?}");
    assert_eq!(committed_everywhere(&cluster), vec![1, 1, 1]);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_busy_at_once_and_one_address_cannot_hoard() {
    let limits = Limits {
        requests_per_minute: 1_000_000,
        concurrent_contributions: 2,
        contribution_queue: 1,
        tickets_per_address: 2,
        ticket_timeout_secs: 30,
        ..Limits::default()
    };
    let cluster = LocalCluster::start_limits(limits).await.unwrap();
    // A hoarder on its own address takes its two tickets, and is refused a third.
    let hoarder = connection(&cluster, None, "127.0.0.2").await;
    let (_r1, _, _) = ticket(&hoarder).await;
    let (_r2, _, _) = ticket(&hoarder).await;
    match intent(&hoarder).await.1 {
        FromCoordinator::Refused { reason } => {
            assert!(reason.contains("tickets_per_address"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Both slots are held: the next provider waits at position 1 …
    let waiting = connection(&cluster, None, "127.0.0.3").await;
    let (_w, first, _) = intent(&waiting).await;
    assert!(
        matches!(first, FromCoordinator::Queued { position: 1 }),
        "{first:?}"
    );
    // … and with the queue full the one after is told at once to come back later.
    let late = connection(&cluster, None, "127.0.0.1").await;
    match intent(&late).await.1 {
        FromCoordinator::Busy { retry_after_secs } => assert!(retry_after_secs >= 1),
        other => panic!("expected busy, got {other:?}"),
    }
    let client = Client::connect(&cluster.cluster).await.unwrap();
    let err = client.share(DATASET, "1").await.expect_err("busy");
    assert!(err.downcast_ref::<BusyError>().is_some(), "{err:#}");
    assert_eq!(committed_everywhere(&cluster), vec![0, 0, 0]);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_queries_at_once_all_get_the_one_release() {
    let cluster = LocalCluster::start(None).await.unwrap();
    let client = Arc::new(Client::connect(&cluster.cluster).await.unwrap());
    for v in 1..=10 {
        client.share(DATASET, &format!("{v}.5")).await.unwrap();
    }
    // Eight consumers ask for the same statistics the moment the epoch closed.
    for stat in ["mean", "median"] {
        let asks = (0..8).map(|_| {
            let c = client.clone();
            async move {
                c.query(&mpcstats::wire::QuerySpec::new(DATASET, stat))
                    .await
            }
        });
        let answers = futures::future::join_all(asks).await;
        let texts: Vec<String> = answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|e| panic!("{stat}: {e:#}")).text)
            .collect();
        assert!(texts.iter().all(|t| *t == texts[0]), "{stat}: {texts:?}");
        // Both are 6 for 1.5, 2.5, …, 10.5 (the median of an even count is the midpoint).
        assert_eq!(texts[0], "6.00000000", "{stat}");
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_rate_limit_are_refused_and_outcomes_stay_free() {
    let limits = Limits {
        requests_per_minute: 2,
        ..Limits::default()
    };
    let cluster = LocalCluster::start_limits(limits).await.unwrap();
    let conn = connection(&cluster, None, "127.0.0.4").await;
    // Exactly two intents a minute from one address: both get tickets …
    let (_r1, id, _) = ticket(&conn).await;
    let (_r2, _, _) = ticket(&conn).await;
    // … the third is refused, naming the limit.
    match intent(&conn).await.1 {
        FromCoordinator::Refused { reason } => assert!(
            reason.contains("rate limit") && reason.contains("at most 2 requests per minute"),
            "{reason}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Asking for an outcome costs no token.
    for _ in 0..3 {
        let (_s, _r, reply): (_, _, FromCoordinator) =
            call(&conn, &ToCoordinator::Outcome { contribution: id })
                .await
                .unwrap();
        assert!(matches!(reply, FromCoordinator::Outcome(_)), "{reply:?}");
    }
    cluster.stop().await;
}

/// The refusal reason of a request, or None if it was not refused.
fn refusal(reply: &FromCoordinator) -> Option<&str> {
    match reply {
        FromCoordinator::Refused { reason } => Some(reason),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intents_and_queries_have_their_own_buckets_which_survive_a_restart() {
    let limits = Limits {
        requests_per_minute: 1_000,
        intents_per_minute: 2,
        queries_per_minute: 3,
        ..Limits::default()
    };
    let mut cluster = LocalCluster::start_limits(limits).await.unwrap();
    let conn = connection(&cluster, None, "127.0.0.5").await;
    let query = |conn: quinn::Connection| async move {
        let msg = ToCoordinator::Query {
            spec: mpcstats::wire::QuerySpec::new(DATASET, "count"),
            result_hash: [0; 32],
        };
        let (_s, _r, reply): (_, _, FromCoordinator) = call(&conn, &msg).await.unwrap();
        reply
    };
    // Two intents a minute from this address: the third is refused, naming its limit.
    let (_r1, _, _) = ticket(&conn).await;
    let (_r2, _, _) = ticket(&conn).await;
    let (_, third, _) = intent(&conn).await;
    let reason = refusal(&third).expect("refused").to_string();
    assert!(
        reason.contains("at most 2 share intents per minute")
            && reason.contains("intents_per_minute"),
        "{reason}"
    );
    // Queries have a bucket of their own: three pass the limit (and are refused for the
    // empty dataset instead), the fourth is rate-limited.
    for _ in 0..3 {
        let reply = query(conn.clone()).await;
        let reason = refusal(&reply).expect("no epoch to answer yet");
        assert!(reason.contains("its first release needs"), "{reason}");
    }
    let reply = query(conn.clone()).await;
    assert!(
        refusal(&reply).is_some_and(|r| r.contains("queries_per_minute")),
        "{reply:?}"
    );
    // A restarted coordinator remembers both buckets of this address …
    cluster.stop_coordinator().await;
    cluster.restart_coordinator().await.unwrap();
    let conn = connection(&cluster, None, "127.0.0.5").await;
    let (_, after, _) = intent(&conn).await;
    assert!(
        refusal(&after).is_some_and(|r| r.contains("intents_per_minute")),
        "{after:?}"
    );
    let reply = query(conn.clone()).await;
    assert!(
        refusal(&reply).is_some_and(|r| r.contains("queries_per_minute")),
        "{reply:?}"
    );
    // … and another address has full buckets.
    let other = connection(&cluster, None, "127.0.0.6").await;
    let (_r3, _, _) = ticket(&other).await;
    cluster.stop().await;
}
