//! `mpcstats share`: contribute one private value. The value is split into replicated shares
//! on this machine; each party receives only its pair; the coordinator receives none.

use std::path::Path;

use anyhow::Result;

use super::client::Client;
use crate::config::Cluster;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example:
  mpcstats share --dataset eth_balance --value 12.345
The value must be a non-negative decimal with at most the dataset's number of decimals and
not above its maximum (see cluster.toml). Only datasets with proof policy \"none\" take
unproven values.")]
pub struct Args {
    /// The dataset to contribute to
    #[arg(long)]
    pub dataset: String,
    /// Your value, as a decimal in the dataset's units (e.g. 12.345)
    #[arg(long, value_name = "DECIMAL", allow_hyphen_values = true)]
    pub value: String,
}

pub async fn run(cluster_flag: Option<&Path>, args: Args) -> Result<()> {
    let cluster = Cluster::load(&Cluster::locate(cluster_flag))?;
    // Validate locally before touching the network: bad input never leaves this machine.
    cluster.dataset(&args.dataset)?.parse_value(&args.value)?;
    let client = Client::connect(&cluster).await?;
    let admission = client.share(&args.dataset, &args.value).await?;
    println!(
        "admitted: contribution {} is number {} of dataset {}",
        hex::encode(admission.contribution),
        admission.count,
        args.dataset
    );
    Ok(())
}
