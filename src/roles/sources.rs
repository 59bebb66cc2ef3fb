//! The local sources in the shapes of real APIs (`oracle::sources`) running on loopback beside
//! the demo's exchange: the signed exchange (Binance's shape, TLS 1.3, closing without
//! close_notify) and the profile API (chunked bodies, TLS 1.2 only), each with its own CA, and the prover calls a
//! provider of each would make. Used by `LocalCluster` (demo and tests).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;

use super::prove::{self, ProveRequest};
use crate::config::Cluster;
use crate::oracle::exchange::{ExchangePki, LeafKey};
use crate::oracle::proof::Proof;
use crate::oracle::signing::ApiKey;
use crate::oracle::sources::profile::{self, Profile, ProfileApi};
use crate::oracle::sources::signed::{self, SignedAccount, SignedExchange};
use crate::oracle::sources::{self as src, Close, Handler};

/// The running sources.
pub struct LocalSources {
    pub signed_accounts: Vec<SignedAccount>,
    pub profiles: Vec<Profile>,
    /// The CA certificates of both sources (one PEM bundle).
    pub ca_pem: String,
    /// (name, address) of each source, for the notary's resolver.
    pub resolve: Vec<(String, SocketAddr)>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The signed exchange's URL as a provider writes it (fixed parameters left to `prove`).
pub const SIGNED_URL: &str = "https://api.signed.test/api/v3/account";
/// The profile API's URL.
pub const PROFILE_URL: &str = "https://api.profile.test/v1/me";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl LocalSources {
    /// Starts both sources with `n` accounts each, seeded with `seed`.
    pub async fn start(n: usize, seed: u64) -> Result<LocalSources> {
        let now = crate::oracle::admit::now();
        let signed_accounts = signed::accounts(n, seed);
        let profiles = profile::profiles(n, seed);
        let exchange = SignedExchange::new(signed_accounts.clone());
        let api = ProfileApi::new(profiles.clone());
        let signed_handler: Handler = Arc::new(move |head| exchange.respond(head, now_ms()));
        let profile_handler: Handler = Arc::new(move |head| api.respond(head));
        let mut ca_pem = String::new();
        let mut resolve = Vec::new();
        let mut tasks = Vec::new();
        for (name, handler, close, tls12) in [
            (signed::NAME, signed_handler, Close::Abrupt, false),
            (profile::NAME, profile_handler, Close::Notify, true),
        ] {
            let pki = ExchangePki::generate(name, now, 30, LeafKey::EcdsaP256)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            resolve.push((name.to_string(), listener.local_addr()?));
            let tls = if tls12 {
                pki.server_config_tls12()?
            } else {
                pki.server_config()?
            };
            tasks.push(tokio::spawn(src::serve(listener, tls, handler, close)));
            ca_pem.push_str(&pki.ca_pem);
            ca_pem.push('\n');
        }
        Ok(LocalSources {
            signed_accounts,
            profiles,
            ca_pem,
            resolve,
            tasks,
        })
    }

    /// Proves signed-exchange account `i`'s ETH balance for dataset `signed_eth`.
    pub async fn prove_signed(&self, cluster: &Cluster, i: usize) -> Result<Proof> {
        let a = &self.signed_accounts[i];
        let key = ApiKey {
            api_key: a.api_key.clone(),
            api_secret: a.api_secret.clone(),
        };
        let roots = [self.ca_pem.clone().into_bytes()];
        let req = ProveRequest {
            dataset: "signed_eth",
            url: SIGNED_URL,
            headers: &[],
            key: Some(&key),
            extra_roots: &roots,
            default_roots: false,
        };
        prove::prove_with(cluster, &req).await
    }

    /// Proves profile `i`'s follower count for dataset `profile_followers`.
    pub async fn prove_profile(&self, cluster: &Cluster, i: usize) -> Result<Proof> {
        let header = format!("Authorization: Bearer {}", self.profiles[i].token);
        let roots = [self.ca_pem.clone().into_bytes()];
        let req = ProveRequest {
            dataset: "profile_followers",
            url: PROFILE_URL,
            headers: &[header],
            key: None,
            extra_roots: &roots,
            default_roots: false,
        };
        prove::prove_with(cluster, &req).await
    }

    /// Stops both sources.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
