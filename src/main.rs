//! The `mpcstats` command line: one binary, one subcommand per role.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mpcstats::roles;
use mpcstats::roles::logging::{Format, Kind};

/// Private statistics over proven web data: three MPC parties compute count, sum, mean,
/// variance … over values that nobody but their owner ever sees.
#[derive(Parser)]
#[command(name = "mpcstats", version, about, long_about = None)]
struct Cli {
    /// The public cluster file [default: $MPCSTATS_CLUSTER, else ./cluster.toml]
    #[arg(long, global = true, value_name = "FILE")]
    cluster: Option<PathBuf>,
    /// Log lines on stderr as text or as one JSON object per line
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    log_format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate one server role's keys on its own host and print only their public part.
    Keygen(roles::keygen::Args),
    /// Write cluster.toml from the roles' public parts (or, on one machine, with every key).
    Init(roles::init::Args),
    /// Run the coordinator: admission, tickets, queues and rate limits. Sees no shares.
    Coordinator(roles::coordinator::Args),
    /// Run computation party N (0, 1 or 2): stores shares and computes in MPC.
    Party(roles::party::Args),
    /// Run the TLS notary: relays provers' HTTPS sessions and attests the server's identity.
    Notary(roles::notary::Args),
    /// Fetch a value over HTTPS through the notary and write a private proof file.
    Prove(roles::prove::Args),
    /// Contribute a private value to a dataset (secret-shared to the three parties).
    Share(roles::share::Args),
    /// Ask for a statistic over a dataset; prints exactly that statistic.
    Query(roles::query::Args),
    /// Serve cached statistics over REST and a web page with charts (a caching consumer).
    Api(roles::api::Args),
    /// Show the cluster fingerprints of this file, the coordinator and the parties.
    Status(roles::status::Args),
    /// Run a whole cluster on loopback with simulated providers and check every statistic.
    Demo(roles::demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let kind = match cli.command {
        Command::Coordinator(_) | Command::Party(_) | Command::Notary(_) | Command::Api(_) => {
            Kind::Server
        }
        Command::Demo(_) => Kind::Demo,
        _ => Kind::Client,
    };
    roles::logging::init(kind, cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cluster = cli.cluster;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Keygen(a) => roles::keygen::run(a),
            Command::Init(a) => roles::init::run(a),
            Command::Coordinator(a) => roles::coordinator::run(cluster.as_deref(), a).await,
            Command::Party(a) => roles::party::run(cluster.as_deref(), a).await,
            Command::Notary(a) => roles::notary::run(cluster.as_deref(), a).await,
            Command::Prove(a) => roles::prove::run(cluster.as_deref(), a).await,
            Command::Share(a) => roles::share::run(cluster.as_deref(), a).await,
            Command::Query(a) => roles::query::run(cluster.as_deref(), a).await,
            Command::Api(a) => roles::api::run(cluster.as_deref(), a).await,
            Command::Status(a) => roles::status::run(cluster.as_deref(), a).await,
            Command::Demo(a) => roles::demo::run(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
