//! Operations, with every role in its own process as deployed: `--log-format json` (one
//! structured line per admitted or refused request, no secret in any), a graceful SIGTERM
//! (sessions in flight finish or are aborted with a reason, the process exits 0, the
//! cluster works after a restart), and each server's `--help` naming the UDP ports to open.

mod procs;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use mpcstats::config::Cluster;
use mpcstats::engine::{share, Z128};
use mpcstats::net::endpoint::{client_endpoint, connect};
use mpcstats::net::frame::{recv_msg, MAX_CONTROL_FRAME};
use mpcstats::roles::client::{call, fresh_secret};
use mpcstats::roles::party::ticket_hash;
use mpcstats::wire::{
    short, ContributionOutcome, FromCoordinator, FromParty, Id, QuerySpec, Ticket, ToCoordinator,
    ToParty,
};
use procs::{Procs, BIN, NEVER_HANGS};

/// A raw connection to one server of the cluster (anonymous, pinned).
async fn raw(addr: SocketAddr, pin: mpcstats::net::pin::Pin) -> quinn::Connection {
    let ep = client_endpoint().unwrap();
    connect(&ep, addr, pin, None).await.unwrap()
}

/// Every line of a JSON log, parsed; panics on a line that is not a JSON object.
fn json_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v.get(name).and_then(|f| f.as_str()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_one_line_per_admitted_and_refused_request() {
    let mut p = Procs::init(|_| {});
    p.flags = vec!["--log-format".into(), "json".into()];
    for slot in 0..6 {
        p.spawn(slot);
    }
    let cluster = p.cluster();
    let c = procs::connect(&p.cluster_file()).await;
    let admitted = c.share("eth_balance", "1.5").await.unwrap();
    // Refused: an unknown dataset (asked directly: the client checks names itself).
    let conn = raw(cluster.coordinator.addr, cluster.coordinator_pin()).await;
    let ticket: Ticket = fresh_secret();
    let intent = ToCoordinator::ShareIntent {
        dataset: "no_such_dataset".into(),
        ticket_hash: ticket_hash(&ticket),
    };
    let (_s, _r, reply): (_, _, FromCoordinator) = call(&conn, &intent).await.unwrap();
    assert!(
        matches!(&reply, FromCoordinator::Refused { reason } if reason.contains("no_such_dataset")),
        "{reply:?}"
    );
    // Refused: a query before the first epoch closed.
    let err = c
        .query(&QuerySpec::new("eth_balance", "mean"))
        .await
        .expect_err("no closed epoch yet");
    assert!(
        format!("{err:#}").contains("first release needs"),
        "{err:#}"
    );
    // The notary refuses a server no dataset names.
    let notary = raw(
        cluster.notary.addr,
        mpcstats::net::pin::pin_from_hex(&cluster.notary.pin).unwrap(),
    )
    .await;
    let (mut s, mut r) = notary.open_bi().await.unwrap();
    let connect_msg = mpcstats::roles::notary::ToNotary::Connect {
        server_name: "elsewhere.example".into(),
        port: 443,
    };
    mpcstats::net::frame::send_msg(&mut s, &connect_msg)
        .await
        .unwrap();
    let reply: mpcstats::roles::notary::FromNotary =
        recv_msg(&mut r, MAX_CONTROL_FRAME).await.unwrap();
    assert!(format!("{reply:?}").contains("does not dial"), "{reply:?}");
    notary.close(0u32.into(), b"done");
    // The api: one page served, one unknown dataset refused.
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let url = format!("http://{}{path}", p.api);
        let http = http.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match http.get(&url).send().await {
                    Ok(r) => return r.status().as_u16(),
                    Err(e) if Instant::now() > deadline => panic!("{url}: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    };
    assert_eq!(get("/v1/datasets").await, 200);
    assert_eq!(get("/v1/datasets/no_such_dataset/stats/mean").await, 404);

    // Stop every role so that its log is complete (and check they exit 0).
    for slot in 0..6 {
        p.signal(slot, "TERM");
    }
    for slot in 0..6 {
        let status = p.wait_exit(slot);
        assert!(status.success(), "role {slot}: {status}");
    }

    let coordinator = p.log(0);
    let lines = json_lines(&coordinator);
    let id = short(&admitted.contribution);
    let share = lines
        .iter()
        .find(|v| field(v, "request") == "share_intent" && field(v, "outcome") == "admitted")
        .unwrap_or_else(|| panic!("no admitted share line in\n{coordinator}"));
    assert_eq!(field(share, "contribution"), id, "{share}");
    assert_eq!(field(share, "dataset"), "eth_balance", "{share}");
    assert_eq!(field(share, "peer"), "127.0.0.1", "{share}");
    assert_eq!(
        share.get("count").and_then(|n| n.as_u64()),
        Some(1),
        "{share}"
    );
    assert_eq!(field(share, "level"), "INFO", "{share}");
    let refused = lines
        .iter()
        .find(|v| field(v, "request") == "share_intent" && field(v, "outcome") == "refused")
        .unwrap_or_else(|| panic!("no refused share line in\n{coordinator}"));
    assert!(
        field(refused, "reason").contains("no_such_dataset"),
        "{refused}"
    );
    assert_eq!(field(refused, "peer"), "127.0.0.1", "{refused}");
    let query = lines
        .iter()
        .find(|v| field(v, "request") == "query" && field(v, "outcome") == "refused")
        .unwrap_or_else(|| panic!("no refused query line in\n{coordinator}"));
    assert!(
        field(query, "reason").contains("first release needs"),
        "{query}"
    );
    // One line per request: exactly one admitted share, one refused share.
    let count = |request: &str, outcome: &str| {
        lines
            .iter()
            .filter(|v| field(v, "request") == request && field(v, "outcome") == outcome)
            .count()
    };
    assert_eq!(count("share_intent", "admitted"), 1);
    assert_eq!(count("share_intent", "refused"), 1);
    // No ticket (nor its hash) in any line.
    let hash = hex::encode(ticket_hash(&ticket));
    for role in 0..6 {
        let log = p.log(role);
        json_lines(&log);
        assert!(!log.contains(&hex::encode(ticket)), "role {role}");
        assert!(!log.contains(&hash), "role {role}");
    }
    let notary_lines = json_lines(&p.log(4));
    let session = notary_lines
        .iter()
        .find(|v| field(v, "request") == "notary_session" && field(v, "outcome") == "refused")
        .unwrap_or_else(|| panic!("no refused notary line in\n{}", p.log(4)));
    assert!(
        field(session, "reason").contains("does not dial"),
        "{session}"
    );
    let api_lines = json_lines(&p.log(5));
    let served = |path: &str, outcome: &str| {
        api_lines.iter().find(|v| {
            field(v, "request") == "http"
                && field(v, "path") == path
                && field(v, "outcome") == outcome
        })
    };
    let ok = served("/v1/datasets", "admitted")
        .unwrap_or_else(|| panic!("no admitted api line in\n{}", p.log(5)));
    assert_eq!(ok.get("status").and_then(|s| s.as_u64()), Some(200), "{ok}");
    let no = served("/v1/datasets/no_such_dataset/stats/mean", "refused")
        .unwrap_or_else(|| panic!("no refused api line in\n{}", p.log(5)));
    assert_eq!(no.get("status").and_then(|s| s.as_u64()), Some(404), "{no}");
    assert!(field(no, "reason").contains("no_such_dataset"), "{no}");
}

/// A provider's half-done contribution: its ticket and the stream its decision comes on.
struct Pending {
    contribution: Id,
    ticket: Ticket,
    decision: quinn::RecvStream,
    _send: quinn::SendStream,
}

async fn intent(conn: &quinn::Connection, dataset: &str) -> Pending {
    let ticket = fresh_secret();
    let msg = ToCoordinator::ShareIntent {
        dataset: dataset.into(),
        ticket_hash: ticket_hash(&ticket),
    };
    let (send, mut recv, mut reply): (_, _, FromCoordinator) = call(conn, &msg).await.unwrap();
    while let FromCoordinator::Queued { .. } = reply {
        reply = recv_msg(&mut recv, MAX_CONTROL_FRAME).await.unwrap();
    }
    let FromCoordinator::Ticket { contribution } = reply else {
        panic!("no ticket: {reply:?}");
    };
    Pending {
        contribution,
        ticket,
        decision: recv,
        _send: send,
    }
}

async fn submit(cluster: &Cluster, p: &Pending, value: u128) {
    let pairs = share::split(Z128(value), &mut rand::rngs::OsRng);
    // All three at once: the parties check the pairs together.
    let replies = futures::future::join_all(pairs.iter().enumerate().map(|(i, pair)| async move {
        let conn = raw(cluster.parties[i].addr, cluster.party_pin(i)).await;
        let msg = ToParty::Submit {
            contribution: p.contribution,
            ticket: p.ticket,
            a: pair.a.0,
            b: pair.b.0,
        };
        let (_s, _r, reply): (_, _, FromParty) = call(&conn, &msg).await.unwrap();
        reply
    }))
    .await;
    for (i, reply) in replies.iter().enumerate() {
        assert!(matches!(reply, FromParty::Stored), "party {i}: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_or_aborts_contributions_in_flight_and_exits_0() {
    // Tickets outlive the drain, so only the drain can end an unsubmitted one.
    let mut p = Procs::init(|c| c.limits.ticket_timeout_secs = 120);
    for slot in 0..4 {
        p.spawn(slot);
    }
    let cluster = p.cluster();
    let c = procs::connect(&p.cluster_file()).await;
    let conn = raw(cluster.coordinator.addr, cluster.coordinator_pin()).await;
    // Two contributions in flight: A will be submitted during the drain, B never.
    let mut a = intent(&conn, "eth_balance").await;
    let mut b = intent(&conn, "eth_balance").await;
    let status = c.status().await.unwrap();
    assert_eq!(status.load.contributions_in_progress, 2, "{status:?}");
    // Each party holds both expected submissions as sessions in flight.
    assert_eq!(status.party_sessions, [Some(2); 3], "{status:?}");
    assert_eq!(status.closed_epochs, vec![0, 0, 0, 0], "{status:?}");

    p.signal(0, "TERM");
    let stopped = Instant::now();
    // A new intent is refused at once, saying why.
    let refused = loop {
        let ticket = fresh_secret();
        let msg = ToCoordinator::ShareIntent {
            dataset: "eth_balance".into(),
            ticket_hash: ticket_hash(&ticket),
        };
        let (_s, _r, reply): (_, _, FromCoordinator) = call(&conn, &msg).await.unwrap();
        match reply {
            FromCoordinator::Refused { reason } => break reason,
            // The signal may not have arrived yet: that intent waits for its own decision.
            FromCoordinator::Ticket { .. } if stopped.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(refused.contains("shutting down"), "{refused}");
    // A finishes within the drain: committed.
    submit(&cluster, &a, 7).await;
    let decided: FromCoordinator = recv_msg(&mut a.decision, MAX_CONTROL_FRAME).await.unwrap();
    assert!(
        matches!(decided, FromCoordinator::Admitted { count: 1, .. }),
        "{decided:?}"
    );
    // B is aborted with the reason once the drain time is over.
    let decided: FromCoordinator = recv_msg(&mut b.decision, MAX_CONTROL_FRAME).await.unwrap();
    let FromCoordinator::Refused { reason } = decided else {
        panic!("B: {decided:?}");
    };
    assert!(reason.contains("shut down before the decision"), "{reason}");
    let status = p.wait_exit(0);
    assert!(status.success(), "the coordinator exited with {status}");

    // After a restart: both outcomes are definite, and the cluster works.
    p.spawn(0);
    let c = procs::connect(&p.cluster_file()).await;
    match c.outcome(a.contribution).await.unwrap() {
        ContributionOutcome::Committed { count, .. } => assert_eq!(count, 1),
        other => panic!("A: {other:?}"),
    }
    match c.outcome(b.contribution).await.unwrap() {
        ContributionOutcome::Aborted { reason } => {
            assert!(reason.contains("shut down before the decision"), "{reason}")
        }
        other => panic!("B: {other:?}"),
    }
    let epoch = cluster.dataset("eth_balance").unwrap().epoch_size();
    for v in 1..epoch {
        c.share("eth_balance", &v.to_string()).await.unwrap();
    }
    let count = c
        .query(&QuerySpec::new("eth_balance", "count"))
        .await
        .unwrap();
    assert_eq!(count.count, epoch);
    // Once the query's last bookkeeping is done, nothing is in flight anywhere.
    let deadline = Instant::now() + NEVER_HANGS;
    let status = loop {
        let s = c.status().await.unwrap();
        if s.load == Default::default() && s.party_sessions == [Some(0); 3] {
            break s;
        }
        assert!(Instant::now() < deadline, "still busy: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.closed_epochs[0], 1, "{status:?}");
    assert_eq!(status.datasets[0], ("eth_balance".to_string(), epoch));
    let version = env!("CARGO_PKG_VERSION").to_string();
    assert_eq!(status.version, version);
    assert_eq!(
        status.party_versions,
        std::array::from_fn(|_| Some(version.clone()))
    );
    // The command line prints the same facts.
    let out = Command::new(BIN)
        .arg("--cluster")
        .arg(p.cluster_file())
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        format!("version {version}, fingerprint"),
        "coordinator queues: contributions 0 waiting, 0 in progress; queries 0 waiting, 0 in progress".to_string(),
        "0 MPC sessions in flight".to_string(),
        format!("dataset eth_balance: {epoch} contributions, 1 closed epochs of {epoch}"),
    ] {
        assert!(text.contains(&needle), "{needle:?} not in\n{text}");
    }
    // Parties stop cleanly too.
    for slot in 0..4 {
        p.signal(slot, "TERM");
    }
    for slot in 0..4 {
        let status = p.wait_exit(slot);
        assert!(status.success(), "role {slot}: {status}");
    }
}

#[test]
fn every_server_help_names_the_udp_ports_to_open() {
    for (role, needles) in [
        (
            "coordinator",
            &[
                "UDP",
                "providers",
                "consumers",
                "api",
                "status",
                "party 0, 1, 2",
            ][..],
        ),
        (
            "party",
            &[
                "UDP",
                "coordinator",
                "party <-> party",
                "providers",
                "consumers",
            ][..],
        ),
        ("notary", &["UDP", "provers", "TCP"][..]),
        ("api", &["UDP", "coordinator", "party 0, 1, 2", "TCP"][..]),
    ] {
        let out = Command::new(BIN).args([role, "--help"]).output().unwrap();
        assert!(out.status.success(), "{role}");
        let text = String::from_utf8_lossy(&out.stdout);
        for n in needles {
            assert!(text.contains(n), "{role} --help lacks {n:?}:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_a_party_fails_its_sessions_in_flight_and_exits_0() {
    let mut p = Procs::init(|c| c.limits.ticket_timeout_secs = 120);
    for slot in 0..4 {
        p.spawn(slot);
    }
    let cluster = p.cluster();
    let c = procs::connect(&p.cluster_file()).await;
    let conn = raw(cluster.coordinator.addr, cluster.coordinator_pin()).await;
    // A contribution whose submission never comes: party 1 holds it in flight.
    let mut b = intent(&conn, "eth_balance").await;
    p.signal(2, "TERM");
    let stopped = Instant::now();
    // New contributions are refused by the stopping party, and the provider hears why.
    let refused = loop {
        let err = c
            .share("eth_balance", "1")
            .await
            .expect_err("party 1 stops");
        let err = format!("{err:#}");
        if err.contains("shutting down") || stopped.elapsed() > Duration::from_secs(5) {
            break err;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        refused.contains("party 1") && refused.contains("shutting down"),
        "{refused}"
    );
    // After the drain time the party fails the expected submission; the coordinator aborts
    // the contribution, naming the party.
    let decided: FromCoordinator = recv_msg(&mut b.decision, MAX_CONTROL_FRAME).await.unwrap();
    let FromCoordinator::Refused { reason } = decided else {
        panic!("B: {decided:?}");
    };
    assert!(reason.contains("party 1 shut down"), "{reason}");
    let status = p.wait_exit(2);
    assert!(status.success(), "party 1 exited with {status}");
    match c.outcome(b.contribution).await.unwrap() {
        ContributionOutcome::Aborted { reason } => {
            assert!(reason.contains("party 1 shut down"), "{reason}")
        }
        other => panic!("B: {other:?}"),
    }
    // Restarted, the cluster takes contributions again (from a client that dials anew:
    // the old one's connection to party 1 is gone).
    p.spawn(2);
    let deadline = Instant::now() + NEVER_HANGS;
    loop {
        let c = procs::connect(&p.cluster_file()).await;
        match c.share("eth_balance", "2").await {
            Ok(a) => break assert_eq!(a.count, 1),
            Err(e) if Instant::now() > deadline => panic!("{e:#}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
