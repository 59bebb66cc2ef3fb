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
use super::init::{
    attestation_key_path, example_dataset, exchange_dataset, identity_paths, profile_dataset,
    signed_dataset,
};
use super::notary::{self, NotaryOptions, NotaryServer};
use super::party::{self, PartyOptions, PartyServer};
use super::prove;
use super::sources::LocalSources;
use crate::config::{Cluster, Limits, Server};
use crate::decimal;
use crate::engine::Security;
use crate::net::endpoint::server_endpoint;
use crate::net::identity::Identity;
use crate::net::pin::pin_to_hex;
use crate::oracle::attestation::NotaryKey;
use crate::oracle::exchange::{
    self, generate_accounts, Account, Exchange, ExchangeConfig, ExchangePki, LeafKey,
};
use crate::oracle::handshake::roots_from_pem;
use crate::oracle::proof::Proof;
use crate::stats::{reference, Query};
use crate::wire::QuerySpec;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs everything on 127.0.0.1 in a temporary directory; needs no setup and no config.
Examples:
  mpcstats demo --providers 1000 --seed 7
  mpcstats demo --api 127.0.0.1:8080    # then open http://127.0.0.1:8080/")]
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
    /// After the checks, keep the cluster running and serve the client API (REST and the
    /// web page) on this address until Ctrl-C
    #[arg(long, value_name = "HOST:PORT")]
    pub api: Option<std::net::SocketAddr>,
    /// Share simulated values unproven, instead of proving each provider's balance on the
    /// local exchange through the notary
    #[arg(long)]
    pub unproven: bool,
    /// The parties' security mode: malicious (security with abort against one deviating
    /// party) or semi-honest (faster; for parties trusted to follow the protocol)
    #[arg(long, default_value = "malicious", value_parser = parse_security)]
    pub security: Security,
}

/// Parses `--security`.
pub fn parse_security(s: &str) -> std::result::Result<Security, String> {
    Security::parse(s).ok_or_else(|| format!("{s:?}: expected malicious or semi-honest"))
}

/// A cluster running in this process: coordinator and three parties on loopback.
pub struct LocalCluster {
    pub cluster: Cluster,
    pub dir: PathBuf,
    pub coordinator: Option<CoordinatorServer>,
    pub parties: Vec<Option<PartyServer>>,
    /// The local HTTPS exchange and the notary that proves its responses.
    pub oracle: LocalOracle,
    _tmp: Option<tempfile::TempDir>,
}

/// A local HTTPS exchange (own CA) and a notary trusting that CA and resolving the
/// exchange's name to it.
pub struct LocalOracle {
    pub ca_pem: String,
    /// Where the exchange listens (the notary resolves its name to this).
    pub exchange_addr: std::net::SocketAddr,
    pub accounts: Vec<Account>,
    pub notary: Option<NotaryServer>,
    /// The sources in real APIs' shapes (signed exchange, profile API).
    pub sources: LocalSources,
    exchange: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Sources beyond the built-in ones (tests: servers on other TLS stacks).
#[derive(Debug, Clone, Default)]
pub struct ExtraSources {
    /// Datasets proven from them.
    pub datasets: Vec<crate::config::Dataset>,
    /// (name, address) the notary dials for each.
    pub resolve: Vec<(String, SocketAddr)>,
    /// Their CA certificates (PEM), trusted by the notary.
    pub roots_pem: String,
}

/// The URL the demo's providers prove.
pub const EXCHANGE_URL: &str = "https://api.exchange.test/api/v1/account";

impl LocalOracle {
    /// Starts an exchange with `accounts` seeded accounts and a notary on `endpoint`.
    async fn start(
        accounts: usize,
        seed: u64,
        key: NotaryKey,
        endpoint: quinn::Endpoint,
        extra: &ExtraSources,
    ) -> Result<LocalOracle> {
        let name = exchange::DEFAULT_NAME;
        let pki = ExchangePki::generate(name, crate::oracle::admit::now(), 30, LeafKey::EcdsaP256)?;
        let accounts = generate_accounts(accounts, seed);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let config = ExchangeConfig {
            tls: pki.server_config()?,
            exchange: Arc::new(Exchange::new(accounts.clone())),
        };
        let exchange = tokio::spawn(exchange::serve(listener, config));
        let sources = LocalSources::start(accounts.len(), seed).await?;
        let bundle = format!("{}\n{}\n{}", pki.ca_pem, sources.ca_pem, extra.roots_pem);
        let mut opts = NotaryOptions::new(key, roots_from_pem(bundle.as_bytes())?);
        // Every local prover shares one address (see `LocalCluster::start_mode`).
        opts.sessions_per_address = 100_000;
        opts.resolve.insert(name.to_string(), addr);
        let mut allowed = vec![(name.to_string(), 443)];
        for (n, a) in sources.resolve.iter().chain(&extra.resolve) {
            opts.resolve.insert(n.clone(), *a);
            allowed.push((n.clone(), 443));
        }
        opts.allowed_servers = Some(allowed);
        let notary = Some(notary::serve(opts, endpoint).await?);
        Ok(LocalOracle {
            ca_pem: pki.ca_pem,
            exchange_addr: addr,
            accounts,
            notary,
            sources,
            exchange,
        })
    }

