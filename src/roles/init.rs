//! `mpcstats init`: writes a new deployment into a directory — one key pair and self-signed
//! certificate per server role (`<role>.cert.pem`, `<role>.key.pem`, keys mode 0600) and the
//! public `cluster.toml` with addresses, certificate pins, the notary's attestation public key
//! and four example datasets (one unproven; three proven from the local sources: the
//! exchange, the signed exchange and the profile API). The notary's
//! Ed25519 attestation key goes to `notary.attestation.pem` (mode 0600). That one-machine
//! form is for trying a cluster out: whoever runs it holds every role's key.
//!
//! With `--public FILE` (five times) it instead assembles `cluster.toml` from the public parts
//! `mpcstats keygen` wrote on each role's own host, and never reads or writes a private key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::{Cluster, Dataset, Limits, ProofPolicy, Server, DEFAULT_MIN_COHORT};
use crate::net::identity::Identity;
use crate::net::pin::pin_to_hex;
use crate::oracle::attestation::NotaryKey;
use crate::oracle::template::Template;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Three organisations (each role's key generated on its own host, see `mpcstats keygen --help`):
  mpcstats init --out deploy --public coordinator.public.toml --public party0.public.toml \\
      --public party1.public.toml --public party2.public.toml --public notary.public.toml
Addresses and pins come from the public parts; no private key is read or written. Copy
deploy/cluster.toml to every host and laptop and compare the fingerprint printed here with
every operator out of band.

One machine, for trying it out (this writes every role's private key into DIR):
  mpcstats init --out deploy")]
pub struct Args {
    /// Directory to write the deployment into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A role's public part written by `mpcstats keygen` on its host (give five times:
    /// the coordinator, parties 0, 1 and 2, the notary, in any order). Only cluster.toml is
    /// written then
    #[arg(long = "public", value_name = "FILE", num_args = 1)]
    pub public: Vec<PathBuf>,
    /// One machine: address of party 0, 1 and 2, in order (give three times)
    #[arg(
        long = "party",
        value_name = "HOST:PORT",
        num_args = 1,
        conflicts_with = "public"
    )]
    pub parties: Vec<SocketAddr>,
    /// One machine: address of the coordinator
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:7000",
        conflicts_with = "public"
    )]
    pub coordinator: SocketAddr,
    /// One machine: address of the notary
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:7200",
        conflicts_with = "public"
    )]
    pub notary: SocketAddr,
    /// Overwrite an existing deployment in DIR
    #[arg(long)]
    pub force: bool,
    /// The parties' security mode, written to cluster.toml: malicious (security with abort
    /// against one deviating party) or semi-honest (faster; for parties trusted to follow
    /// the protocol)
    #[arg(long, default_value = "malicious", value_parser = super::demo::parse_security)]
    pub security: crate::engine::Security,
}

/// The server roles that get a key pair, in file-name form.
pub const ROLES: [&str; 5] = ["coordinator", "party0", "party1", "party2", "notary"];

/// Paths of a role's certificate and key in a deployment directory.
pub fn identity_paths(dir: &Path, role: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{role}.cert.pem")),
        dir.join(format!("{role}.key.pem")),
    )
}

/// The example dataset every new cluster starts with.
pub fn example_dataset() -> Dataset {
    Dataset {
        name: "eth_balance".into(),
        description: "ETH balance on an exchange account, in ETH (example, unproven)".into(),
        scale: 8,
        max: "1000000".into(),
        min_cohort: DEFAULT_MIN_COHORT,
        epoch_size: None,
        probing_per_epoch: crate::config::DEFAULT_PROBING_PER_EPOCH,
        privacy: None,
        proof: ProofPolicy::None,
        template: None,
    }
}

/// The notary's attestation key file in a deployment directory.
pub fn attestation_key_path(dir: &Path) -> PathBuf {
    dir.join("notary.attestation.pem")
}

/// The example proven dataset: the ETH balance served by the local exchange
/// (`oracle::exchange`, `examples/exchange`) at `api.exchange.test`.
pub fn exchange_dataset() -> Dataset {
    Dataset {
        name: "exchange_eth".into(),
        description: "ETH balance on the local test exchange, in ETH (proven through the notary)"
            .into(),
        scale: 8,
        max: "1000000".into(),
        min_cohort: DEFAULT_MIN_COHORT,
        epoch_size: None,
        probing_per_epoch: crate::config::DEFAULT_PROBING_PER_EPOCH,
        privacy: None,
        proof: ProofPolicy::Tls,
        template: Some(Template {
            server_name: "api.exchange.test".into(),
            port: 443,
            method: "GET".into(),
            path: "/api/v1/account".into(),
            query: vec![],
            signing: None,
            value: "balances[asset=ETH].free".into(),
            account: "account".into(),
            decimals: 8,
            max_age_secs: 3600,
        }),
    }
}

