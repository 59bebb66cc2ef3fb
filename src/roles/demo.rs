//! `mpcstats demo`: a whole cluster on loopback in one process, on embedded defaults. It
//! writes a fresh deployment into a temporary directory, starts the coordinator and the three
//! parties on free ports, lets simulated providers contribute seeded random values, then asks
//! for every statistic and prints it beside the plaintext answer. Exits non-zero on any
//! difference.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};

use super::client::Client;
use super::coordinator::{self, CoordinatorOptions, CoordinatorServer};
use super::init::{example_dataset, identity_paths};
use super::party::{self, PartyOptions, PartyServer};
use crate::config::{Cluster, Limits, Server};
use crate::decimal;
use crate::net::endpoint::server_endpoint;
use crate::net::identity::Identity;
use crate::net::pin::pin_to_hex;
use crate::stats::{reference, Query};
use crate::wire::QuerySpec;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs everything on 127.0.0.1 in a temporary directory; needs no setup and no config.
Example:
  mpcstats demo --providers 1000 --seed 7")]
pub struct Args {
    /// Number of simulated data providers
    #[arg(long, default_value_t = 200)]
    pub providers: usize,
    /// Seed of the simulated values
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Contributions submitted at once
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Keep the deployment here instead of a temporary directory
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// A cluster running in this process: coordinator and three parties on loopback.
pub struct LocalCluster {
    pub cluster: Cluster,
    pub dir: PathBuf,
    pub coordinator: Option<CoordinatorServer>,
    pub parties: Vec<Option<PartyServer>>,
    _tmp: Option<tempfile::TempDir>,
}

impl LocalCluster {
    /// Writes a deployment into `dir` (or a temporary directory) and starts every server.
    pub async fn start(dir: Option<&Path>) -> Result<LocalCluster> {
        let (tmp, dir) = match dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                (None, d.to_path_buf())
            }
            None => {
                let t = tempfile::tempdir().context("cannot create a temporary directory")?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let ids: Vec<Identity> = super::init::ROLES
            .iter()
            .map(|r| Identity::generate(r))
            .collect::<Result<_>>()?;
        for (role, id) in super::init::ROLES.iter().zip(&ids) {
            let (cert, key) = identity_paths(&dir, role);
            let _ = std::fs::remove_file(&key);
            id.write(&cert, &key)?;
        }
        let any: SocketAddr = "127.0.0.1:0".parse()?;
        let pins: Vec<String> = ids.iter().map(|i| pin_to_hex(&i.pin())).collect();
        // Bind every endpoint first: the cluster file needs the ports the OS chose.
        let coord_ep = server_endpoint(any, &ids[0], vec![])?;
        let mut cluster = Cluster {
            coordinator: Server {
                addr: coord_ep.local_addr()?,
                pin: pins[0].clone(),
                attestation_key: None,
            },
            parties: Vec::new(),
            notary: Server {
                addr: "127.0.0.1:9".parse()?,
                pin: pins[4].clone(),
                attestation_key: None,
            },
            limits: Limits {
                requests_per_minute: 1_000_000,
                ..Limits::default()
            },
            datasets: vec![example_dataset()],
        };
        // Party endpoints need the pins of everyone that may connect; those are known already.
        let mut pre = cluster.clone();
        pre.parties = (0..3)
            .map(|i| Server {
                addr: any,
                pin: pins[1 + i].clone(),
                attestation_key: None,
            })
            .collect();
        let mut party_eps = Vec::new();
        for i in 0..3 {
            let ep = party::party_endpoint(&pre, i, &ids[1 + i], any)?;
            cluster.parties.push(Server {
                addr: ep.local_addr()?,
                pin: pins[1 + i].clone(),
                attestation_key: None,
            });
            party_eps.push(ep);
        }
        cluster.validate()?;
        cluster.save(&dir.join("cluster.toml"))?;
        let mut ids = ids.into_iter();
        let coord_id = ids.next().expect("five identities");
        let mut parties = Vec::new();
        for (i, ep) in party_eps.into_iter().enumerate() {
            let opts = PartyOptions {
                id: i,
                cluster: cluster.clone(),
                identity: ids.next().expect("five identities"),
                db: dir.join(format!("party{i}.db")),
            };
            parties.push(Some(party::serve(opts, ep).await?));
        }
        let opts = CoordinatorOptions {
            cluster: cluster.clone(),
            identity: coord_id,
            db: dir.join("coordinator.db"),
        };
        let coordinator = Some(coordinator::serve(opts, coord_ep).await?);
        Ok(LocalCluster {
            cluster,
            dir,
            coordinator,
            parties,
            _tmp: tmp,
        })
    }

    /// Stops party `i` (its database stays).
    pub async fn stop_party(&mut self, i: usize) {
        if let Some(p) = self.parties[i].take() {
            p.stop().await;
        }
    }

