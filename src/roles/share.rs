//! `mpcstats share`: contribute one private value, either unproven (`--value`) or proven
//! (`--proof`, written by `mpcstats prove`). The value, or the AES keys of the proven TLS
//! session, are split into replicated shares on this machine; each party receives only its
//! pair; the coordinator receives none. The provider may go offline once this returns.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::client::Client;
use crate::config::{Cluster, ProofPolicy};
use crate::oracle::proof::Proof;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  mpcstats share --dataset eth_balance --value 12.345
  mpcstats share --proof proof.bin              (after `mpcstats prove … --out proof.bin`)
An unproven value must be a non-negative decimal with at most the dataset's number of
decimals and not above its maximum (see cluster.toml); only datasets with proof policy
\"none\" take them. A proof is checked by the coordinator and by every party, the value is
decrypted and parsed inside the MPC, and the proof file may be deleted afterwards.")]
pub struct Args {
    /// The dataset to contribute to [default with --proof: the one whose template names the
    /// proof's server]
    #[arg(long)]
    pub dataset: Option<String>,
    /// Your value, as a decimal in the dataset's units (e.g. 12.345)
    #[arg(
        long,
        value_name = "DECIMAL",
        allow_hyphen_values = true,
        conflicts_with = "proof"
    )]
    pub value: Option<String>,
    /// A proof file written by `mpcstats prove`
    #[arg(long, value_name = "FILE", required_unless_present = "value")]
    pub proof: Option<PathBuf>,
}

pub async fn run(cluster_flag: Option<&Path>, args: Args) -> Result<()> {
    let cluster = Cluster::load(&Cluster::locate(cluster_flag))?;
    let admission = match (&args.value, &args.proof) {
        (Some(value), _) => {
            let dataset = args.dataset.as_deref().context("--value needs --dataset")?;
            // Validate locally before touching the network: bad input never leaves here.
            cluster.dataset(dataset)?.parse_value(value)?;
            let client = Client::connect(&cluster).await?;
            let a = client.share(dataset, value).await?;
            (dataset.to_string(), a)
        }
        (None, Some(path)) => {
            // `Proof::read` names the file and what failed.
            let proof = Proof::read(path)?;
            let dataset = match &args.dataset {
                Some(d) => d.clone(),
                None => dataset_for(&cluster, &proof)?,
            };
            eprintln!("submitting the proof to {dataset}; the parties check it in MPC …");
            let client = Client::connect(&cluster).await?;
            let a = client.share_proof(&dataset, &proof).await?;
            (dataset, a)
        }
        (None, None) => bail!("give --value or --proof"),
    };
    println!(
        "admitted: contribution {} is number {} of dataset {}",
        hex::encode(admission.1.contribution),
        admission.1.count,
        admission.0
    );
    Ok(())
}

/// The one proven dataset whose template names the attested server.
fn dataset_for(cluster: &Cluster, proof: &Proof) -> Result<String> {
    let name = crate::oracle::attestation::Attestation::decode(&proof.attestation.body)
        .context("the proof's attestation is malformed")?
        .server_name;
    let matching: Vec<&str> = cluster
        .datasets
        .iter()
        .filter(|d| {
            d.proof == ProofPolicy::Tls
                && d.template.as_ref().is_some_and(|t| t.server_name == name)
        })
        .map(|d| d.name.as_str())
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!("no proven dataset of this cluster takes values from {name}"),
        many => bail!(
            "several datasets take values from {name} ({}); choose one with --dataset",
            many.join(", ")
        ),
    }
}
