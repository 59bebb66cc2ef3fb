//! A local HTTPS profile API (bearer tokens, chunked bodies), with its own CA, for demos and
//! manual tests.
//!
//! ```text
//! cargo run --example profile_api -- --listen 127.0.0.1:8445 --ca-out profile-ca.pem --accounts 10 --seed 1
//! curl --cacert profile-ca.pem --resolve api.profile.test:8445:127.0.0.1 \
//!      -H 'Authorization: Bearer tok-7' https://api.profile.test:8445/v1/me
//! ```
//!
//! A thin CLI over `mpcstats::oracle::sources::profile`: generates the CA and server
//! certificate, writes the CA as PEM, and serves `GET /v1/me` until Ctrl-C, over TLS 1.2 only
//! (ECDHE-ECDSA-AES128-GCM-SHA256) unless `--tls13` is given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use mpcstats::oracle::exchange::{ExchangePki, LeafKey};
use mpcstats::oracle::sources::profile::{self, ProfileApi};
use mpcstats::oracle::sources::{self, Close, Handler};

#[derive(Parser, Debug)]
#[command(about = "Local HTTPS profile API (TLS 1.2, own CA) for mpcstats demos and tests")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8445")]
    listen: SocketAddr,
    /// DNS name in the server certificate.
    #[arg(long, default_value = profile::NAME)]
    name: String,
    /// Where to write the CA certificate (PEM).
    #[arg(long, default_value = "profile-ca.pem")]
    ca_out: PathBuf,
    /// Number of profiles (`user-0` … with tokens `tok-0` …).
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// Seed of the follower counts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Certificate validity in days from today.
    #[arg(long, default_value_t = 30)]
    validity_days: u32,
    /// Serve TLS 1.3 instead of TLS 1.2.
    #[arg(long)]
    tls13: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_secs();
    let pki = ExchangePki::generate(&args.name, now, args.validity_days, LeafKey::EcdsaP256)?;
    std::fs::write(&args.ca_out, &pki.ca_pem)
        .with_context(|| format!("writing {}", args.ca_out.display()))?;
    let api = ProfileApi::new(profile::profiles(args.accounts, args.seed));
    let handler: Handler = Arc::new(move |head| api.respond(head));
    let tls = if args.tls13 {
        pki.server_config()?
    } else {
        pki.server_config_tls12()?
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "profile API: https://{}:{}{} on {addr} ({}), {} profiles (tokens tok-0..tok-{}), CA in {}",
        args.name,
        addr.port(),
        profile::PATH,
        if args.tls13 { "TLS 1.3" } else { "TLS 1.2" },
        args.accounts,
        args.accounts.saturating_sub(1),
        args.ca_out.display()
    );
    tokio::select! {
        r = sources::serve(listener, tls, handler, Close::Notify) => {
            r.context("accepting connections")?
        }
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
    }
    Ok(())
}
