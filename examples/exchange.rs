//! A local HTTPS exchange API with its own CA, for the demo and manual tests.
//!
//! ```text
//! cargo run --example exchange -- --listen 127.0.0.1:8443 --ca-out ca.pem --accounts 10 --seed 1
//! curl --cacert ca.pem --resolve api.exchange.test:8443:127.0.0.1 \
//!      -H 'X-API-KEY: key-7' https://api.exchange.test:8443/api/v1/account
//! ```
//!
//! A thin CLI over `mpcstats::oracle::exchange`: generates the CA and server certificate,
//! writes the CA as PEM, and serves until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use mpcstats::oracle::exchange::{self, Exchange, ExchangeConfig, ExchangePki, LeafKey};

#[derive(Parser, Debug)]
#[command(about = "Local HTTPS exchange API (TLS 1.3, own CA) for mpcstats demos and tests")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// DNS name in the server certificate.
    #[arg(long, default_value = exchange::DEFAULT_NAME)]
    name: String,
    /// Where to write the CA certificate (PEM).
    #[arg(long, default_value = "ca.pem")]
    ca_out: PathBuf,
    /// Number of accounts (`acct-0` … with keys `key-0` …).
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// Seed of the balances.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Certificate validity in days from today.
    #[arg(long, default_value_t = 30)]
    validity_days: u32,
    /// Use an Ed25519 server key instead of ECDSA P-256.
    #[arg(long)]
    ed25519: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_secs();
    let leaf = if args.ed25519 {
        LeafKey::Ed25519
    } else {
        LeafKey::EcdsaP256
    };
    let pki = ExchangePki::generate(&args.name, now, args.validity_days, leaf)?;
    std::fs::write(&args.ca_out, &pki.ca_pem)
        .with_context(|| format!("writing {}", args.ca_out.display()))?;
    let accounts = exchange::generate_accounts(args.accounts, args.seed);
    let config = ExchangeConfig {
        tls: pki.server_config()?,
        exchange: Arc::new(Exchange::new(accounts)),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "exchange: https://{}:{} on {addr}, {} accounts (keys key-0..key-{}), CA in {}",
        args.name,
        addr.port(),
        args.accounts,
        args.accounts.saturating_sub(1),
        args.ca_out.display()
    );
    tokio::select! {
        r = exchange::serve(listener, config) => r.context("accepting connections")?,
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
    }
    Ok(())
}
