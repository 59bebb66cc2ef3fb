//! `mpcstats keygen`: generates one server role's keys on the host that will run it, so that
//! no single operator ever holds another organisation's key. It writes the role's TLS key
//! (`<role>.key.pem`, mode 0600) and certificate, for the notary also its Ed25519 attestation
//! key (`notary.attestation.pem`, mode 0600), and the role's public part
//! (`<role>.public.toml`: role, address, certificate pin, the notary's attestation public
//! key), which is all `mpcstats init --public` needs to assemble `cluster.toml`.
//!
//! What this module prints and what [`PublicPart`] holds must never contain private key
//! material; reading a public part treats the file as untrusted input.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::net::identity::Identity;
use crate::net::pin::{pin_from_hex, pin_to_hex};
use crate::oracle::attestation::NotaryKey;

/// Largest public-part file `init` reads (a real one is a few hundred bytes).
pub const MAX_PUBLIC_FILE: u64 = 16 * 1024;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Three organisations, three keys: each server role's key is generated on the host that runs
it and never leaves that host; only its public part travels.

  # on party 0's host (party 1 and 2 likewise, with --id 1 and --id 2 and their addresses)
  mpcstats keygen --role party --id 0 --addr 10.0.0.1:7100 --out /etc/mpcstats
  # on the coordinator's host, and on the notary's host
  mpcstats keygen --role coordinator --addr 10.0.0.4:7000 --out /etc/mpcstats
  mpcstats keygen --role notary --addr 10.0.0.5:7200 --out /etc/mpcstats

Each prints one line with its pin and writes <role>.public.toml. Collect the five public
files anywhere and assemble the cluster file from them alone:

  mpcstats init --out deploy --public coordinator.public.toml --public party0.public.toml \\
      --public party1.public.toml --public party2.public.toml --public notary.public.toml

Copy deploy/cluster.toml beside each host's key (/etc/mpcstats/cluster.toml). Every role logs
the cluster fingerprint at start and `mpcstats status` shows it: the operators compare it
with each other out of band (by phone, in person) before any data is contributed. Parties
refuse peers and a coordinator whose fingerprint differs from their own.")]
pub struct Args {
    /// The role this host will run
    #[arg(long, value_enum)]
    pub role: Role,
    /// The party's id, 0, 1 or 2 (parties only)
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..3))]
    pub id: Option<u8>,
    /// The address this role will listen on and the others dial
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// Directory to write the key, certificate and public part into (created if missing)
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Replace this role's existing keys in DIR (the old ones stop working)
    #[arg(long)]
    pub force: bool,
}

/// A server role.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Coordinator,
    Party,
    Notary,
}

/// What `cluster.toml` needs of one role, and nothing private.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicPart {
    pub role: Role,
    /// Parties only: 0, 1 or 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u8>,
    pub addr: SocketAddr,
    /// SHA-256 of the role's certificate, 64 hex digits.
    pub pin: String,
    /// The notary only: its Ed25519 attestation public key, 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_key: Option<String>,
}

impl PublicPart {
    /// The role's name in file names and in `init`'s messages: `coordinator`, `party1`, `notary`.
    pub fn name(&self) -> String {
        stem(self.role, self.id)
    }

    /// Checks what a cluster file relies on: an id for exactly the parties, a well-formed
    /// pin, an attestation key for exactly the notary.
    pub fn validate(&self) -> Result<()> {
        match (self.role, self.id) {
            (Role::Party, None) => bail!("a party's public part needs its id (0, 1 or 2)"),
            (Role::Party, Some(i)) if i > 2 => bail!("party id {i} is not 0, 1 or 2"),
            (Role::Coordinator | Role::Notary, Some(_)) => {
                bail!("only a party's public part has an id")
            }
            _ => {}
        }
        pin_from_hex(&self.pin).context("bad pin")?;
        match (self.role, &self.attestation_key) {
            (Role::Notary, None) => bail!("the notary's public part needs its attestation_key"),
            (Role::Notary, Some(k)) => {
                let bytes = hex::decode(k.trim()).context("attestation_key is not hex")?;
                if bytes.len() != 32 {
                    bail!(
                        "attestation_key must be 32 bytes (64 hex digits), found {}",
                        bytes.len()
                    );
                }
            }
            (_, Some(_)) => bail!("only the notary's public part has an attestation_key"),
            (_, None) => {}
        }
        Ok(())
    }

    /// Reads and checks a public part written by `keygen` (at most [`MAX_PUBLIC_FILE`] bytes).
    pub fn load(path: &Path) -> Result<PublicPart> {
        let bytes = crate::files::read_limited(path, MAX_PUBLIC_FILE, "public part")?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))?;
        let part: PublicPart = toml::from_str(text)
            .with_context(|| format!("{} is not a public part", path.display()))?;
        part.validate()
            .with_context(|| format!("{} is not a valid public part", path.display()))?;
        Ok(part)
    }
}

fn stem(role: Role, id: Option<u8>) -> String {
    match role {
        Role::Coordinator => "coordinator".into(),
        Role::Party => format!("party{}", id.unwrap_or_default()),
        Role::Notary => "notary".into(),
    }
}

/// Paths `keygen` writes for a role in `dir`.
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The notary only.
    pub attestation: Option<PathBuf>,
    pub public: PathBuf,
}

