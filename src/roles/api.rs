//! `mpcstats api`: runs the client API (see `crate::api`) next to a cluster: a caching data
//! consumer serving REST and a web page over plain HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use tracing::info;

use crate::api::{serve, ApiConfig};
use crate::config::Cluster;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example (next to a cluster deployed with `mpcstats init --out deploy`):
  mpcstats api --cluster deploy/cluster.toml --listen 127.0.0.1:8080
  curl http://127.0.0.1:8080/v1/datasets
  open http://127.0.0.1:8080/ in a browser
The API is a consumer like `mpcstats query`: it needs only the public cluster file. Its cache
(api.db beside the cluster file) keeps answers across restarts. Stop with Ctrl-C or SIGTERM;
open requests finish for up to 10 s.

Ports:
  api <- browsers and programs: TCP to --listen (HTTP)
  api -> coordinator: UDP to its address (QUIC: queries, status)
  api -> party 0, 1, 2: UDP to each party's address (QUIC: result fetches)")]
pub struct Args {
    /// Address to serve HTTP on
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// SQLite cache [default: api.db beside the cluster file]
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Least seconds between two refreshes from the cluster
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub min_interval: u64,
    /// Statistics without parameters kept for every dataset
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "count,sum,mean,stddev,median,gini"
    )]
    pub stats: Vec<String>,
    /// Quantiles kept for every dataset
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.75")]
    pub quantiles: Vec<String>,
    /// Points of the Lorenz curve kept for every dataset (0: none)
    #[arg(long, default_value_t = 10)]
    pub lorenz_points: u32,
    /// Histogram edges for every dataset [default: powers of ten up to its maximum]
    #[arg(long, value_delimiter = ',', value_name = "E,E,…")]
    pub edges: Vec<String>,
    /// Uncached statistics one client address may have computed per minute
    #[arg(long, default_value_t = 30)]
    pub per_client_per_minute: u32,
}

impl Args {
    pub fn config(&self) -> Result<ApiConfig> {
        if self.min_interval == 0 {
            bail!("--min-interval must be at least 1 second");
        }
        Ok(ApiConfig {
            stats: self.stats.clone(),
            quantiles: self.quantiles.clone(),
            lorenz_points: self.lorenz_points,
            edges: self.edges.clone(),
            min_interval: Duration::from_secs(self.min_interval),
            per_client_per_minute: self.per_client_per_minute,
        })
    }
}

/// Checks the configured statistics against every dataset before serving.
fn check(cluster: &Cluster, config: &ApiConfig) -> Result<()> {
    for ds in &cluster.datasets {
        for spec in config.specs(ds) {
            if let Err(e) = crate::stats::Query::new(&spec, ds) {
                let text = format!("{e:#}");
                // Statistics a differentially private dataset does not release are skipped.
                if !text.contains("differentially private") {
                    bail!(
                        "dataset {}: {} is not a valid statistic here: {text}",
                        ds.name,
                        spec.stat
                    );
                }
            }
        }
    }
    Ok(())
}

pub async fn run(cluster_flag: Option<&Path>, args: Args) -> Result<()> {
    let file = Cluster::locate(cluster_flag);
    let cluster = Cluster::load(&file)?;
    info!(
        "api: cluster fingerprint: {}",
        crate::fingerprint::show(&crate::fingerprint::of(&cluster))
    );
    let config = args.config()?;
    check(&cluster, &config)?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| super::beside(&file, "api.db"));
    let server = serve(cluster, config, &db, args.listen).await?;
    info!("client API serving http://{}/", server.addr);
    println!("client API: http://{}/", server.addr);
    super::shutdown_signal().await;
    info!("client API shutting down");
    server.stop().await;
    Ok(())
}
