//! `mpcstats status`: the local cluster file's fingerprint, the coordinator's and each
//! party's as the coordinator last heard it, each role's version, which parties the
//! coordinator reaches and their MPC sessions in flight, the coordinator's queues, and the
//! committed contributions and closed release epochs per dataset. It talks to the
//! coordinator only, anonymously, and prints nothing but public facts.

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
compare them out of band; fails when any of them differs from this file's. Also prints each
role's version, the coordinator's queues (waiting and in progress), each party's MPC sessions
in flight, and per dataset its committed contributions and closed release epochs.")]
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
        "coordinator {}: version {}, fingerprint {} ({})\n",
        cluster.coordinator.addr,
        report.version,
        show(&report.fingerprint),
        mark(&report.fingerprint)
    ));
    let load = &report.load;
    out.push_str(&format!(
        "coordinator queues: contributions {} waiting, {} in progress; queries {} waiting, {} in progress\n",
        load.contributions_waiting,
        load.contributions_in_progress,
        load.queries_waiting,
        load.queries_in_progress
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
        let version = match &report.party_versions[i] {
            Some(v) => format!("version {v}"),
            None => "version unknown".to_string(),
        };
        let sessions = match report.party_sessions[i] {
            Some(n) => format!(", {n} MPC sessions in flight"),
            None => String::new(),
        };
        out.push_str(&format!(
            "party {i} {}: {reach}, {version}, {fp}{sessions}\n",
            cluster.parties[i].addr
        ));
    }
    for (k, (name, count)) in report.datasets.iter().enumerate() {
        let epochs = match report.closed_epochs.get(k) {
            Some(e) => {
                let size = cluster.dataset(name).map(|d| d.epoch_size()).ok();
                match size {
                    Some(size) => format!(", {e} closed epochs of {size}"),
                    None => format!(", {e} closed epochs"),
                }
            }
            None => String::new(),
        };
        out.push_str(&format!("dataset {name}: {count} contributions{epochs}\n"));
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
            FromCoordinator::Status(r) => Ok(*r),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Load;

    #[test]
    fn render_shows_versions_queues_sessions_and_epochs() {
        let server = |port: u16| crate::config::Server {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            pin: hex::encode([port as u8; 32]),
            attestation_key: None,
        };
        let cluster = Cluster {
            security: crate::engine::Security::Malicious,
            coordinator: server(4),
            parties: (1..=3).map(server).collect(),
            notary: server(5),
            limits: crate::config::Limits::default(),
            datasets: vec![crate::roles::init::example_dataset()],
        };
        let fp = crate::fingerprint::of(&cluster);
        let size = cluster.datasets[0].epoch_size();
        let report = StatusReport {
            datasets: vec![(cluster.datasets[0].name.clone(), 2 * size + 3)],
            closed_epochs: vec![2],
            parties_reachable: [true, true, false],
            fingerprint: fp,
            party_fingerprints: [Some(fp), Some(fp), None],
            version: "9.8.7".into(),
            party_versions: [Some("9.8.7".into()), Some("9.8.6".into()), None],
            load: Load {
                contributions_waiting: 4,
                contributions_in_progress: 3,
                queries_waiting: 2,
                queries_in_progress: 1,
            },
            party_sessions: [Some(5), Some(0), None],
        };
        let (text, ok) = render(&cluster, &fp, &report);
        assert!(ok, "{text}");
        assert!(
            text.contains("coordinator 127.0.0.1:4: version 9.8.7,"),
            "{text}"
        );
        assert!(
            text.contains(
                "coordinator queues: contributions 4 waiting, 3 in progress; queries 2 waiting, 1 in progress"
            ),
            "{text}"
        );
        assert!(
            text.contains("party 0 127.0.0.1:1: reachable, version 9.8.7,"),
            "{text}"
        );
        assert!(text.contains("5 MPC sessions in flight"), "{text}");
        assert!(
            text.contains("party 1 127.0.0.1:2: reachable, version 9.8.6,"),
            "{text}"
        );
        assert!(
            text.contains("party 2 127.0.0.1:3: unreachable, version unknown, fingerprint unknown"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "dataset {}: {} contributions, 2 closed epochs of {size}",
                cluster.datasets[0].name,
                2 * size + 3
            )),
            "{text}"
        );
    }
}
