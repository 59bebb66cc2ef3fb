//! A local HTTPS exchange in Binance's signed shape, with its own CA, for demos and manual tests.
//!
//! ```text
//! cargo run --example signed_exchange -- --listen 127.0.0.1:8444 --ca-out signed-ca.pem --accounts 10 --seed 1
//! q="omitZeroBalances=true&recvWindow=60000&timestamp=$(date +%s000)"
//! sig=$(printf %s "$q" | openssl dgst -sha256 -hmac mbx-secret-7 | sed 's/^.* //')
//! curl --cacert signed-ca.pem --resolve api.signed.test:8444:127.0.0.1 \
//!      -H 'X-MBX-APIKEY: mbx-key-7' "https://api.signed.test:8444/api/v3/account?$q&signature=$sig"
//! ```
//!
//! A thin CLI over `mpcstats::oracle::sources::signed`: generates the CA and server certificate,
//! writes the CA as PEM, and serves `GET /api/v3/account` (TLS 1.3) until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use mpcstats::oracle::exchange::{ExchangePki, LeafKey};
use mpcstats::oracle::sources::signed::{self, SignedExchange};
use mpcstats::oracle::sources::{self, Close, Handler};

#[derive(Parser, Debug)]
#[command(
    about = "Local HTTPS exchange in Binance's signed shape (TLS 1.3, own CA) for mpcstats demos and tests"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8444")]
    listen: SocketAddr,
    /// DNS name in the server certificate.
    #[arg(long, default_value = signed::NAME)]
    name: String,
    /// Where to write the CA certificate (PEM).
    #[arg(long, default_value = "signed-ca.pem")]
    ca_out: PathBuf,
    /// Number of accounts (keys `mbx-key-0` … with secrets `mbx-secret-0` …).
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// Seed of the balances.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Certificate validity in days from today.
    #[arg(long, default_value_t = 30)]
    validity_days: u32,
    /// End connections with a bare TCP FIN instead of a TLS close_notify.
    #[arg(long)]
    no_close_notify: bool,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    let exchange = SignedExchange::new(signed::accounts(args.accounts, args.seed));
    let handler: Handler = Arc::new(move |head| exchange.respond(head, now_ms()));
    let close = if args.no_close_notify {
        Close::Abrupt
    } else {
        Close::Notify
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "signed exchange: https://{}:{}{} on {addr}, {} accounts (keys mbx-key-0..mbx-key-{}, \
         secrets mbx-secret-0..mbx-secret-{}), {}, CA in {}",
        args.name,
        addr.port(),
        signed::PATH,
        args.accounts,
        args.accounts.saturating_sub(1),
        args.accounts.saturating_sub(1),
        if args.no_close_notify {
            "no close_notify"
        } else {
            "close_notify"
        },
        args.ca_out.display()
    );
    tokio::select! {
        r = sources::serve(listener, pki.server_config()?, handler, close) => {
            r.context("accepting connections")?
        }
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
    }
    Ok(())
}