    /// The ETH balance of account `i`, scaled to 8 decimals.
    pub fn eth_balance(&self, i: usize) -> Result<u128> {
        let b = self.accounts[i]
            .balances
            .iter()
            .find(|b| b.asset == "ETH")
            .context("account without ETH")?;
        decimal::parse(&b.free, 8, decimal::Excess::Reject)
    }

    /// Proves account `i`'s balance through the notary.
    pub async fn prove(&self, cluster: &Cluster, i: usize) -> Result<Proof> {
        let header = format!("X-API-KEY: {}", self.accounts[i].api_key);
        prove::prove(
            cluster,
            "exchange_eth",
            EXCHANGE_URL,
            &[header],
            &[self.ca_pem.as_bytes().to_vec()],
        )
        .await
    }
}

impl LocalCluster {
    /// Writes a deployment into `dir` (or a temporary directory) and starts every server.
    pub async fn start(dir: Option<&Path>) -> Result<LocalCluster> {
        Self::start_with(dir, 8, 1).await
    }

    /// Like [`LocalCluster::start`], with `accounts` seeded exchange accounts.
    pub async fn start_with(
        dir: Option<&Path>,
        accounts: usize,
        seed: u64,
    ) -> Result<LocalCluster> {
        Self::start_extra(dir, accounts, seed, ExtraSources::default()).await
    }

    /// Like [`LocalCluster::start_with`], with more sources the notary dials and trusts and
    /// their datasets.
    pub async fn start_extra(
        dir: Option<&Path>,
        accounts: usize,
        seed: u64,
        extra: ExtraSources,
    ) -> Result<LocalCluster> {
        Self::start_mode(dir, accounts, seed, extra, Security::default()).await
    }

    /// Like [`LocalCluster::start_extra`], with the parties in `security` mode.
    pub async fn start_mode(
        dir: Option<&Path>,
        accounts: usize,
        seed: u64,
        extra: ExtraSources,
        security: Security,
    ) -> Result<LocalCluster> {
        // Every local provider shares one address: per-address limits would throttle the
        // demo and the benches, not a client.
        let limits = Limits {
            requests_per_minute: 1_000_000,
            intents_per_minute: 1_000_000,
            queries_per_minute: 1_000_000,
            tickets_per_address: 100_000,
            notary_sessions_per_address: 100_000,
            ..Limits::default()
        };
        Self::start_full(dir, accounts, seed, extra, security, limits).await
    }

