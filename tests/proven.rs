//! Proven contributions end to end, over real QUIC on loopback: a local HTTPS exchange, the
//! notary, `prove`, `share --proof`, the parties' checks in MPC, and statistics over the
//! proven values. Then every cheater the parties must refuse, and the privacy claims.

use std::sync::{Arc, Mutex};

use mpcstats::oracle::attestation::{Attestation, NotaryKey};
use mpcstats::oracle::proof::Proof;
use mpcstats::roles::client::{proven_submission, xor_split, Client};
use mpcstats::roles::demo::{demo_queries, describe, LocalCluster};
use mpcstats::roles::init::{attestation_key_path, exchange_dataset};
use mpcstats::stats::{reference, Query};
use mpcstats::wire::{ProvenSubmission, ToCoordinator, ToParty};

const DATASET: &str = "exchange_eth";

async fn cluster(accounts: usize) -> (LocalCluster, Client) {
    let c = LocalCluster::start_with(None, accounts, 9).await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    (c, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proven_balances_give_exact_statistics() {
    let n = 12;
    let (c, client) = cluster(n).await;
    let mut values = Vec::new();
    for i in 0..n {
        let proof = c.oracle.prove(&c.cluster, i).await.unwrap();
        let a = client.share_proof(DATASET, &proof).await.unwrap();
        assert_eq!(a.count, i as u64 + 1);
        values.push(c.oracle.eth_balance(i).unwrap());
    }
    let ds = exchange_dataset();
    // Twelve contributions: epoch 1 holds the first ten.
    let released = &values[..ds.epoch_size() as usize];
    for spec in demo_queries(DATASET) {
        let got = client.query(&spec).await.unwrap();
        let want = reference::answer(&Query::new(&spec, &ds).unwrap(), released).unwrap();
        assert_eq!(
            (got.count, &got.text),
            (want.count, &want.text),
            "{}",
            describe(&spec)
        );
        assert_eq!(got.epoch, 1);
    }
    c.stop().await;
}

/// Runs the admission protocol with `proof`, letting `tamper` change party i's submission.
async fn submit(
    client: &Client,
    proof: &Proof,
    tamper: impl Fn(usize, &mut ProvenSubmission),
) -> anyhow::Result<()> {
    let client_key = xor_split(proof.client_keys.key);
    let server_key = xor_split(proof.server_keys.key);
    let intent = |ticket_hash| ToCoordinator::ProvenIntent {
        dataset: DATASET.into(),
        attestation: proof.attestation.clone(),
        ticket_hash,
    };
    client
        .contribute(intent, |i, contribution, ticket| {
            let mut s = proven_submission(proof, i, contribution, ticket, &client_key, &server_key);
            tamper(i, &mut s);
            ToParty::SubmitProven(Box::new(s))
        })
        .await
        .map(|_| ())
}

fn expect_refused(r: anyhow::Result<()>, what: &str, needle: &str) {
    let e = format!("{:#}", r.expect_err(what));
    assert!(e.contains(needle), "{what}: {e}");
}

/// Re-signs `proof`'s attestation with `key` after `change`.
fn resign(proof: &Proof, key: &NotaryKey, change: impl Fn(&mut Attestation)) -> Proof {
    let mut a = Attestation::decode(&proof.attestation.body).unwrap();
    change(&mut a);
    a.notary_key_id = key.key_id();
    let mut p = proof.clone();
    p.attestation = a.sign(key.key_pair()).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheaters_are_refused_and_nothing_is_stored() {
    let (c, client) = cluster(4).await;
    let proof = c.oracle.prove(&c.cluster, 0).await.unwrap();

    // A record altered by one bit: not the attested record.
    let mut p = proof.clone();
    p.server_records[0][12] ^= 1;
    expect_refused(
        submit(&client, &p, |_, _| {}).await,
        "altered record",
        "not the attested one",
    );

    // A key share from a wrong key, consistent between its two holders: the tags fail.
    let r = submit(&client, &proof, |i, s| {
        // Component 1 is held by party 1 (as a) and party 0 (as b).
        if i == 1 {
            s.server_key.0[0] ^= 0x80;
        }
        if i == 0 {
            s.server_key.1[0] ^= 0x80;
        }
    })
    .await;
    expect_refused(r, "wrong key", "tag");
    // … and a share that differs between its holders is caught before any MPC.
    let r = submit(&client, &proof, |i, s| {
        if i == 2 {
            s.client_key.0[3] ^= 1;
        }
    })
    .await;
    expect_refused(r, "inconsistent key share", "disagree");

    // A value window at another field (BTC's balance) or at the account id.
    let body = String::from_utf8(
        mpcstats::oracle::proof::decrypt_application_data(
            mpcstats::oracle::attestation::Direction::ServerToClient,
            &proof.server_keys,
            &proof.server_records,
        )
        .unwrap(),
    )
    .unwrap();
    let btc = &c.oracle.accounts[0]
        .balances
        .iter()
        .find(|b| b.asset == "BTC")
        .unwrap()
        .free;
    let start = body.find(&format!("\"{btc}\"")).unwrap() as u64 + 1;
    let r = submit(&client, &proof, |_, s| {
        s.value = (start, start + btc.len() as u64)
    })
    .await;
    // BTC's balance is a decimal: the MPC parses it, and the opened response's check refuses.
    expect_refused(
        r,
        "window at BTC",
        "the value window is not the JSON value at \"balances[asset=ETH].free\"",
    );
    let acct = body.find("acct-0").unwrap() as u64;
    let r = submit(&client, &proof, |_, s| s.value = (acct, acct + 6)).await;
    expect_refused(
        r,
        "window at the account id",
        "the value window is not a plain decimal",
    );

    // Bindings: another template's hash, declared parameters the template does not have, an
    // attestation other than the one the coordinator checked, another port.
    let r = submit(&client, &proof, |_, s| s.template_hash[0] ^= 1).await;
    expect_refused(r, "other template", "made for another template");
    let r = submit(&client, &proof, |_, s| s.params = vec![4]).await;
    expect_refused(r, "undeclared parameter", "parameter lengths");
    let second = c.oracle.prove(&c.cluster, 2).await.unwrap();
    let r = submit(&client, &proof, |_, s| {
        s.attestation = second.attestation.clone();
        s.client_records = second.client_records.clone();
        s.server_records = second.server_records.clone();
    })
    .await;
    expect_refused(
        r,
        "swapped attestation",
        "not the one the coordinator checked",
    );

    // Attestations: signed by another key, altered after signing, too old.
    let other = NotaryKey::generate().unwrap();
    let p = resign(&proof, &other, |_| {});
    expect_refused(submit(&client, &p, |_, _| {}).await, "other key", "notary");
    let mut p = proof.clone();
    let last = p.attestation.body.len() - 1;
    p.attestation.body[last] ^= 1;
    expect_refused(
        submit(&client, &p, |_, _| {}).await,
        "altered attestation",
        "notary",
    );
    let notary = NotaryKey::load(attestation_key_path(&c.dir)).unwrap();
    let p = resign(&proof, &notary, |a| a.time -= 7200);
    expect_refused(
        submit(&client, &p, |_, _| {}).await,
        "old attestation",
        "old",
    );
    let p = resign(&proof, &notary, |a| a.port = 8443);
    expect_refused(
        submit(&client, &p, |_, _| {}).await,
        "other port",
        "port 8443, the dataset's template names port 443",
    );

    // Nothing of the above was stored anywhere.
    for party in &c.parties {
        assert_eq!(party.as_ref().unwrap().stored_rows().unwrap(), 0);
    }

    // The genuine proof is admitted once; a replay is refused.
    client.share_proof(DATASET, &proof).await.unwrap();
    let r = client.share_proof(DATASET, &proof).await.map(|_| ());
    expect_refused(r, "replay", "already used");
    // The same account with a fresh proof is refused too (one contribution per account).
    let again = c.oracle.prove(&c.cluster, 0).await.unwrap();
    let r = client.share_proof(DATASET, &again).await.map(|_| ());
    expect_refused(r, "same account", "already contributed");
    // Another account is fine.
    let other = c.oracle.prove(&c.cluster, 1).await.unwrap();
    client.share_proof(DATASET, &other).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for party in &c.parties {
        assert_eq!(party.as_ref().unwrap().stored_rows().unwrap(), 2);
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_use_and_one_per_account_survive_restarts_of_every_role() {
    let (mut c, _) = cluster(3).await;
    let client = Client::connect(&c.cluster).await.unwrap();
    let proof = c.oracle.prove(&c.cluster, 0).await.unwrap();
    let again = c.oracle.prove(&c.cluster, 0).await.unwrap();
    assert_eq!(client.share_proof(DATASET, &proof).await.unwrap().count, 1);
    drop(client);
    // Every role that keeps state restarts (the notary keeps none: it signs and forgets).
    c.stop_coordinator().await;
    for i in 0..3 {
        c.stop_party(i).await;
    }
    for i in 0..3 {
        c.restart_party(i).await.unwrap();
    }
    c.restart_coordinator().await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    let r = client.share_proof(DATASET, &proof).await.map(|_| ());
    expect_refused(r, "replay after restarts", "already used");
    let r = client.share_proof(DATASET, &again).await.map(|_| ());
    expect_refused(r, "same account after restarts", "already contributed");
    let other = c.oracle.prove(&c.cluster, 1).await.unwrap();
    assert_eq!(client.share_proof(DATASET, &other).await.unwrap().count, 2);
    c.stop().await;
}

/// Captures everything every role logs in this process.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_or_log_holds_a_value_or_a_key() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // Global: the roles log from every worker thread. This is the only test that sets it.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let (c, client) = cluster(10).await;
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    // Refused submissions too: the parties open the response outside the window, and no
    // refusal may carry those bytes to a log, the coordinator or the provider.
    let mut refusals = Vec::new();
    for i in 6..8 {
        let proof = c.oracle.prove(&c.cluster, i).await.unwrap();
        let body = mpcstats::oracle::proof::decrypt_application_data(
            mpcstats::oracle::attestation::Direction::ServerToClient,
            &proof.server_keys,
            &proof.server_records,
        )
        .unwrap();
        let account = format!("acct-{i}");
        let at = body
            .windows(account.len())
            .position(|w| w == account.as_bytes())
            .unwrap() as u64;
        let windows = [
            (at, at + account.len() as u64),
            (
                proof.declaration.value.start,
                proof.declaration.value.end + 1,
            ),
        ];
        for (k, window) in windows.into_iter().enumerate() {
            let r = submit(&client, &proof, |_, s| {
                s.value = window;
                if k == 1 {
                    s.template_hash = [0; 32];
                }
            })
            .await;
            refusals.push(format!("{:#}", r.expect_err("a refused window")).into_bytes());
        }
        let r = submit(&client, &proof, |_, s| {
            let btc = &c.oracle.accounts[i]
                .balances
                .iter()
                .find(|b| b.asset == "BTC")
                .unwrap()
                .free;
            let text = String::from_utf8_lossy(&body).into_owned();
            let start = text.find(&format!("\"{btc}\"")).unwrap() as u64 + 1;
            s.value = (start, start + btc.len() as u64);
        })
        .await;
        refusals.push(format!("{:#}", r.expect_err("a refused window")).into_bytes());
        for b in &c.oracle.accounts[i].balances {
            secrets.push(b.free.clone().into_bytes());
        }
        secrets.push(account.into_bytes());
        secrets.push(c.oracle.accounts[i].api_key.clone().into_bytes());
        secrets.push(b"HTTP/1.1 200".to_vec());
        secrets.push(b"Content-Length".to_vec());
    }
    for i in 0..10 {
        let proof = c.oracle.prove(&c.cluster, i).await.unwrap();
        client.share_proof(DATASET, &proof).await.unwrap();
        let b = c.oracle.accounts[i]
            .balances
            .iter()
            .find(|b| b.asset == "ETH")
            .unwrap();
        secrets.push(b.free.clone().into_bytes());
        secrets.push(proof.client_keys.key.to_vec());
        secrets.push(proof.server_keys.key.to_vec());
        secrets.push(c.oracle.accounts[i].api_key.clone().into_bytes());
    }
    let got = client
        .query(&mpcstats::wire::QuerySpec::new(DATASET, "sum"))
        .await
        .unwrap();
    assert!(!got.text.is_empty());
    let mut stores = Vec::new();
    for name in ["party0.db", "party1.db", "party2.db", "coordinator.db"] {
        for suffix in ["", "-wal"] {
            if let Ok(b) = std::fs::read(c.dir.join(format!("{name}{suffix}"))) {
                stores.push((format!("{name}{suffix}"), b));
            }
        }
    }
    c.stop().await;
    let log = logs.0.lock().unwrap().clone();
    assert!(log.len() > 100, "the roles logged");
    assert!(stores.len() >= 4);
    assert!(contains(&log, b"refused"), "the refusals were logged");
    for s in &secrets {
        assert!(
            !contains(&log, s),
            "a log holds a secret: {}",
            String::from_utf8_lossy(s)
        );
        for r in &refusals {
            assert!(
                !contains(r, s),
                "a refusal holds {}: {}",
                String::from_utf8_lossy(s),
                String::from_utf8_lossy(r)
            );
        }
        for (name, bytes) in &stores {
            assert!(!contains(bytes, s), "{name} holds a secret");
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