    /// Starts party `i` again on its old address with its old database.
    pub async fn restart_party(&mut self, i: usize) -> Result<()> {
        let (cert, key) = identity_paths(&self.dir, &format!("party{i}"));
        let identity = Identity::load(&cert, &key)?;
        let mut last = None;
        // The old socket may take a moment to be released.
        for _ in 0..50 {
            match party::party_endpoint(&self.cluster, i, &identity, self.cluster.parties[i].addr) {
                Ok(ep) => {
                    let opts = PartyOptions {
                        id: i,
                        cluster: self.cluster.clone(),
                        identity: Identity::load(&cert, &key)?,
                        db: self.dir.join(format!("party{i}.db")),
                    };
                    self.parties[i] = Some(party::serve(opts, ep).await?);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(last.expect("tried"))
    }

    pub async fn stop(mut self) {
        if let Some(c) = self.coordinator.take() {
            c.stop().await;
        }
        for i in 0..3 {
            self.stop_party(i).await;
        }
    }
}

/// Seeded demo values: balances in ETH with 8 decimals, mostly small, a few large, some zero.
pub fn demo_values(n: usize, seed: u64) -> Vec<u128> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let r: f64 = rng.gen();
            let max_units: u128 = match r {
                r if r < 0.05 => 0,
                r if r < 0.80 => 10,
                r if r < 0.98 => 1_000,
                _ => 100_000,
            };
            if max_units == 0 {
                0
            } else {
                rng.gen_range(0..=max_units * 100_000_000)
            }
        })
        .collect()
}

fn bar(len: u64, msg: &'static str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

pub async fn run(args: Args) -> Result<()> {
    if args.providers == 0 {
        bail!("--providers must be at least 1");
    }
    let started = std::time::Instant::now();
    let local = LocalCluster::start(args.dir.as_deref()).await?;
    let ds = local.cluster.datasets[0].clone();
    println!(
        "cluster: coordinator {} · parties {} {} {} · files in {}",
        local.cluster.coordinator.addr,
        local.cluster.parties[0].addr,
        local.cluster.parties[1].addr,
        local.cluster.parties[2].addr,
        local.dir.display()
    );
    let client = Arc::new(Client::connect(&local.cluster).await?);
    let values = demo_values(args.providers, args.seed);
    let pb = bar(values.len() as u64, "sharing");
    let sem = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for v in values.iter().copied() {
        let client = client.clone();
        let sem = sem.clone();
        let pb = pb.clone();
        let name = ds.name.clone();
        let text = decimal::format(v, ds.scale);
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let r = client.share(&name, &text).await;
            pb.inc(1);
            r
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    pb.finish();
    let share_secs = started.elapsed().as_secs_f64();
    println!(
        "{} providers contributed ({:.1} s)",
        values.len(),
        share_secs
    );
    println!();
    println!(
        "{:<22} {:>26} {:>26}  check",
        "statistic", "MPC", "plaintext"
    );
    let mut failures = 0;
    for spec in demo_queries(&ds.name) {
        let query = Query::new(&spec, &ds)?;
        let label = describe(&spec);
        let expected = reference::answer(&query, &values)?;
        let t = std::time::Instant::now();
        match client.query(&spec).await {
            Ok(got) => {
                let ok = got == expected;
                if !ok {
                    failures += 1;
                }
                let verdict = if ok { "ok" } else { "DIFFERENT" };
                let ms = t.elapsed().as_secs_f64() * 1e3;
                if got.text.len() <= 22 && expected.text.len() <= 22 {
                    println!(
                        "{label:<28} {:>22} {:>22}  {verdict} ({ms:.0} ms)",
                        got.text, expected.text
                    );
                } else {
                    println!(
                        "{label:<28} {:>22} {:>22}  {verdict} ({ms:.0} ms)",
                        "(below)", ""
                    );
                    println!("    MPC:       {}", got.text);
                    if !ok {
                        println!("    plaintext: {}", expected.text);
                    }
                }
            }
            Err(e) => {
                failures += 1;
                println!(
                    "{label:<28} {:>22} {:>22}  FAILED: {e:#}",
                    "-", expected.text
                );
            }
        }
    }
    local.stop().await;
    println!();
    if failures > 0 {
        bail!("{failures} statistics differ from the plaintext answer");
    }
    println!(
        "all statistics match the plaintext answers ({:.1} s in all)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every statistic the demo asks for, with parameters and filters.
pub fn demo_queries(dataset: &str) -> Vec<QuerySpec> {
    let q = |stat: &str| QuerySpec::new(dataset, stat);
    let mut out: Vec<QuerySpec> = ["count", "sum", "mean", "variance", "stddev"]
        .iter()
        .map(|s| q(s))
        .collect();
    out.push(QuerySpec {
        population: true,
        ..q("variance")
    });
    out.push(QuerySpec {
        population: true,
        ..q("stddev")
    });
    out.extend(["min", "max", "median"].iter().map(|s| q(s)));
    out.push(QuerySpec {
        param: Some("0.9".into()),
        ..q("quantile")
    });
    out.push(QuerySpec {
        param: Some("25".into()),
        ..q("percentile")
    });
    out.push(q("gini"));
    out.push(QuerySpec {
        edges: ["0.001", "1", "10", "100", "1000"]
            .iter()
            .map(|e| e.to_string())
            .collect(),
        ..q("histogram")
    });
    out.push(QuerySpec {
        filter: Some(">= 1".into()),
        ..q("count")
    });
    out.push(QuerySpec {
        filter: Some(">= 1".into()),
        ..q("mean")
    });
    out.push(QuerySpec {
        filter: Some(">= 1".into()),
        ..q("median")
    });
    out
}

/// A query as a short label, e.g. `percentile --p 25 --where ">= 1"`.
pub fn describe(spec: &QuerySpec) -> String {
    let mut s = spec.stat.clone();
    if spec.population {
        s.push_str(" --population");
    }
    if let Some(p) = &spec.param {
        s.push_str(if spec.stat == "quantile" {
            " --q "
        } else {
            " --p "
        });
        s.push_str(p);
    }
    if !spec.edges.is_empty() {
        s.push_str(" --edges …");
    }
    if let Some(f) = &spec.filter {
        s.push_str(&format!(" --where \"{f}\""));
    }
    s
}