    /// A cluster (temporary directory, 8 accounts, malicious mode) under `limits`.
    pub async fn start_limits(limits: Limits) -> Result<LocalCluster> {
        let extra = ExtraSources::default();
        Self::start_full(None, 8, 1, extra, Security::default(), limits).await
    }

    /// Like [`LocalCluster::start_mode`], with the coordinator's `limits`.
    pub async fn start_full(
        dir: Option<&Path>,
        accounts: usize,
        seed: u64,
        extra: ExtraSources,
        security: Security,
        limits: Limits,
    ) -> Result<LocalCluster> {
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
        let notary_ep = server_endpoint(any, &ids[4], vec![])?;
        let notary_key = NotaryKey::generate()?;
        notary_key.write(attestation_key_path(&dir))?;
        let notary_public = notary_key.public_key();
        let mut cluster = Cluster {
            security,
            coordinator: Server {
                addr: coord_ep.local_addr()?,
                pin: pins[0].clone(),
                attestation_key: None,
            },
            parties: Vec::new(),
            notary: Server {
                addr: notary_ep.local_addr()?,
                pin: pins[4].clone(),
                attestation_key: Some(hex::encode(notary_public)),
            },
            limits,
            datasets: vec![
                example_dataset(),
                exchange_dataset(),
                signed_dataset(),
                profile_dataset(),
            ]
            .into_iter()
            .chain(extra.datasets.iter().cloned())
            .collect(),
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
        let oracle = LocalOracle::start(accounts, seed, notary_key, notary_ep, &extra).await?;
        Ok(LocalCluster {
            cluster,
            dir,
            coordinator,
            parties,
            oracle,
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

    /// Stops the coordinator (its database stays), as a crash would: undecided
    /// contributions stay undecided until it starts again.
    pub async fn stop_coordinator(&mut self) {
        if let Some(c) = self.coordinator.take() {
            c.stop().await;
        }
    }

    /// Starts the coordinator again on its old address with its old database.
    pub async fn restart_coordinator(&mut self) -> Result<()> {
        let (cert, key) = identity_paths(&self.dir, "coordinator");
        let mut last = None;
        // The old socket may take a moment to be released.
        for _ in 0..50 {
            let identity = Identity::load(&cert, &key)?;
            match server_endpoint(self.cluster.coordinator.addr, &identity, vec![]) {
                Ok(ep) => {
                    let opts = CoordinatorOptions {
                        cluster: self.cluster.clone(),
                        identity,
                        db: self.dir.join("coordinator.db"),
                    };
                    self.coordinator = Some(coordinator::serve(opts, ep).await?);
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
        if let Some(n) = self.oracle.notary.take() {
            n.stop().await;
        }
        self.oracle.exchange.abort();
        self.oracle.sources.stop();
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
    let min = crate::config::DEFAULT_EPOCH_SIZE as usize;
    if args.providers < min {
        bail!("--providers must be at least {min}: the demo datasets release statistics in epochs of {min} contributions (epoch_size)");
    }
    let started = std::time::Instant::now();
    let local = LocalCluster::start_mode(
        args.dir.as_deref(),
        args.providers,
        args.seed,
        ExtraSources::default(),
        args.security,
    )
    .await?;
    let ds = if args.unproven {
        local.cluster.dataset("eth_balance")?.clone()
    } else {
        local.cluster.dataset("exchange_eth")?.clone()
    };
    println!(
        "cluster: coordinator {} · parties {} {} {} · notary {} · security {} · files in {}",
        local.cluster.coordinator.addr,
        local.cluster.parties[0].addr,
        local.cluster.parties[1].addr,
        local.cluster.parties[2].addr,
        local.cluster.notary.addr,
        local.cluster.security.name(),
        local.dir.display()
    );
    let client = Arc::new(Client::connect(&local.cluster).await?);
    let local = Arc::new(local);
    let values: Vec<u128> = if args.unproven {
        demo_values(args.providers, args.seed)
    } else {
        (0..args.providers)
            .map(|i| local.oracle.eth_balance(i))
            .collect::<Result<_>>()?
    };
    let pb = bar(
        values.len() as u64,
        if args.unproven { "sharing" } else { "proving" },
    );
    let sem = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, v) in values.iter().copied().enumerate() {
        let (client, local, sem, pb) = (client.clone(), local.clone(), sem.clone(), pb.clone());
        let ds = ds.clone();
        let unproven = args.unproven;
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let r = if unproven {
                client.share(&ds.name, &decimal::format(v, ds.scale)).await
            } else {
                let proof = local
                    .oracle
                    .prove(&local.cluster, i)
                    .await
                    .with_context(|| format!("provider {i} could not prove its balance"))?;
                client.share_proof(&ds.name, &proof).await
            };
            pb.inc(1);
            r.map(|a| (a.count, v))
                .with_context(|| format!("provider {i}"))
        });
    }
    let mut admitted = Vec::new();
    while let Some(r) = tasks.join_next().await {
        admitted.push(r??);
    }
    pb.finish();
    // Queries run over the newest closed epoch: the contributions numbered up to it.
    admitted.sort_unstable();
    let released = (ds.closed_epoch(admitted.len() as u64) * ds.epoch_size()) as usize;
    let values: Vec<u128> = admitted[..released].iter().map(|&(_, v)| v).collect();
    let share_secs = started.elapsed().as_secs_f64();
    println!(
        "{} providers {} ({:.1} s, {:.1} contributions/s)",
        admitted.len(),
        if args.unproven {
            "contributed"
        } else {
            "proved their exchange balance and contributed"
        },
        share_secs,
        admitted.len() as f64 / share_secs
    );
    println!(
        "statistics are released over whole epochs of {} contributions: epoch {}, the first {} of {}",
        ds.epoch_size(),
        ds.closed_epoch(admitted.len() as u64),
        values.len(),
        admitted.len()
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
        let matching = match &query.filter {
            Some(f) => values
                .iter()
                .filter(|&&v| f.op.holds(v, f.threshold))
                .count(),
            None => values.len(),
        };
        if (matching as u64) < ds.min_cohort {
            // Too few match the filter: the parties must refuse, and say why.
            let ok = matches!(client.query(&spec).await, Err(e) if format!("{e:#}").contains("min_cohort"));
            if !ok {
                failures += 1;
            }
            let verdict = if ok { "ok" } else { "NOT REFUSED" };
            println!(
                "{label:<28} {:>22} {:>22}  {verdict}",
                "refused", "< min_cohort"
            );
            continue;
        }
        let expected = reference::answer(&query, &values)?;
        let t = std::time::Instant::now();
        match client.query(&spec).await {
            Ok(got) => {
                let ok = (got.count, &got.text) == (expected.count, &expected.text);
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
    if let Some(addr) = args.api {
        let config = crate::api::ApiConfig {
            min_interval: std::time::Duration::from_secs(5),
            ..Default::default()
        };
        let db = local.dir.join("api.db");
        let api = crate::api::serve(local.cluster.clone(), config, &db, addr).await?;
        println!();
        println!(
            "client API and web page: http://{}/  (Ctrl-C to stop)",
            api.addr
        );
        super::shutdown_signal().await;
        api.stop().await;
    }
    match Arc::try_unwrap(local) {
        Ok(local) => local.stop().await,
        Err(_) => bail!("the cluster is still in use"),
    }
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
        param: Some("2".into()),
        ..q("lorenz")
    });
    out.push(QuerySpec {
        edges: ["0.001", "1", "10", "100", "1000", "5000"]
            .iter()
            .map(|e| e.to_string())
            .collect(),
        ..q("histogram")
    });
    out.push(QuerySpec {
        filter: Some(">= 100".into()),
        ..q("count")
    });
    out.push(QuerySpec {
        filter: Some(">= 100".into()),
        ..q("mean")
    });
    out.push(QuerySpec {
        filter: Some("< 5000".into()),
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
