//! The cluster fingerprint: a short, stable digest of what a `cluster.toml` means, so that
//! the operators of the three parties, the coordinator and the notary can confirm out of band
//! (and the roles can confirm to each other) that they run the same cluster file.
//!
//! It is SHA-256 over a domain-separation tag and a canonical serialisation of the parsed
//! [`Cluster`] (JSON of the struct, fields in declaration order, defaults filled in, hex pins
//! and keys in lower case), so whitespace, comments, table order and writing a default
//! explicitly do not change it; any change of meaning does. It is shown as 16 hex digits in
//! groups of four (the first 8 bytes); the roles exchange all 32 bytes. The file is public, so
//! its fingerprint is too. This module holds no key and does no I/O.

use sha2::{Digest, Sha256};

use crate::config::Cluster;

/// SHA-256 over the canonical cluster.
pub type Fingerprint = [u8; 32];

const TAG: &[u8] = b"mpcstats/cluster-fingerprint/v1\0";

/// The fingerprint of a parsed cluster file.
pub fn of(cluster: &Cluster) -> Fingerprint {
    let mut canonical = cluster.clone();
    for s in std::iter::once(&mut canonical.coordinator)
        .chain(canonical.parties.iter_mut())
        .chain(std::iter::once(&mut canonical.notary))
    {
        s.pin = s.pin.trim().to_ascii_lowercase();
        if let Some(k) = s.attestation_key.as_mut() {
            *k = k.trim().to_ascii_lowercase();
        }
    }
    for d in &mut canonical.datasets {
        // `None` means the default; the meaning is the size itself.
        d.epoch_size = Some(d.epoch_size());
    }
    // Serialising plain data (strings, integers, addresses, enums) cannot fail.
    let json = serde_json::to_vec(&canonical).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(TAG);
    h.update(&json);
    h.finalize().into()
}

/// The short form people compare: 16 hex digits in groups of four, e.g. `3f2a-91c0-7b44-0e1d`.
pub fn show(fp: &Fingerprint) -> String {
    fp[..8]
        .chunks(2)
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cluster, Dataset, Limits, Server};
    use crate::engine::Security;
    use crate::roles::init;

    fn server(port: u16, pin: u8) -> Server {
        Server {
            addr: format!("10.0.0.{pin}:{port}").parse().unwrap(),
            pin: hex::encode([pin; 32]),
            attestation_key: None,
        }
    }

    fn cluster() -> Cluster {
        Cluster {
            security: Security::Malicious,
            coordinator: server(7000, 1),
            parties: (0..3).map(|i| server(7100, 2 + i)).collect(),
            notary: Server {
                attestation_key: Some(hex::encode([9u8; 32])),
                ..server(7200, 5)
            },
            limits: Limits::default(),
            datasets: vec![
                init::example_dataset(),
                init::exchange_dataset(),
                init::signed_dataset(),
                init::profile_dataset(),
            ],
        }
    }

    fn parse(text: &str) -> Cluster {
        let c: Cluster = toml::from_str(text).unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn shown_as_sixteen_hex_digits_in_groups() {
        let s = show(&of(&cluster()));
        assert_eq!(s.len(), 19, "{s}");
        assert_eq!(s.split('-').count(), 4, "{s}");
        assert!(s.split('-').all(|g| g.len() == 4
            && g.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())));
        assert_eq!(hex::encode(&of(&cluster())[..8]), s.replace('-', ""));
    }

    #[test]
    fn stable_under_reformatting_comments_order_and_explicit_defaults() {
        let mut c = cluster();
        c.parties[1].pin = hex::encode([0xab; 32]);
        let fp = of(&c);
        let text = toml::to_string_pretty(&c).unwrap();
        assert_eq!(of(&parse(&text)), fp);
        // Comments, blank lines, indentation and spacing around `=`.
        let commented: String = text
            .lines()
            .map(|l| {
                if l.starts_with('[') {
                    format!("\n# a comment before {l}\n  {l}   # trailing comment")
                } else if let Some((k, v)) = l.split_once(" = ") {
                    format!("    {k}={v}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(commented, text);
        assert_eq!(of(&parse(&commented)), fp);
        // Upper-case pins and keys mean the same certificates.
        let upper = text.replace(&hex::encode([0xab; 32]), &hex::encode_upper([0xab; 32]));
        assert_ne!(upper, text);
        assert_eq!(of(&parse(&upper)), fp);
        // The notary table before the coordinator's; defaults written out or left out.
        let mut reordered = c.clone();
        reordered.datasets[0].epoch_size = Some(reordered.datasets[0].epoch_size());
        let mut moved = toml::to_string_pretty(&reordered).unwrap();
        let notary_at = moved.find("[notary]").unwrap();
        let notary_end = moved[notary_at..]
            .find("\n[")
            .map_or(moved.len(), |e| notary_at + e + 1);
        let notary = moved[notary_at..notary_end].to_string();
        moved.replace_range(notary_at..notary_end, "");
        let coord_at = moved.find("[coordinator]").unwrap();
        moved.insert_str(coord_at, &notary);
        assert!(moved.find("[notary]").unwrap() < moved.find("[coordinator]").unwrap());
        assert!(moved.contains("epoch_size = 10"));
        assert_eq!(of(&parse(&moved)), fp);
        let minimal = text.replace("min_cohort = 5\n", "");
        assert_ne!(minimal, text);
        assert_eq!(of(&parse(&minimal)), fp);
    }

    type Change = Box<dyn Fn(&mut Cluster)>;

    #[test]
    fn any_change_of_meaning_changes_it() {
        let base = of(&cluster());
        let changes: Vec<(&str, Change)> = vec![
            ("security", Box::new(|c| c.security = Security::SemiHonest)),
            (
                "coordinator address",
                Box::new(|c| c.coordinator.addr.set_port(7001)),
            ),
            (
                "party pin",
                Box::new(|c| c.parties[2].pin = hex::encode([7u8; 32])),
            ),
            ("party order", Box::new(|c| c.parties.swap(0, 1))),
            (
                "notary key",
                Box::new(|c| c.notary.attestation_key = Some(hex::encode([8u8; 32]))),
            ),
            (
                "rate limit",
                Box::new(|c| c.limits.requests_per_minute += 1),
            ),
            ("min_cohort", Box::new(|c| c.datasets[0].min_cohort = 6)),
            ("max", Box::new(|c| c.datasets[0].max = "1000001".into())),
            (
                "epoch_size",
                Box::new(|c| c.datasets[0].epoch_size = Some(20)),
            ),
            ("probing", Box::new(|c| c.datasets[0].probing_per_epoch = 9)),
            (
                "description",
                Box::new(|c| c.datasets[0].description.push('!')),
            ),
            (
                "template port",
                Box::new(|c| c.datasets[1].template.as_mut().unwrap().port = 8443),
            ),
            ("dataset removed", Box::new(|c| drop(c.datasets.pop()))),
            (
                "dataset added",
                Box::new(|c| {
                    let mut d: Dataset = init::example_dataset();
                    d.name = "other".into();
                    c.datasets.push(d)
                }),
            ),
        ];
        let mut seen = vec![base];
        for (what, change) in changes {
            let mut c = cluster();
            change(&mut c);
            let fp = of(&c);
            assert!(!seen.contains(&fp), "{what} did not change the fingerprint");
            seen.push(fp);
        }
    }
}