impl Files {
    pub fn of(dir: &Path, role: Role, id: Option<u8>) -> Files {
        let name = stem(role, id);
        let (cert, key) = super::init::identity_paths(dir, &name);
        Files {
            cert,
            key,
            attestation: (role == Role::Notary).then(|| super::init::attestation_key_path(dir)),
            public: dir.join(format!("{name}.public.toml")),
        }
    }

    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.cert, &self.key, &self.public]
            .into_iter()
            .chain(self.attestation.as_ref())
    }
}

/// Generates `role`'s keys into `dir` and writes its public part; returns the public part.
pub fn generate(
    role: Role,
    id: Option<u8>,
    addr: SocketAddr,
    dir: &Path,
    force: bool,
) -> Result<PublicPart> {
    match (role, id) {
        (Role::Party, None) => bail!("a party needs --id 0, 1 or 2"),
        (Role::Coordinator | Role::Notary, Some(_)) => bail!("--id is for parties only"),
        _ => {}
    }
    let files = Files::of(dir, role, id);
    if !force {
        if let Some(existing) = files.all().find(|p| p.exists()) {
            bail!(
                "{} already exists; pass --force to replace this role's keys (its old pin \
                 then stops working in every cluster file that names it)",
                existing.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = stem(role, id);
    let identity = Identity::generate(&name)?;
    identity.write(&files.cert, &files.key)?;
    let attestation_key = match &files.attestation {
        Some(path) => {
            let key = NotaryKey::generate()?;
            key.write(path)?;
            Some(hex::encode(key.public_key()))
        }
        None => None,
    };
    let part = PublicPart {
        role,
        id,
        addr,
        pin: pin_to_hex(&identity.pin()),
        attestation_key,
    };
    let text = format!(
        "# The public part of {name}: give this file to whoever assembles cluster.toml\n\
         # (mpcstats init --public FILE ...). It holds no secret.\n{}",
        toml::to_string(&part).context("encoding the public part")?
    );
    std::fs::write(&files.public, text)
        .with_context(|| format!("cannot write {}", files.public.display()))?;
    Ok(part)
}

/// The one line `keygen` ends with: the role, its address and its pin (and the notary's
/// attestation public key).
pub fn summary(part: &PublicPart) -> String {
    let mut line = format!("{} {} pin {}", part.name(), part.addr, part.pin);
    if let Some(k) = &part.attestation_key {
        line.push_str(&format!(" attestation_key {k}"));
    }
    line
}

pub fn run(args: Args) -> Result<()> {
    let part = generate(args.role, args.id, args.addr, &args.out, args.force)?;
    let files = Files::of(&args.out, args.role, args.id);
    println!(
        "wrote {} and {} (private, mode 0600: it stays on this host)",
        files.cert.display(),
        files.key.display()
    );
    if let Some(a) = &files.attestation {
        println!(
            "wrote {} (the attestation signing key; private, mode 0600)",
            a.display()
        );
    }
    println!(
        "public part: {} (send it to whoever assembles cluster.toml)",
        files.public.display()
    );
    println!("{}", summary(&part));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part() -> PublicPart {
        PublicPart {
            role: Role::Party,
            id: Some(1),
            addr: "10.0.0.2:7100".parse().unwrap(),
            pin: hex::encode([1u8; 32]),
            attestation_key: None,
        }
    }

    #[test]
    fn a_public_part_must_fit_its_role() {
        assert!(part().validate().is_ok());
        let bad: Vec<(PublicPart, &str)> = vec![
            (PublicPart { id: None, ..part() }, "needs its id"),
            (
                PublicPart {
                    id: Some(3),
                    ..part()
                },
                "not 0, 1 or 2",
            ),
            (
                PublicPart {
                    role: Role::Coordinator,
                    ..part()
                },
                "only a party",
            ),
            (
                PublicPart {
                    pin: "00".into(),
                    ..part()
                },
                "bad pin",
            ),
            (
                PublicPart {
                    attestation_key: Some(hex::encode([2u8; 32])),
                    ..part()
                },
                "only the notary",
            ),
            (
                PublicPart {
                    role: Role::Notary,
                    id: None,
                    ..part()
                },
                "needs its attestation_key",
            ),
            (
                PublicPart {
                    role: Role::Notary,
                    id: None,
                    attestation_key: Some(hex::encode([2u8; 31])),
                    ..part()
                },
                "32 bytes",
            ),
        ];
        for (p, needle) in bad {
            let err = format!("{:#}", p.validate().unwrap_err());
            assert!(err.contains(needle), "{p:?}: {err}");
        }
    }

    #[test]
    fn loading_refuses_oversized_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        // Exactly at the limit is read (and then refused as TOML); one byte more is refused
        // before parsing.
        std::fs::write(&big, vec![b'#'; MAX_PUBLIC_FILE as usize]).unwrap();
        let err = format!("{:#}", PublicPart::load(&big).unwrap_err());
        assert!(
            err.contains("not a public part") && !err.contains("larger"),
            "{err}"
        );
        std::fs::write(&big, vec![b'#'; MAX_PUBLIC_FILE as usize + 1]).unwrap();
        let err = format!("{:#}", PublicPart::load(&big).unwrap_err());
        assert!(err.contains("larger than"), "{err}");
        let binary = dir.path().join("bin.toml");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert!(PublicPart::load(&binary).is_err());
        let unknown = dir.path().join("unknown.toml");
        let mut text = toml::to_string(&part()).unwrap();
        text.push_str("key = \"x\"\n");
        std::fs::write(&unknown, text).unwrap();
        let err = format!("{:#}", PublicPart::load(&unknown).unwrap_err());
        assert!(err.contains("unknown field"), "{err}");
    }
}
