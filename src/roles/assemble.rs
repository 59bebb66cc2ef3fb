//! `mpcstats init --public FILE …`: assembles `cluster.toml` from the five public parts that
//! `mpcstats keygen` wrote on the hosts of the coordinator, the three parties and the notary.
//!
//! It reads only those public files (untrusted input, size-limited by
//! [`PublicPart::load`]) and writes only `cluster.toml`; it must never read, write or ask for
//! a private key. Missing and duplicate roles are errors naming the role and the files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::keygen::{PublicPart, Role};
use crate::config::{Cluster, Limits, Server};
use crate::engine::Security;
use crate::net::pin::pin_from_hex;

/// The cluster the public parts describe, with `init`'s example datasets.
pub fn cluster_from_parts(parts: &[(PathBuf, PublicPart)], security: Security) -> Result<Cluster> {
    let find = |role: Role, id: Option<u8>| -> Result<&PublicPart> {
        let mut found = parts.iter().filter(|(_, p)| p.role == role && p.id == id);
        let name = super::keygen::Files::of(Path::new(""), role, id)
            .public
            .display()
            .to_string();
        let Some((first_path, first)) = found.next() else {
            let how = match id {
                Some(i) => format!("mpcstats keygen --role party --id {i}"),
                None => format!(
                    "mpcstats keygen --role {}",
                    name.trim_end_matches(".public.toml")
                ),
            };
            bail!(
                "no public part for {}: run `{how} --addr HOST:PORT` on its host and pass \
                 the {name} it writes with --public",
                name.trim_end_matches(".public.toml")
            );
        };
        if let Some((second_path, _)) = found.next() {
            bail!(
                "{} is given twice: in {} and in {}; pass each role's public part once",
                first.name(),
                first_path.display(),
                second_path.display()
            );
        }
        Ok(first)
    };
    let server = |p: &PublicPart| Server {
        addr: p.addr,
        pin: p.pin.trim().to_ascii_lowercase(),
        attestation_key: p
            .attestation_key
            .as_ref()
            .map(|k| k.trim().to_ascii_lowercase()),
    };
    let coordinator = server(find(Role::Coordinator, None)?);
    let parties = (0..3)
        .map(|i| find(Role::Party, Some(i)).map(server))
        .collect::<Result<Vec<_>>>()?;
    let notary = server(find(Role::Notary, None)?);
    // Every part is one of the five roles above; a sixth is a duplicate, already refused.
    let mut pins: Vec<([u8; 32], String)> = Vec::new();
    for (_, p) in parts {
        let pin = pin_from_hex(&p.pin)?;
        if let Some((_, other)) = pins.iter().find(|(q, _)| *q == pin) {
            bail!(
                "{} and {} have the same certificate pin: every role needs its own key \
                 (run keygen once on each role's host)",
                other,
                p.name()
            );
        }
        pins.push((pin, p.name()));
    }
    let cluster = Cluster {
        security,
        coordinator,
        parties,
        notary,
        limits: Limits::default(),
        datasets: vec![
            super::init::example_dataset(),
            super::init::exchange_dataset(),
            super::init::signed_dataset(),
            super::init::profile_dataset(),
        ],
    };
    cluster.validate()?;
    Ok(cluster)
}

/// Reads the public parts, writes `out/cluster.toml` and prints its fingerprint.
pub fn run(out: &Path, files: &[PathBuf], security: Security, force: bool) -> Result<()> {
    let parts = files
        .iter()
        .map(|f| PublicPart::load(f).map(|p| (f.clone(), p)))
        .collect::<Result<Vec<_>>>()?;
    let cluster = cluster_from_parts(&parts, security)?;
    let cluster_file = out.join("cluster.toml");
    if cluster_file.exists() && !force {
        bail!(
            "{} already exists; pass --force to overwrite it",
            cluster_file.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    cluster.save(&cluster_file)?;
    let fp = crate::fingerprint::of(&cluster);
    println!(
        "wrote {} from {} public parts (no private key read or written)",
        cluster_file.display(),
        parts.len()
    );
    for (_, p) in &parts {
        println!("  {}", super::keygen::summary(p));
    }
    println!("cluster fingerprint: {}", crate::fingerprint::show(&fp));
    println!(
        "copy cluster.toml to every host and laptop; edit its datasets first if you wish (that \
         changes the fingerprint), then have every operator compare the fingerprint their \
         role logs at start with this one"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(role: Role, id: Option<u8>, n: u8) -> (PathBuf, PublicPart) {
        let p = PublicPart {
            role,
            id,
            addr: format!("10.0.0.{n}:7000").parse().unwrap(),
            pin: hex::encode([n; 32]),
            attestation_key: (role == Role::Notary).then(|| hex::encode([99u8; 32])),
        };
        (PathBuf::from(format!("{}.public.toml", p.name())), p)
    }

    fn five() -> Vec<(PathBuf, PublicPart)> {
        vec![
            part(Role::Notary, None, 5),
            part(Role::Party, Some(2), 4),
            part(Role::Coordinator, None, 1),
            part(Role::Party, Some(0), 2),
            part(Role::Party, Some(1), 3),
        ]
    }

    #[test]
    fn five_parts_in_any_order_make_a_cluster() {
        let c = cluster_from_parts(&five(), Security::Malicious).unwrap();
        assert_eq!(c.coordinator.pin, hex::encode([1u8; 32]));
        for i in 0..3 {
            assert_eq!(c.parties[i].pin, hex::encode([2 + i as u8; 32]));
            assert_eq!(
                c.parties[i].addr.ip().to_string(),
                format!("10.0.0.{}", 2 + i)
            );
        }
        assert_eq!(c.notary_key().unwrap(), [99u8; 32]);
    }

    #[test]
    fn missing_and_duplicate_roles_are_named() {
        let mut missing = five();
        missing.remove(1);
        let err = format!(
            "{:#}",
            cluster_from_parts(&missing, Security::Malicious).unwrap_err()
        );
        assert!(err.contains("no public part for party2"), "{err}");
        assert!(err.contains("--role party --id 2"), "{err}");
        let mut no_notary = five();
        no_notary.remove(0);
        let err = format!(
            "{:#}",
            cluster_from_parts(&no_notary, Security::Malicious).unwrap_err()
        );
        assert!(err.contains("no public part for notary"), "{err}");
        let mut twice = five();
        let mut again = part(Role::Party, Some(1), 6);
        again.0 = PathBuf::from("copy.toml");
        twice.push(again);
        let err = format!(
            "{:#}",
            cluster_from_parts(&twice, Security::Malicious).unwrap_err()
        );
        assert!(
            err.contains("party1 is given twice")
                && err.contains("party1.public.toml")
                && err.contains("copy.toml"),
            "{err}"
        );
        let mut same_key = five();
        same_key[4].1.pin = same_key[3].1.pin.clone();
        let err = format!(
            "{:#}",
            cluster_from_parts(&same_key, Security::Malicious).unwrap_err()
        );
        assert!(err.contains("same certificate pin"), "{err}");
    }
}
