//! `mpcstats share`: contribute one private value, either unproven (`--value`) or proven
//! (`--proof`, written by `mpcstats prove`). The value, or the AES keys of the proven TLS
//! session, are split into replicated shares on this machine; each party receives only its
//! pair; the coordinator receives none. The provider may go offline once this returns.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::client::{patiently, Client, Progress};
use crate::config::{Cluster, ProofPolicy};
use crate::oracle::proof::Proof;
use crate::wire::{ContributionOutcome, Id};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  mpcstats share --dataset eth_balance --value 12.345
  mpcstats share --proof proof.bin              (after `mpcstats prove … --out proof.bin`)
An unproven value must be a non-negative decimal with at most the dataset's number of
decimals and not above its maximum (see cluster.toml); only datasets with proof policy
\"none\" take them. A proof is checked by the coordinator and by every party, the value is
decrypted and parsed inside the MPC, and the proof file may be deleted afterwards.

Exactly once: once the coordinator issues a contribution id, `share` prints it and, if the
connection is lost before the decision, asks the coordinator for that id's outcome until it
is decided (committed: it counts in all three parties' stores; aborted: it counts nowhere)
instead of reporting a failure. Ask again any time with
  mpcstats share --status ID
A full queue answers \"busy, retry after N s\"; `share` waits and retries by itself, and
prints its place while it waits in the queue.")]
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
    #[arg(long, value_name = "FILE", required_unless_present_any = ["value", "status"])]
    pub proof: Option<PathBuf>,
    /// Only ask what became of an earlier contribution (the id `share` printed)
    #[arg(long, value_name = "ID", conflicts_with_all = ["value", "proof"])]
    pub status: Option<String>,
}

fn parse_id(text: &str) -> Result<Id> {
    let bytes = hex::decode(text.trim())
        .ok()
        .filter(|b| b.len() == 16)
        .context("a contribution id is 32 hexadecimal digits, as `share` printed it")?;
    Ok(bytes.try_into().expect("16 bytes"))
}

/// The CLI's progress lines, on standard error.
fn print_progress(p: Progress) {
    match p {
        Progress::Queued(n) => eprintln!("waiting in the coordinator's queue: position {n}"),
        Progress::Ticket(id) => eprintln!(
            "contribution {}: submitting to the parties (if interrupted, `mpcstats share --status {}` tells its outcome)",
            hex::encode(id),
            hex::encode(id)
        ),
        Progress::AskingOutcome(id) => eprintln!(
            "the decision on {} did not reach us; asking the coordinator for its outcome …",
            hex::encode(id)
        ),
    }
}

/// `share --status ID`.
async fn status(cluster: &Cluster, id: &str) -> Result<()> {
    let id = parse_id(id)?;
    let client = Client::connect(cluster).await?;
    match client.outcome(id).await? {
        ContributionOutcome::Committed { dataset, count } => {
            println!(
                "committed: contribution {} is number {count} of dataset {dataset}",
                hex::encode(id)
            );
            Ok(())
        }
        ContributionOutcome::Aborted { reason } => {
            bail!(
                "aborted: contribution {} counts nowhere: {reason}",
                hex::encode(id)
            )
        }
        ContributionOutcome::Pending => bail!(
            "pending: contribution {} is not decided yet; ask again in a few seconds",
            hex::encode(id)
        ),
        ContributionOutcome::Unknown => bail!(
            "unknown: this cluster's coordinator never issued contribution {}",
            hex::encode(id)
        ),
    }
}

pub async fn run(cluster_flag: Option<&Path>, args: Args) -> Result<()> {
    let cluster = Cluster::load(&Cluster::locate(cluster_flag))?;
    if let Some(id) = &args.status {
        return status(&cluster, id).await;
    }
    let connect = || async {
        let mut client = Client::connect(&cluster).await?;
        client.progress = Some(std::sync::Arc::new(print_progress));
        anyhow::Ok(client)
    };
    let admission = match (&args.value, &args.proof) {
        (Some(value), _) => {
            let dataset = args.dataset.as_deref().context("--value needs --dataset")?;
            // Validate locally before touching the network: bad input never leaves here.
            cluster.dataset(dataset)?.parse_value(value)?;
            let client = connect().await?;
            let a = patiently(|| client.share(dataset, value)).await?;
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
            let client = connect().await?;
            let a = patiently(|| client.share_proof(&dataset, &proof)).await?;
            (dataset, a)
        }
        (None, None) => bail!("give --value, --proof or --status"),
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
