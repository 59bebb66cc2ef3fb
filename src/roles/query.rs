//! `mpcstats query STAT`: ask for one statistic. The parties send this consumer their share
//! pairs of the result only; every component must arrive identically from the two parties
//! that hold it, so a single faulty party cannot change the answer unnoticed.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::client::Client;
use crate::config::Cluster;
use crate::wire::QuerySpec;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Statistics: count, sum, mean, variance, stddev.
variance and stddev are the sample statistics (n − 1), as Python's statistics.variance and
stdev; --population gives pvariance and pstdev. Results print in the dataset's units with its
number of decimals, rounded half to even.

Example:
  mpcstats query mean --dataset eth_balance")]
pub struct Args {
    /// The statistic: count, sum, mean, variance, stddev
    pub stat: String,
    /// The dataset to compute over
    #[arg(long)]
    pub dataset: String,
    /// Population variance / standard deviation instead of the sample ones
    #[arg(long)]
    pub population: bool,
    /// Seconds to wait for any one answer
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

pub async fn run(cluster_flag: Option<&Path>, args: Args) -> Result<()> {
    let cluster = Cluster::load(&Cluster::locate(cluster_flag))?;
    cluster.dataset(&args.dataset)?;
    crate::stats::Stat::parse(&args.stat)?;
    let mut client = Client::connect(&cluster).await?;
    client.timeout = Duration::from_secs(args.timeout.max(1));
    let spec = QuerySpec {
        dataset: args.dataset,
        stat: args.stat,
        population: args.population,
    };
    let answer = client.query(&spec).await?;
    println!("{answer}");
    Ok(())
}
