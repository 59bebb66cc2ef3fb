//! End-to-end tests over real QUIC on loopback: a whole cluster in this process
//! (`LocalCluster`), providers and consumers through the real client.

use mpcstats::decimal;
use mpcstats::roles::client::{call, Client};
use mpcstats::roles::demo::{demo_queries, demo_values, describe, LocalCluster};
use mpcstats::roles::init::example_dataset;
use mpcstats::stats::{reference, Query};
use mpcstats::wire::{FromCoordinator, FromParty, QuerySpec, ToCoordinator, ToParty};

fn spec(stat: &str, population: bool) -> QuerySpec {
    QuerySpec {
        population,
        ..QuerySpec::new("eth_balance", stat)
    }
}

/// The plaintext answer to `spec` over `values`.
fn expected(spec: &QuerySpec, values: &[u128]) -> mpcstats::stats::answer::Answer {
    let q = Query::new(spec, &example_dataset()).unwrap();
    reference::answer(&q, values).unwrap()
}

/// Every demo statistic (all kinds, with parameters and filters) equals plaintext over the
/// newest closed epoch of `by_seq` (the values in the order they were admitted).
async fn check_all(client: &Client, by_seq: &[u128]) {
    let values = released(by_seq);
    for spec in demo_queries("eth_balance") {
        let got = client.query(&spec).await;
        let got = got.unwrap_or_else(|e| panic!("{}: {e:#}", describe(&spec)));
        let want = expected(&spec, values);
        assert_eq!(
            (got.count, &got.text),
            (want.count, &want.text),
            "{}",
            describe(&spec)
        );
        assert_eq!(
            got.epoch,
            by_seq.len() as u64 / EPOCH,
            "{}",
            describe(&spec)
        );
    }
}

/// Contributions per epoch of `eth_balance`.
const EPOCH: u64 = mpcstats::config::DEFAULT_EPOCH_SIZE;

/// The values a query sees: those numbered up to the newest closed epoch.
fn released(by_seq: &[u128]) -> &[u128] {
    &by_seq[..by_seq.len() / EPOCH as usize * EPOCH as usize]
}

