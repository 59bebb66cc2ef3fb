//! Releases in epochs, over a real cluster on loopback: what a consumer or the coordinator
//! learns from a sequence of answers. The differencing attack (a sum before and after one
//! contribution) fails; a coordinator naming an epoch that is not closed is refused by every
//! party; probing queries are capped per epoch.

use mpcstats::decimal;
use mpcstats::net::endpoint::{client_endpoint, connect};
use mpcstats::net::identity::Identity;
use mpcstats::roles::client::{call, Client};
use mpcstats::roles::demo::LocalCluster;
use mpcstats::roles::init::identity_paths;
use mpcstats::wire::{Control, ControlReply, QuerySpec};

const DS: &str = "eth_balance";

async fn share(client: &Client, values: impl IntoIterator<Item = u128>) {
    for v in values {
        client.share(DS, &decimal::format(v, 8)).await.unwrap();
    }
}

fn sum() -> QuerySpec {
    QuerySpec::new(DS, "sum")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_more_contribution_changes_no_answer_until_the_epoch_closes() {
    let c = LocalCluster::start(None).await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    let first: Vec<u128> = (1..=10).map(|v| v * 100_000_000).collect();
    share(&client, first.iter().copied()).await;
    let before = client.query(&sum()).await.unwrap();
    assert_eq!((before.epoch, before.count), (1, 10));
    assert_eq!(before.text, decimal::format(first.iter().sum(), 8));

    // The victim contributes a distinctive value: the sum does not move.
    let victim = 123_456_789_012u128;
    share(&client, [victim]).await;
    let after = client.query(&sum()).await.unwrap();
    assert_eq!(after, before, "same epoch, same answer");
    for stat in ["mean", "max", "variance"] {
        let q = QuerySpec::new(DS, stat);
        let a = client.query(&q).await.unwrap();
        assert_eq!((a.epoch, a.count), (1, 10), "{stat}");
        assert_eq!(a, client.query(&q).await.unwrap(), "{stat} asked again");
    }

    // Nine more close epoch 2: the difference is a sum over ten contributions, the victim's
    // among them, not the victim's value.
    let rest: Vec<u128> = (1..=9).map(|v| v * 7_000_000).collect();
    share(&client, rest.iter().copied()).await;
    let next = client.query(&sum()).await.unwrap();
    assert_eq!((next.epoch, next.count), (2, 20));
    let s = |a: &mpcstats::stats::answer::Answer| {
        decimal::parse(&a.text, 8, decimal::Excess::Reject).unwrap()
    };
    let diff = s(&next) - s(&before);
    assert_eq!(diff, victim + rest.iter().sum::<u128>());
    assert_ne!(diff, victim);
    c.stop().await;
}

/// The coordinator's own control connection to party `i`, with its real key.
async fn as_coordinator(c: &LocalCluster, i: usize) -> quinn::Connection {
    let (cert, key) = identity_paths(&c.dir, "coordinator");
    let id = Identity::load(cert, key).unwrap();
    let ep = client_endpoint().unwrap();
    let conn = connect(
        &ep,
        c.cluster.parties[i].addr,
        c.cluster.party_pin(i),
        Some(&id),
    )
    .await
    .unwrap();
    // Like the coordinator, show the party the cluster fingerprint first.
    let hello = Control::Hello {
        fingerprint: mpcstats::fingerprint::of(&c.cluster),
    };
    let (_s, _r, reply): (_, _, ControlReply) = call(&conn, &hello).await.unwrap();
    assert!(matches!(reply, ControlReply::Hello { .. }), "{reply:?}");
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_naming_an_open_epoch_is_refused_by_every_party() {
    let c = LocalCluster::start(None).await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    share(&client, (1..=15).map(|v| v * 1_000)).await;
    // Epoch 1 (contributions 1..=10) is closed; epoch 2 would be 1..=20, of which 15 exist;
    // epoch 0 is nothing. A coordinator asking for a prefix of 15 (the newest contributions)
    // has no way to say so: it can only name an epoch, and every party checks it.
    for (epoch, needle) in [
        (2u64, "not closed"),
        (0, "not a release"),
        (u64::MAX, "out of range"),
    ] {
        for i in 0..3 {
            let conn = as_coordinator(&c, i).await;
            let run = Control::RunQuery {
                session: rand::random(),
                spec: sum(),
                epoch,
                ticket_hash: [7; 32],
            };
            let (_s, mut r, first): (_, _, ControlReply) = call(&conn, &run).await.unwrap();
            assert!(matches!(first, ControlReply::Accepted), "{first:?}");
            let verdict: ControlReply = mpcstats::net::frame::recv_msg(&mut r, 1 << 20)
                .await
                .unwrap();
            match verdict {
                ControlReply::Failed { reason } => {
                    assert!(
                        reason.contains(needle),
                        "party {i}, epoch {epoch}: {reason}"
                    )
                }
                other => panic!("party {i} computed over epoch {epoch}: {other:?}"),
            }
        }
    }
    // The real coordinator still answers over epoch 1.
    let a = client.query(&sum()).await.unwrap();
    assert_eq!((a.epoch, a.count), (1, 10));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probing_queries_are_capped_per_epoch() {
    let c = LocalCluster::start(None).await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    share(&client, (1..=10).map(|v| v * 100_000_000)).await;
    let cap = c.cluster.dataset(DS).unwrap().probing_per_epoch;
    assert_eq!(cap, mpcstats::config::DEFAULT_PROBING_PER_EPOCH);
    // An attacker walks a threshold down to isolate values: max --where "< t".
    let walk = |k: u32| QuerySpec {
        filter: Some(format!("< {}", 10 - k % 5)),
        ..QuerySpec::new(DS, if k < 5 { "max" } else { "min" })
    };
    for k in 0..cap {
        let r = client.query(&walk(k)).await;
        assert!(r.is_ok() || format!("{:#}", r.unwrap_err()).contains("min_cohort"));
    }
    let e = format!("{:#}", client.query(&walk(cap)).await.unwrap_err());
    assert!(
        e.contains("query budget") && e.contains(&format!("at most {cap} distinct probing")),
        "{e}"
    );
    // A histogram and a quantile are probing too; plain statistics are not capped.
    let hist = QuerySpec {
        edges: vec!["5".into()],
        ..QuerySpec::new(DS, "histogram")
    };
    assert!(format!("{:#}", client.query(&hist).await.unwrap_err()).contains("query budget"));
    client.query(&QuerySpec::new(DS, "median")).await.unwrap();
    // Asking one of the answered ones again is free and gives the same answer.
    let again = client.query(&walk(0)).await.unwrap();
    assert_eq!(again, client.query(&walk(0)).await.unwrap());
    // The next epoch has its own budget.
    share(&client, (1..=10).map(|v| v * 1_000)).await;
    let a = client.query(&walk(cap)).await.unwrap();
    assert_eq!(a.epoch, 2);
    c.stop().await;
}

/// The dataset example in the README parses, with its release settings (and the privacy
/// line uncommented), as a dataset of a valid cluster file.
#[test]
fn the_readme_dataset_example_is_a_valid_dataset() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("[[dataset]]\nname = \"signed_eth\"")
        .expect("example");
    let end = start + readme[start..].find("\n]\n").expect("end of query") + 3;
    let block = readme[start..end]
        .replace("# privacy = ", "privacy = ")
        .replace("[[dataset]]\n", "")
        .replace("[dataset.template]", "[template]");
    let ds: mpcstats::config::Dataset = toml::from_str(&block).unwrap();
    assert_eq!(ds.epoch_size, Some(10));
    assert_eq!(ds.probing_per_epoch, 8);
    assert_eq!(ds.privacy.as_ref().unwrap().releases, 10);
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpcstats"))
        .args(["init", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = dir.path().join("cluster.toml");
    let mut cluster = mpcstats::config::Cluster::load(&path).unwrap();
    cluster.datasets.retain(|d| d.name != "signed_eth");
    cluster.datasets.push(ds);
    cluster.validate().unwrap();
    // And a release setting out of range is refused when the file is loaded.
    cluster.datasets.last_mut().unwrap().epoch_size = Some(2);
    let e = format!("{:#}", cluster.validate().unwrap_err());
    assert!(e.contains("epoch_size must be at least min_cohort"), "{e}");
    cluster.datasets.last_mut().unwrap().epoch_size = None;
    cluster.datasets.last_mut().unwrap().privacy = Some(mpcstats::config::Privacy {
        epsilon: "0".into(),
        releases: 1,
    });
    let e = format!("{:#}", cluster.validate().unwrap_err());
    assert!(e.contains("epsilon must be above 0"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_asking_the_parties_different_things_is_refused() {
    let c = LocalCluster::start(None).await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    share(&client, (1..=20).map(|v| v * 1_000)).await;
    let session: [u8; 16] = rand::random();
    // One session: party 0 is asked for epoch 1, the others for epoch 2.
    let mut replies = Vec::new();
    for i in 0..3 {
        let conn = as_coordinator(&c, i).await;
        let run = Control::RunQuery {
            session,
            spec: sum(),
            epoch: if i == 0 { 1 } else { 2 },
            ticket_hash: [7; 32],
        };
        replies.push(tokio::spawn(async move {
            let (_s, mut r, first): (_, _, ControlReply) = call(&conn, &run).await.unwrap();
            assert!(matches!(first, ControlReply::Accepted), "{first:?}");
            let v: ControlReply = mpcstats::net::frame::recv_msg(&mut r, 1 << 20)
                .await
                .unwrap();
            (v, conn)
        }));
    }
    for (i, r) in replies.into_iter().enumerate() {
        match r.await.unwrap().0 {
            ControlReply::Failed { reason } => {
                assert!(
                    reason.contains("asked different queries"),
                    "party {i}: {reason}"
                )
            }
            other => panic!("party {i} computed: {other:?}"),
        }
    }
    c.stop().await;
}

/// The release limits the README states, at their edges: epoch_size from min_cohort to
/// 2^32, an epoch of at most 2^40 contributions.
#[test]
fn epoch_limits_hold_at_their_edges() {
    use mpcstats::config::{MAX_EPOCH_END, MAX_EPOCH_SIZE};
    let mut ds = mpcstats::roles::init::example_dataset();
    let mut cluster_with = |size: u64| {
        ds.epoch_size = Some(size);
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpcstats"))
            .args(["init", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let mut c = mpcstats::config::Cluster::load(&dir.path().join("cluster.toml")).unwrap();
        c.datasets = vec![ds.clone()];
        c.validate().map(|_| ds.clone())
    };
    let min = mpcstats::config::DEFAULT_MIN_COHORT;
    assert!(cluster_with(min - 1).is_err());
    assert!(cluster_with(min).is_ok());
    assert!(cluster_with(MAX_EPOCH_SIZE).is_ok());
    assert!(cluster_with(MAX_EPOCH_SIZE + 1).is_err());
    let ds = cluster_with(1 << 20).unwrap();
    assert_eq!(ds.epoch_end(1 << 20).unwrap(), MAX_EPOCH_END);
    let e = format!("{:#}", ds.epoch_end((1 << 20) + 1).unwrap_err());
    assert!(e.contains("out of range"), "{e}");
    assert!(ds.epoch_end(0).is_err());
}
