//! Three organisations, three keys: `keygen` on each role's "host" (its own directory),
//! `init --public` from the public parts alone, a cluster started from the per-role keys,
//! and the cluster fingerprint every role checks (control path and status).

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mpcstats::config::Cluster;
use mpcstats::fingerprint::{self, show};
use mpcstats::net::endpoint::{client_endpoint, connect, server_endpoint};
use mpcstats::net::identity::Identity;
use mpcstats::oracle::attestation::NotaryKey;
use mpcstats::roles::client::{call, Client};
use mpcstats::roles::coordinator::{self, CoordinatorOptions, CoordinatorServer};
use mpcstats::roles::keygen::PublicPart;
use mpcstats::roles::party::{self, PartyOptions, PartyServer};
use mpcstats::wire::{Control, ControlReply, QuerySpec};

const BIN: &str = env!("CARGO_BIN_EXE_mpcstats");

/// Runs the binary; returns (success, stdout and stderr together).
fn mpcstats(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every base64 line of a PEM file's body (what a leak of the key would show).
fn pem_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_string)
        .collect()
}

fn assert_no_private_material(text: &str, keys: &[PathBuf]) {
    assert!(!text.contains("PRIVATE"), "{text}");
    assert!(!text.contains("-----BEGIN"), "{text}");
    for k in keys {
        for line in pem_lines(k) {
            assert!(!text.contains(&line), "{} leaked: {text}", k.display());
        }
    }
}

#[test]
fn keygen_writes_0600_keys_and_prints_only_the_public_part() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("notary-host");
    let o = out.to_str().unwrap();
    let (ok, text) = mpcstats(&[
        "keygen",
        "--role",
        "notary",
        "--addr",
        "10.0.0.5:7200",
        "--out",
        o,
    ]);
    assert!(ok, "{text}");
    let (key, cert, att, public) = (
        out.join("notary.key.pem"),
        out.join("notary.cert.pem"),
        out.join("notary.attestation.pem"),
        out.join("notary.public.toml"),
    );
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&att), 0o600);
    let public_text = std::fs::read_to_string(&public).unwrap();
    assert_no_private_material(&text, &[key.clone(), att.clone()]);
    assert_no_private_material(&public_text, &[key.clone(), att.clone()]);
    // The public part is what the keys are: the certificate's pin, the signing key's
    // public key; the one-line summary names the pin.
    let id = Identity::load(&cert, &key).unwrap();
    let part = PublicPart::load(&public).unwrap();
    assert_eq!(part.pin, hex::encode(id.pin()));
    let signing = NotaryKey::load(&att).unwrap();
    assert_eq!(
        part.attestation_key.as_deref(),
        Some(hex::encode(signing.public_key()).as_str())
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("notary 10.0.0.5:7200 pin ") && l.contains(&part.pin)),
        "{text}"
    );

    // No overwrite without --force: the key stays as it was.
    let before = std::fs::read(&key).unwrap();
    let (ok, text) = mpcstats(&[
        "keygen",
        "--role",
        "notary",
        "--addr",
        "10.0.0.5:7200",
        "--out",
        o,
    ]);
    assert!(
        !ok && text.contains("already exists") && text.contains("--force"),
        "{text}"
    );
    assert_eq!(std::fs::read(&key).unwrap(), before);
    let (ok, text) = mpcstats(&[
        "keygen",
        "--role",
        "notary",
        "--addr",
        "10.0.0.5:7200",
        "--out",
        o,
        "--force",
    ]);
    assert!(ok, "{text}");
    assert_ne!(std::fs::read(&key).unwrap(), before);
    assert_ne!(PublicPart::load(&public).unwrap().pin, part.pin);
    assert_eq!(mode(&key), 0o600);

    // A party needs its id; the others take none.
    let (ok, text) = mpcstats(&[
        "keygen",
        "--role",
        "party",
        "--addr",
        "10.0.0.1:7100",
        "--out",
        o,
    ]);
    assert!(!ok && text.contains("--id"), "{text}");
    let (ok, text) = mpcstats(&[
        "keygen",
        "--role",
        "coordinator",
        "--id",
        "1",
        "--addr",
        "10.0.0.4:7000",
        "--out",
        o,
    ]);
    assert!(!ok && text.contains("parties only"), "{text}");
    // The help teaches the three-organisation flow.
    let (ok, help) = mpcstats(&["keygen", "--help"]);
    assert!(ok && help.contains("--public party0.public.toml") && help.contains("fingerprint"));
}

fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let socks: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    socks.iter().map(|s| s.local_addr().unwrap()).collect()
}

/// Five roles' keys, each generated by the binary in its own "host" directory; the cluster
/// file assembled by `init --public` in a sixth directory that never sees a private key.
struct Deployment {
    _tmp: tempfile::TempDir,
    hosts: Vec<PathBuf>,
    cluster: Cluster,
    printed_fingerprint: String,
}

