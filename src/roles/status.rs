//! `mpcstats status`: the local cluster file's fingerprint, the coordinator's and each
//! party's as the coordinator last heard it, which parties the coordinator reaches, and the
//! committed contributions per dataset. It talks to the coordinator only, anonymously, and
//! prints nothing but public facts.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::client::call;
use crate::config::Cluster;
use crate::fingerprint::{self, show, Fingerprint};
use crate::net::endpoint::{client_endpoint, connect};
use crate::wire::{FromCoordinator, StatusReport, ToCoordinator};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example:
  mpcstats status --cluster deploy/cluster.toml
Prints this cluster file's fingerprint, the coordinator's and each party's, so operators can
compare them out of band; fails when any of them differs from this file's.")]
pub struct Args {}

/// The report as printed; the second value says whether every fingerprint known matches
/// `local`.
pub fn render(cluster: &Cluster, local: &Fingerprint, report: &StatusReport) -> (String, bool) {
    let mark = |fp: &Fingerprint| {
        if fp == local {
            "same as this file"
        } else {
            "DIFFERS from this file"
        }
    };
    let mut ok = report.fingerprint == *local;
    let mut out = format!("cluster fingerprint: {} (this file)\n", show(local));
    out.push_str(&format!(
        "coordinator {}: fingerprint {} ({})\n",
        cluster.coordinator.addr,
        show(&report.fingerprint),
        mark(&report.fingerprint)
    ));
    for i in 0..3 {
        let reach = if report.parties_reachable[i] {
            "reachable"
        } else {
            "unreachable"
        };
        let fp = match &report.party_fingerprints[i] {
            Some(fp) => {
                ok &= fp == local;
                format!("fingerprint {} ({})", show(fp), mark(fp))
            }
            None => "fingerprint unknown (never reached)".to_string(),
        };
        out.push_str(&format!(
            "party {i} {}: {reach}, {fp}\n",
            cluster.parties[i].addr
        ));
    }
    for (name, count) in &report.datasets {
        out.push_str(&format!("dataset {name}: {count} contributions\n"));
    }
    (out, ok)
}

pub async fn run(cluster_flag: Option<&Path>, _args: Args) -> Result<()> {
    let file = Cluster::locate(cluster_flag);
    let cluster = Cluster::load(&file)?;
    let local = fingerprint::of(&cluster);
    let endpoint = client_endpoint()?;
    let report = tokio::time::timeout(super::client::DEFAULT_TIMEOUT, async {
        let conn = connect(
            &endpoint,
            cluster.coordinator.addr,
            cluster.coordinator_pin(),
            None,
        )
        .await?;
        match call(&conn, &ToCoordinator::Status).await?.2 {
            FromCoordinator::Status(r) => Ok(r),
            FromCoordinator::Refused { reason } => bail!("status refused: {reason}"),
            other => bail!("unexpected answer from the coordinator: {other:?}"),
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("no answer"))
    .and_then(|r| r)
    .with_context(|| {
        format!(
            "this file's cluster fingerprint is {}; the coordinator at {} did not report",
            show(&local),
            cluster.coordinator.addr
        )
    })?;
    let (text, ok) = render(&cluster, &local, &report);
    print!("{text}");
    if !ok {
        bail!("cluster fingerprints differ: the roles do not run the same cluster.toml");
    }
    Ok(())
}