/// A dataset proven from a local source: `template` with every other field at its default.
fn proven(name: &str, description: &str, scale: u32, max: &str, template: &str) -> Dataset {
    Dataset {
        name: name.into(),
        description: description.into(),
        scale,
        max: max.into(),
        min_cohort: DEFAULT_MIN_COHORT,
        epoch_size: None,
        probing_per_epoch: crate::config::DEFAULT_PROBING_PER_EPOCH,
        privacy: None,
        proof: ProofPolicy::Tls,
        // The templates below are constants of this file; a test parses each.
        template: Some(toml::from_str(template).expect("a valid built-in template")),
    }
}

/// The ETH balance at the signed exchange (`oracle::sources::signed`, Binance's shape).
pub fn signed_dataset() -> Dataset {
    proven(
        "signed_eth",
        "ETH balance on the local signed exchange (Binance's API shape), in ETH",
        8,
        "1000000",
        r#"
        server_name = "api.signed.test"
        path = "/api/v3/account"
        value = "balances[asset=ETH].free"
        account = "uid"
        decimals = 8
        signing = { scheme = "hmac-sha256-query", key_header = "X-MBX-APIKEY" }
        query = [
          { name = "omitZeroBalances", value = "true" },
          { name = "recvWindow", value = "60000" },
          { name = "timestamp" },
          { name = "signature" },
        ]
        "#,
    )
}

/// The follower count at the profile API (`oracle::sources::profile`).
pub fn profile_dataset() -> Dataset {
    proven(
        "profile_followers",
        "Followers on the local profile API (numeric fields, chunked bodies)",
        0,
        "100000000",
        r#"
        server_name = "api.profile.test"
        path = "/v1/me"
        value = "followers"
        account = "id"
        decimals = 0
        "#,
    )
}

pub fn run(args: Args) -> Result<()> {
    if !args.public.is_empty() {
        return super::assemble::run(&args.out, &args.public, args.security, args.force);
    }
    let parties = match args.parties.len() {
        0 => vec![
            "127.0.0.1:7100".parse()?,
            "127.0.0.1:7101".parse()?,
            "127.0.0.1:7102".parse()?,
        ],
        3 => args.parties.clone(),
        n => bail!("give --party exactly three times (party 0, 1, 2) or not at all; got {n}"),
    };
    let cluster_file = args.out.join("cluster.toml");
    if cluster_file.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to overwrite this deployment",
            cluster_file.display()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut pins = Vec::new();
    for role in ROLES {
        let id = Identity::generate(role)?;
        let (cert, key) = identity_paths(&args.out, role);
        if args.force {
            let _ = std::fs::remove_file(&key);
        }
        id.write(&cert, &key)?;
        pins.push(pin_to_hex(&id.pin()));
    }
    let notary_key = NotaryKey::generate()?;
    let attestation_path = attestation_key_path(&args.out);
    if args.force {
        let _ = std::fs::remove_file(&attestation_path);
    }
    notary_key.write(&attestation_path)?;
    let server = |addr, pin: &String| Server {
        addr,
        pin: pin.clone(),
        attestation_key: None,
    };
    let cluster = Cluster {
        security: args.security,
        coordinator: server(args.coordinator, &pins[0]),
        parties: (0..3).map(|i| server(parties[i], &pins[1 + i])).collect(),
        notary: Server {
            attestation_key: Some(hex::encode(notary_key.public_key())),
            ..server(args.notary, &pins[4])
        },
        limits: Limits::default(),
        datasets: vec![
            example_dataset(),
            exchange_dataset(),
            signed_dataset(),
            profile_dataset(),
        ],
    };
    cluster.validate()?;
    cluster.save(&cluster_file)?;
    println!(
        "wrote {} (cluster fingerprint {})",
        cluster_file.display(),
        crate::fingerprint::show(&crate::fingerprint::of(&cluster))
    );
    for role in ROLES {
        let (cert, key) = identity_paths(&args.out, role);
        println!("  {role:<12} {}  {}", cert.display(), key.display());
    }
    println!("  {:<12} {}", "notary", attestation_path.display());
    println!("copy cluster.toml everywhere; each key only to the host of its role");
    Ok(())
}