const NAMES: [&str; 5] = ["coordinator", "party0", "party1", "party2", "notary"];

fn deploy() -> Deployment {
    let tmp = tempfile::tempdir().unwrap();
    let addrs = free_addrs(5);
    let assembly = tmp.path().join("assembly");
    std::fs::create_dir_all(&assembly).unwrap();
    let mut hosts = Vec::new();
    let mut publics = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let host = tmp.path().join(name);
        let addr = addrs[i].to_string();
        let mut args = vec!["keygen", "--addr", &addr, "--out", host.to_str().unwrap()];
        let id = i.saturating_sub(1).to_string();
        match *name {
            "coordinator" => args.extend(["--role", "coordinator"]),
            "notary" => args.extend(["--role", "notary"]),
            _ => args.extend(["--role", "party", "--id", &id]),
        }
        let (ok, text) = mpcstats(&args);
        assert!(ok, "{text}");
        // Only the public part travels.
        let public = assembly.join(format!("{name}.public.toml"));
        std::fs::copy(host.join(format!("{name}.public.toml")), &public).unwrap();
        publics.push(public);
        hosts.push(host);
    }
    let out = assembly.join("deploy");
    let mut args = vec!["init", "--out", out.to_str().unwrap()];
    // In an order other than the roles'.
    for p in publics.iter().rev() {
        args.extend(["--public", p.to_str().unwrap()]);
    }
    let (ok, text) = mpcstats(&args);
    assert!(ok, "{text}");
    let keys: Vec<PathBuf> = NAMES
        .iter()
        .zip(&hosts)
        .map(|(n, h)| h.join(format!("{n}.key.pem")))
        .chain([hosts[4].join("notary.attestation.pem")])
        .collect();
    assert_no_private_material(&text, &keys);
    // init wrote the cluster file and nothing else: no key, no certificate.
    let written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written, vec!["cluster.toml".to_string()]);
    let cluster = Cluster::load(&out.join("cluster.toml")).unwrap();
    let printed_fingerprint = text
        .lines()
        .find_map(|l| l.strip_prefix("cluster fingerprint: "))
        .unwrap_or_else(|| panic!("no fingerprint printed: {text}"))
        .to_string();
    // Missing and duplicate roles are refused by the binary too.
    let elsewhere = tmp.path().join("x");
    let mut one_short = vec!["init", "--out", elsewhere.to_str().unwrap()];
    for p in &publics[..4] {
        one_short.extend(["--public", p.to_str().unwrap()]);
    }
    let (ok, err) = mpcstats(&one_short);
    assert!(!ok && err.contains("no public part for notary"), "{err}");
    let mut twice = one_short.clone();
    twice.extend(["--public", publics[1].to_str().unwrap()]);
    twice.extend(["--public", publics[4].to_str().unwrap()]);
    let (ok, err) = mpcstats(&twice);
    assert!(!ok && err.contains("party0 is given twice"), "{err}");
    assert!(!elsewhere.exists());
    Deployment {
        _tmp: tmp,
        hosts,
        cluster,
        printed_fingerprint,
    }
}

impl Deployment {
    /// The identity of role `i` (in `NAMES` order), loaded from its own host only.
    fn identity(&self, i: usize) -> Identity {
        let (cert, key) = mpcstats::roles::init::identity_paths(&self.hosts[i], NAMES[i]);
        Identity::load(cert, key).unwrap()
    }
}

struct Running {
    coordinator: CoordinatorServer,
    parties: Vec<PartyServer>,
}

impl Running {
    async fn stop(self) {
        self.coordinator.stop().await;
        for p in self.parties {
            p.stop().await;
        }
    }
}

