//! Proofs against sources in the shapes of real APIs, through the notary, into the cluster:
//! the signed exchange (Binance's signed query string, numeric uid, balances with varying
//! decimals, a server that closes without close_notify) and the profile API (numeric fields,
//! chunked bodies). Statistics over the proven values are exact.

use mpcstats::oracle::template::value::scaled;
use mpcstats::roles::client::Client;
use mpcstats::roles::demo::LocalCluster;
use mpcstats::wire::QuerySpec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_exchange_and_profile_api_prove_and_count() {
    let n = 10;
    let c = LocalCluster::start_with(None, n, 3).await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    let sources = &c.oracle.sources;
    let mut eth = Vec::new();
    for i in 0..n {
        let proof = sources.prove_signed(&c.cluster, i).await.unwrap();
        let attested =
            mpcstats::oracle::attestation::Attestation::decode(&proof.attestation.body).unwrap();
        assert_eq!(attested.tls_version, 0x0304);
        let a = client.share_proof("signed_eth", &proof).await.unwrap();
        assert_eq!(a.count, i as u64 + 1);
        let written = sources.signed_accounts[i].written("ETH").unwrap();
        eth.push(scaled(written.as_bytes(), 8));
    }
    // The dataset holds 12.5, 0.01 and 7 beside 8-decimal balances.
    assert_eq!(&eth[..3], &[1_250_000_000, 1_000_000, 700_000_000]);
    let sum = client
        .query(&QuerySpec::new("signed_eth", "sum"))
        .await
        .unwrap();
    let total: u128 = eth.iter().sum();
    assert_eq!(sum.text, mpcstats::decimal::format(total, 8));

    let mut followers = 0u128;
    for i in 0..n {
        let proof = sources.prove_profile(&c.cluster, i).await.unwrap();
        // The profile API speaks TLS 1.2 only; the signed exchange TLS 1.3.
        let a =
            mpcstats::oracle::attestation::Attestation::decode(&proof.attestation.body).unwrap();
        assert_eq!(a.tls_version, 0x0303);
        client
            .share_proof("profile_followers", &proof)
            .await
            .unwrap();
        followers += u128::from(sources.profiles[i].followers);
    }
    let sum = client
        .query(&QuerySpec::new("profile_followers", "sum"))
        .await
        .unwrap();
    assert_eq!(sum.text, followers.to_string());

    // One contribution per account: the numeric uid is the account id.
    let again = sources.prove_signed(&c.cluster, 0).await.unwrap();
    let e = client.share_proof("signed_eth", &again).await.unwrap_err();
    assert!(format!("{e:#}").contains("already contributed"), "{e:#}");
    c.stop().await;
}
