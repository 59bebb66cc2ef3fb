//! Fault tests with every role in its own process, as deployed: `mpcstats init`, then the
//! coordinator and three parties started from the built binary; parties killed with SIGKILL
//! and restarted.

mod procs;

use std::process::Command;
use std::time::{Duration, Instant};

use mpcstats::config::Cluster;
use mpcstats::decimal;
use mpcstats::stats::{reference, Stat};
use mpcstats::wire::QuerySpec;
use procs::{connect, Procs, BIN};

fn start() -> Procs {
    Procs::start()
}

fn spec(stat: Stat) -> QuerySpec {
    QuerySpec::new("eth_balance", stat.name())
}

fn expected(stat: Stat, values: &[u128]) -> mpcstats::stats::answer::Answer {
    let ds = mpcstats::roles::init::example_dataset();
    let q = mpcstats::stats::Query::new(&spec(stat), &ds).unwrap();
    reference::answer(&q, values).unwrap()
}

#[test]
fn init_writes_private_keys_apart_and_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let p = start();
    let text = std::fs::read_to_string(p.cluster_file()).unwrap();
    assert!(!text.contains("PRIVATE KEY"));
    for role in ["coordinator", "party0", "party1", "party2", "notary"] {
        let key = p.dir.path().join(format!("{role}.key.pem"));
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{role}");
        assert!(std::fs::read_to_string(&key)
            .unwrap()
            .contains("PRIVATE KEY"));
    }
    let attestation = p.dir.path().join("notary.attestation.pem");
    let mode = std::fs::metadata(&attestation)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "notary attestation key");
    let cluster = Cluster::load(&p.cluster_file()).unwrap();
    // One unproven example dataset and three proven from the local sources.
    let names: Vec<&str> = cluster.datasets.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "eth_balance",
            "exchange_eth",
            "signed_eth",
            "profile_followers"
        ]
    );
    assert!(cluster.notary_key().is_ok());
    // A second init into the same directory refuses to overwrite it.
    let out = Command::new(BIN)
        .args(["init", "--out"])
        .arg(p.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
}

#[test]
fn cli_share_rejects_bad_values_with_clear_errors() {
    let p = start();
    for (value, expect) in [
        ("-3", "non-negative decimal"),
        ("2000000", "above the maximum"),
        ("0.123456789", "at most 8 decimal"),
    ] {
        let out = Command::new(BIN)
            .arg("--cluster")
            .arg(p.cluster_file())
            .args(["share", "--dataset", "eth_balance", "--value", value])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{value}");
        assert!(err.contains(expect), "{value}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = Command::new(BIN)
        .arg("--cluster")
        .arg(p.cluster_file())
        .args(["query", "mode", "--dataset", "eth_balance"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown statistic"));
    // A contribution's outcome by its id: printed by share, asked again with --status.
    let share = |args: &[&str]| {
        Command::new(BIN)
            .arg("--cluster")
            .arg(p.cluster_file())
            .arg("share")
            .args(args)
            .output()
            .unwrap()
    };
    let out = share(&["--dataset", "eth_balance", "--value", "1.5"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    let id = err
        .split_whitespace()
        .skip_while(|w| *w != "contribution")
        .nth(1)
        .map(|w| w.trim_end_matches(':').to_string())
        .unwrap_or_else(|| panic!("no contribution id in {err}"));
    let out = share(&["--status", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("committed: contribution")
            && text.contains("number 1 of dataset eth_balance"),
        "{text}"
    );
    for (bad, expect) in [
        ("xyz", "32 hexadecimal digits"),
        ("00ff", "32 hexadecimal digits"),
        (
            "0123456789abcdef0123456789abcdef",
            "unknown: this cluster's coordinator never issued",
        ),
    ] {
        let out = share(&["--status", bad]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}");
        assert!(err.contains(expect), "{bad}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_party_gives_clear_error_then_recovers() {
    let mut p = start();
    let client = connect(&p.cluster_file()).await;
    let values: Vec<u128> = (1..=10).map(|v| v * 123_456_789).collect();
    for v in &values {
        client
            .share("eth_balance", &decimal::format(*v, 8))
            .await
            .unwrap();
    }

    // Party 1 dies with no goodbye; the next query fails clearly, in bounded time.
    p.kill(2);
    let started = Instant::now();
    let err = client.query(&spec(Stat::Mean)).await.unwrap_err();
    let err = format!("{err:#}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.contains("party 1"), "{err}");

    // Restarted with the same database: the next query succeeds over all contributions.
    p.spawn(2);
    let client = connect(&p.cluster_file()).await;
    let got = client.query(&spec(Stat::Sum)).await.unwrap();
    assert_eq!(got.text, expected(Stat::Sum, &values).text);

    // A party restarted between contributions keeps its data.
    p.kill(3);
    p.spawn(3);
    let client = connect(&p.cluster_file()).await;
    let more: Vec<u128> = (11..=20).map(|v| v * 1_000).collect();
    for v in &more {
        client
            .share("eth_balance", &decimal::format(*v, 8))
            .await
            .unwrap();
    }
    let all: Vec<u128> = values.iter().chain(&more).copied().collect();
    for stat in [Stat::Count, Stat::Mean, Stat::Variance] {
        let got = client.query(&spec(stat)).await.unwrap();
        let want = expected(stat, &all);
        assert_eq!(
            (got.count, got.text),
            (want.count, want.text),
            "{}",
            stat.name()
        );
        assert_eq!(got.epoch, 2);
    }
}