/// Starts the coordinator and the parties in this process, each with its own key and the
/// cluster file `clusters[i]` (0: coordinator, 1..=3: parties).
async fn start(d: &Deployment, clusters: [&Cluster; 4]) -> Running {
    let mut parties = Vec::new();
    for i in 0..3 {
        let identity = d.identity(1 + i);
        let c = clusters[1 + i];
        let ep = party::party_endpoint(c, i, &identity, c.parties[i].addr).unwrap();
        let opts = PartyOptions {
            id: i,
            cluster: c.clone(),
            identity,
            db: d.hosts[1 + i].join(format!("party{i}.db")),
        };
        parties.push(party::serve(opts, ep).await.unwrap());
    }
    let identity = d.identity(0);
    let ep = server_endpoint(clusters[0].coordinator.addr, &identity, vec![]).unwrap();
    let opts = CoordinatorOptions {
        cluster: clusters[0].clone(),
        identity,
        db: d.hosts[0].join("coordinator.db"),
    };
    let coordinator = coordinator::serve(opts, ep).await.unwrap();
    Running {
        coordinator,
        parties,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_from_per_role_keys_admits_shares_and_answers_a_query() {
    let d = deploy();
    let c = &d.cluster;
    // The pins init wrote are those of the certificates on each role's host.
    assert_eq!(c.coordinator_pin(), d.identity(0).pin());
    for i in 0..3 {
        assert_eq!(c.party_pin(i), d.identity(1 + i).pin());
    }
    assert_eq!(c.notary.pin, hex::encode(d.identity(4).pin()));
    let signing = NotaryKey::load(d.hosts[4].join("notary.attestation.pem")).unwrap();
    assert_eq!(c.notary_key().unwrap(), signing.public_key());
    let fp = fingerprint::of(c);
    assert_eq!(d.printed_fingerprint, show(&fp));

    let running = start(&d, [c, c, c, c]).await;
    let client = Client::connect(c).await.unwrap();
    for v in 1..=10 {
        client.share("eth_balance", &v.to_string()).await.unwrap();
    }
    let mean = client
        .query(&QuerySpec::new("eth_balance", "mean"))
        .await
        .unwrap();
    assert_eq!((mean.count, mean.text.as_str()), (10, "5.50000000"));
    // Status: every role runs this file.
    let report = client.status().await.unwrap();
    assert_eq!(report.fingerprint, fp);
    assert_eq!(report.parties_reachable, [true; 3]);
    assert_eq!(report.party_fingerprints, [Some(fp); 3]);
    let version = env!("CARGO_PKG_VERSION").to_string();
    assert_eq!(report.version, version);
    assert_eq!(
        report.party_versions,
        std::array::from_fn(|_| Some(version.clone()))
    );
    // Ten contributions close the first epoch of eth_balance (epoch_size 10).
    assert_eq!(report.datasets[0], ("eth_balance".to_string(), 10));
    assert_eq!(report.closed_epochs[0], 1);
    let (text, ok) = mpcstats::roles::status::render(c, &fp, &report);
    assert!(ok, "{text}");
    assert!(
        text.contains("dataset eth_balance: 10 contributions, 1 closed epochs of 10"),
        "{text}"
    );
    assert_eq!(text.matches(&show(&fp)).count(), 5, "{text}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_whose_cluster_file_differs_refuses_the_coordinator() {
    let d = deploy();
    let c = &d.cluster;
    // Party 2's cluster file differs in one dataset limit.
    let mut other = c.clone();
    other.datasets[0].min_cohort += 1;
    other.validate().unwrap();
    let (fp, fp2) = (fingerprint::of(c), fingerprint::of(&other));
    assert_ne!(fp, fp2);
    let running = start(&d, [c, c, c, &other]).await;
    let client = Client::connect(c).await.unwrap();
    let err = format!(
        "{:#}",
        client
            .share("eth_balance", "1")
            .await
            .expect_err("party 2 refuses")
    );
    // The provider learns why: the coordinator named the check and both fingerprints.
    assert!(err.contains("cluster fingerprint check failed"), "{err}");
    assert!(
        err.contains(&format!("party 2 runs cluster {}", show(&fp2)))
            && err.contains(&format!("the coordinator runs {}", show(&fp))),
        "{err}"
    );
    let report = client.status().await.unwrap();
    assert_eq!(report.parties_reachable, [true, true, false]);
    assert_eq!(report.party_fingerprints, [Some(fp), Some(fp), Some(fp2)]);
    let (text, ok) = mpcstats::roles::status::render(c, &fp, &report);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "fingerprint {} (DIFFERS from this file)",
            show(&fp2)
        )),
        "{text}"
    );

    // Party 2 itself: a control request without the coordinator's fingerprint, or after a
    // different one, is refused naming the check; after the matching one it is served.
    let coord = d.identity(0);
    let ep = client_endpoint().unwrap();
    let conn = connect(&ep, other.parties[2].addr, other.party_pin(2), Some(&coord))
        .await
        .unwrap();
    let status = |conn: quinn::Connection| async move {
        let (_s, _r, reply): (_, _, ControlReply) = call(&conn, &Control::Status).await.unwrap();
        reply
    };
    let refused = |reply: ControlReply| match reply {
        ControlReply::Failed { reason } => {
            assert!(
                reason.contains("cluster fingerprint check failed"),
                "{reason}"
            );
            assert!(reason.contains(&show(&fp2)), "{reason}");
        }
        other => panic!("party 2 served a control request: {other:?}"),
    };
    refused(status(conn.clone()).await);
    for (shown, served) in [(fp, false), (fp2, true), (fp, false)] {
        let hello = Control::Hello { fingerprint: shown };
        let (_s, _r, reply): (_, _, ControlReply) = call(&conn, &hello).await.unwrap();
        assert!(
            matches!(reply, ControlReply::Hello { fingerprint, .. } if fingerprint == fp2),
            "{reply:?}"
        );
        let reply = status(conn.clone()).await;
        if served {
            assert!(matches!(reply, ControlReply::Status { .. }), "{reply:?}");
        } else {
            refused(reply);
        }
    }
    running.stop().await;
}