/// Shares `values` (32 providers at a time); returns them in the order they were admitted.
async fn contribute(client: &Client, values: &[u128]) -> Vec<u128> {
    let client = std::sync::Arc::new(client);
    let results = futures::future::join_all(values.chunks(32).map(|chunk| {
        let client = client.clone();
        async move {
            let mut seqs = Vec::new();
            for v in chunk {
                let a = client
                    .share("eth_balance", &decimal::format(*v, 8))
                    .await
                    .expect("share admitted");
                seqs.push((a.count, *v));
            }
            seqs
        }
    }))
    .await;
    let mut all: Vec<(u64, u128)> = results.into_iter().flatten().collect();
    all.sort_unstable();
    let seqs: Vec<u64> = all.iter().map(|p| p.0).collect();
    let first = seqs.first().copied().unwrap_or(1);
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "numbers are dense"
    );
    assert_eq!(seqs.len(), values.len());
    assert!(first >= 1);
    all.into_iter().map(|p| p.1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_contributions_every_statistic_exact() {
    let cluster = LocalCluster::start(None).await.unwrap();
    let client = Client::connect(&cluster.cluster).await.unwrap();
    let values = contribute(&client, &demo_values(1000, 42)).await;
    check_all(&client, &values).await;
    // Every party stored exactly the admitted contributions.
    for p in &cluster.parties {
        assert_eq!(p.as_ref().unwrap().stored_rows().unwrap(), 1000);
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_values_do_not_wrap() {
    let cluster = LocalCluster::start(None).await.unwrap();
    let client = Client::connect(&cluster.cluster).await.unwrap();
    // The dataset maximum (10^6 ETH at 8 decimals) and zero.
    let max = 100_000_000_000_000u128;
    let values: Vec<u128> = (0..20).map(|i| if i % 3 == 0 { 0 } else { max }).collect();
    let values = contribute(&client, &values).await;
    check_all(&client, &values).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_cohort_and_bad_requests_are_refused() {
    let cluster = LocalCluster::start(None).await.unwrap();
    let client = Client::connect(&cluster.cluster).await.unwrap();
    contribute(&client, &[1, 2, 3, 4, 5, 6, 7, 8, 9]).await;

    // Nine contributions close no epoch of ten: nothing is released yet.
    let err = client.query(&spec("mean", false)).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("first release needs 10"),
        "{err:#}"
    );

    // Bad values never leave the client, and nothing is stored.
    for bad in ["-1", "1000000.00000001", "1.123456789", "abc", "1e3", ""] {
        let err = client.share("eth_balance", bad).await.unwrap_err();
        assert!(format!("{err:#}").contains("eth_balance"), "{bad}: {err:#}");
    }
    let err = client.share("no_such_dataset", "1").await.unwrap_err();
    assert!(format!("{err:#}").contains("unknown dataset"), "{err:#}");

    // The coordinator refuses an unknown dataset and an unknown statistic itself too.
    let conn = raw_connection(&cluster, None).await;
    let (_s, _r, reply): (_, _, FromCoordinator) = call(
        &conn,
        &ToCoordinator::ShareIntent {
            dataset: "nope".into(),
            ticket_hash: [0; 32],
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(reply, FromCoordinator::Refused { ref reason } if reason.contains("unknown dataset")),
        "{reply:?}"
    );
    let (_s, _r, reply): (_, _, FromCoordinator) = call(
        &conn,
        &ToCoordinator::Query {
            spec: spec("mode", false),
            result_hash: [0; 32],
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(reply, FromCoordinator::Refused { ref reason } if reason.contains("unknown statistic")),
        "{reply:?}"
    );

    for p in &cluster.parties {
        assert_eq!(p.as_ref().unwrap().stored_rows().unwrap(), 9);
    }
    cluster.stop().await;
}

/// An anonymous connection to the coordinator (`None`) or a party.
async fn raw_connection(cluster: &LocalCluster, party: Option<usize>) -> quinn::Connection {
    let ep = mpcstats::net::endpoint::client_endpoint().unwrap();
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

/// A contribution under a fresh ticket of the test's own (the coordinator sees its hash).
async fn ticket(conn: &quinn::Connection) -> (quinn::RecvStream, [u8; 16], [u8; 32]) {
    let ticket = mpcstats::roles::client::fresh_secret();
    let (_s, r, reply): (_, _, FromCoordinator) = call(
        conn,
        &ToCoordinator::ShareIntent {
            dataset: "eth_balance".into(),
            ticket_hash: mpcstats::roles::party::ticket_hash(&ticket),
        },
    )
    .await
    .unwrap();
    match reply {
        FromCoordinator::Ticket { contribution } => (r, contribution, ticket),
        other => panic!("expected a ticket, got {other:?}"),
    }
}

async fn submit(conn: &quinn::Connection, msg: ToParty) -> FromParty {
    let (_s, _r, reply) = call(conn, &msg).await.unwrap();
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_reused_tickets_and_disagreeing_pairs_store_nothing() {
    let cluster = LocalCluster::start(None).await.unwrap();
    let coord = raw_connection(&cluster, None).await;
    let mut parties = Vec::new();
    for i in 0..3 {
        parties.push(raw_connection(&cluster, Some(i)).await);
    }
    let mut rng = rand::thread_rng();
    let split = |v: u128, rng: &mut rand::rngs::ThreadRng| {
        mpcstats::engine::split(mpcstats::engine::Z128(v), rng)
    };

    // A forged ticket is refused by every party.
    let (_r, contribution, _ticket) = ticket(&coord).await;
    let pairs = split(5, &mut rng);
    for i in 0..3 {
        let reply = submit(
            &parties[i],
            ToParty::Submit {
                contribution,
                ticket: [7; 32],
                a: pairs[i].a.0,
                b: pairs[i].b.0,
            },
        )
        .await;
        assert!(
            matches!(reply, FromParty::Refused { ref reason } if reason.contains("does not match")),
            "{reply:?}"
        );
    }

    // Share pairs that disagree: party 1 gets a tampered `a` (component 1, also held by
    // party 0 as its `b`). The check fails and the coordinator refuses the contribution.
    let (mut decision, contribution, t) = ticket(&coord).await;
    let pairs = split(5, &mut rng);
    let replies = futures::future::join_all((0..3).map(|i| {
        let a = if i == 1 {
            pairs[i].a.0 ^ 1
        } else {
            pairs[i].a.0
        };
        submit(
            &parties[i],
            ToParty::Submit {
                contribution,
                ticket: t,
                a,
                b: pairs[i].b.0,
            },
        )
    }))
    .await;
    assert!(
        matches!(replies[1], FromParty::Refused { ref reason } if reason.contains("disagree")),
        "{replies:?}"
    );
    let verdict: FromCoordinator = mpcstats::net::frame::recv_msg(&mut decision, 1 << 20)
        .await
        .unwrap();
    assert!(
        matches!(verdict, FromCoordinator::Refused { ref reason } if reason.contains("disagree")),
        "{verdict:?}"
    );

    // A used ticket cannot be used again.
    let reply = submit(
        &parties[0],
        ToParty::Submit {
            contribution,
            ticket: t,
            a: 1,
            b: 2,
        },
    )
    .await;
    assert!(
        matches!(reply, FromParty::Refused { ref reason } if reason.contains("already used")),
        "{reply:?}"
    );

    // A valid contribution still goes through, and then its ticket is spent.
    let (mut decision, contribution, t) = ticket(&coord).await;
    let pairs = split(9, &mut rng);
    let replies = futures::future::join_all((0..3).map(|i| {
        submit(
            &parties[i],
            ToParty::Submit {
                contribution,
                ticket: t,
                a: pairs[i].a.0,
                b: pairs[i].b.0,
            },
        )
    }))
    .await;
    assert!(
        replies.iter().all(|r| matches!(r, FromParty::Stored)),
        "{replies:?}"
    );
    let verdict: FromCoordinator = mpcstats::net::frame::recv_msg(&mut decision, 1 << 20)
        .await
        .unwrap();
    assert!(
        matches!(verdict, FromCoordinator::Admitted { count: 1, .. }),
        "{verdict:?}"
    );
    let reply = submit(
        &parties[2],
        ToParty::Submit {
            contribution,
            ticket: t,
            a: 1,
            b: 2,
        },
    )
    .await;
    assert!(matches!(reply, FromParty::Refused { .. }), "{reply:?}");

    // Aborts are delivered; only the admitted contribution is stored anywhere.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for p in &cluster.parties {
        assert_eq!(p.as_ref().unwrap().stored_rows().unwrap(), 1);
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_are_refused_without_harm() {
    let cluster = LocalCluster::start(None).await.unwrap();
    for target in [None, Some(0)] {
        let conn = raw_connection(&cluster, target).await;
        // Garbage that is a valid frame but not a valid message.
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        s.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
        let _ = s.finish();
        let reply = mpcstats::net::frame::read_frame(&mut r, 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&reply).to_string();
        assert!(text.contains("malformed"), "{target:?}: {text}");
        // A frame announcing 2 GiB: refused before any allocation.
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        s.write_all(&[0x80, 0, 0, 0, 1, 2, 3]).await.unwrap();
        let reply = mpcstats::net::frame::read_frame(&mut r, 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&reply).to_string();
        assert!(
            text.contains("malformed") && text.contains("large"),
            "{target:?}: {text}"
        );
    }
    // The servers still work.
    let client = Client::connect(&cluster.cluster).await.unwrap();
    contribute(&client, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).await;
    let got = client.query(&spec("sum", false)).await.unwrap();
    assert_eq!(got.text, "0.00000055");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_certificate_pin_is_refused() {
    let cluster = LocalCluster::start(None).await.unwrap();
    let mut wrong = cluster.cluster.clone();
    wrong.coordinator.pin = wrong.parties[0].pin.clone();
    let err = match Client::connect(&wrong).await {
        Ok(_) => panic!("connected to a server with the wrong pin"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("coordinator") && err.to_lowercase().contains("pin"),
        "{err}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_party_keeps_its_data() {
    let mut cluster = LocalCluster::start(None).await.unwrap();
    let values: Vec<u128> = (1..=10).map(|v| v * 1_000_000).collect();
    {
        let client = Client::connect(&cluster.cluster).await.unwrap();
        contribute(&client, &values[..4]).await;
    }
    cluster.stop_party(2).await;
    cluster.restart_party(2).await.unwrap();
    let client = Client::connect(&cluster.cluster).await.unwrap();
    contribute(&client, &values[4..]).await;
    let got = client.query(&spec("sum", false)).await.unwrap();
    assert_eq!(got.text, expected(&spec("sum", false), &values).text);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_values_are_refused_by_the_parties() {
    let cluster = LocalCluster::start(None).await.unwrap();
    let coord = raw_connection(&cluster, None).await;
    let mut parties = Vec::new();
    for i in 0..3 {
        parties.push(raw_connection(&cluster, Some(i)).await);
    }
    let max = 100_000_000_000_000u128; // 10^6 ETH at 8 decimals
    let minus_one = 0u128.wrapping_sub(1);
    for (value, expect) in [
        (max + 1, "above the maximum"),
        (minus_one, "negative"),
        (1u128 << 127, "negative"),
        (max, ""),
        (0, ""),
    ] {
        let (mut decision, contribution, t) = ticket(&coord).await;
        let pairs = mpcstats::engine::split(mpcstats::engine::Z128(value), &mut rand::thread_rng());
        let replies = futures::future::join_all((0..3).map(|i| {
            submit(
                &parties[i],
                ToParty::Submit {
                    contribution,
                    ticket: t,
                    a: pairs[i].a.0,
                    b: pairs[i].b.0,
                },
            )
        }))
        .await;
        let verdict: FromCoordinator = mpcstats::net::frame::recv_msg(&mut decision, 1 << 20)
            .await
            .unwrap();
        if expect.is_empty() {
            assert!(
                replies.iter().all(|r| matches!(r, FromParty::Stored)),
                "{value}: {replies:?}"
            );
            assert!(
                matches!(verdict, FromCoordinator::Admitted { .. }),
                "{value}: {verdict:?}"
            );
        } else {
            for r in &replies {
                assert!(
                    matches!(r, FromParty::Refused { reason } if reason.contains(expect)),
                    "{value}: {r:?}"
                );
            }
            assert!(
                matches!(verdict, FromCoordinator::Refused { ref reason } if reason.contains(expect)),
                "{verdict:?}"
            );
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for p in &cluster.parties {
        assert_eq!(p.as_ref().unwrap().stored_rows().unwrap(), 2);
    }
    cluster.stop().await;
}

/// The consumer's result secret and the provider's ticket are their own: the coordinator
/// sees only their hashes, and a hash is no ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_of_the_secret_gets_a_result_or_submits() {
    use mpcstats::roles::client::fresh_secret;
    use mpcstats::roles::party::ticket_hash;
    let cluster = LocalCluster::start(None).await.unwrap();
    let client = Client::connect(&cluster.cluster).await.unwrap();
    let values: Vec<u128> = (1..=10).map(|v| v * 100_000_000).collect();
    contribute(&client, &values).await;
    let coord = raw_connection(&cluster, None).await;
    let mut parties = Vec::new();
    for i in 0..3 {
        parties.push(raw_connection(&cluster, Some(i)).await);
    }

    // A query under our secret: the coordinator forwards only its hash.
    let secret = fresh_secret();
    let hash = ticket_hash(&secret);
    let (_s, _r, reply): (_, _, FromCoordinator) = call(
        &coord,
        &ToCoordinator::Query {
            spec: spec("sum", false),
            result_hash: hash,
        },
    )
    .await
    .unwrap();
    let FromCoordinator::QueryStarted { session, .. } = reply else {
        panic!("{reply:?}")
    };
    // What the coordinator holds (the hash), or any other bytes, fetches nothing …
    for (i, p) in parties.iter().enumerate() {
        for wrong in [hash, [0; 32]] {
            let r = submit(
                p,
                ToParty::FetchResult {
                    session,
                    ticket: wrong,
                },
            )
            .await;
            assert!(
                matches!(r, FromParty::Refused { ref reason } if reason.contains("does not match")),
                "party {i}: {r:?}"
            );
        }
    }
    // … and the secret fetches the result from each party.
    let mut shares = Vec::new();
    for p in &parties {
        match submit(
            p,
            ToParty::FetchResult {
                session,
                ticket: secret,
            },
        )
        .await
        {
            FromParty::Result { count, pairs, .. } => {
                assert_eq!(count, 10);
                shares.push(pairs[0]);
            }
            other => panic!("{other:?}"),
        }
    }
    let sum = shares[0]
        .0
        .wrapping_add(shares[1].0)
        .wrapping_add(shares[2].0);
    assert_eq!(sum, values.iter().sum::<u128>());

    // A contribution: the hash of our ticket, which the coordinator was given, is refused as
    // a ticket; nothing is stored.
    let (_r, contribution, t) = ticket(&coord).await;
    let pairs = mpcstats::engine::split(mpcstats::engine::Z128(5), &mut rand::thread_rng());
    for (i, p) in parties.iter().enumerate() {
        let r = submit(
            p,
            ToParty::Submit {
                contribution,
                ticket: ticket_hash(&t),
                a: pairs[i].a.0,
                b: pairs[i].b.0,
            },
        )
        .await;
        assert!(
            matches!(r, FromParty::Refused { ref reason } if reason.contains("does not match")),
            "party {i}: {r:?}"
        );
    }
    for p in &cluster.parties {
        assert_eq!(p.as_ref().unwrap().stored_rows().unwrap(), 10);
    }
    cluster.stop().await;
}

/// A cluster can run semi-honest (`security = "semi-honest"`): answers say so; the default
/// (malicious) cluster's answers say malicious; and a consumer whose cluster file asks for
/// malicious refuses an answer the parties computed semi-honest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_the_security_mode_and_a_weaker_one_is_refused() {
    use mpcstats::engine::Security;
    use mpcstats::roles::demo::ExtraSources;
    let values: Vec<u128> = (1..=10).map(|v| v * 1_000_000).collect();
    let want = expected(&spec("median", false), &values).text;
    for mode in [Security::Malicious, Security::SemiHonest] {
        let cluster = LocalCluster::start_mode(None, 1, 1, ExtraSources::default(), mode)
            .await
            .unwrap();
        assert_eq!(cluster.cluster.security, mode);
        let client = Client::connect(&cluster.cluster).await.unwrap();
        contribute(&client, &values).await;
        let a = client.query(&spec("median", false)).await.unwrap();
        assert_eq!((a.text.as_str(), a.security), (want.as_str(), Some(mode)));
        if mode == Security::SemiHonest {
            let mut strict = cluster.cluster.clone();
            strict.security = Security::Malicious;
            let picky = Client::connect(&strict).await.unwrap();
            let err = picky.query(&spec("median", false)).await.unwrap_err();
            assert!(format!("{err:#}").contains("weaker guarantee"), "{err:#}");
        }
        cluster.stop().await;
    }
}
