//! Property tests of the text decoders of file and request input (inventory in
//! `fuzz_decoders.rs`): `cluster.toml`, PEM identities, root bundles and notary keys, API key
//! files, and a consumer's statistic request as the coordinator, the parties and the REST API
//! parse it (statistic, parameter, edges, filter, decimals). Over arbitrary text and over
//! mutations of valid files: no panic, and whatever is accepted is accepted again after a
//! round trip through its own encoding.

mod fuzz_common;

use std::sync::OnceLock;

use fuzz_common::{apply_all, largest_allocation, mutations, Counting};
use mpcstats::config::{Cluster, Dataset};
use mpcstats::decimal::{self, Excess};
use mpcstats::net::Identity;
use mpcstats::oracle::attestation::NotaryKey;
use mpcstats::oracle::handshake::roots_from_pem;
use mpcstats::oracle::proof::{Proof, MAX_PROOF_LEN};
use mpcstats::roles::notary::load_roots;
use mpcstats::stats::{Filter, Query, Stat};
use mpcstats::wire::QuerySpec;
use proptest::prelude::*;

#[global_allocator]
static ALLOC: Counting = Counting;

/// The files `mpcstats init` writes: the cluster file and one identity's PEM files.
struct Deployment {
    cluster: String,
    cert: String,
    key: String,
}

fn deployment() -> &'static Deployment {
    static D: OnceLock<Deployment> = OnceLock::new();
    D.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpcstats"))
            .arg("init")
            .arg("--out")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "init failed");
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        Deployment {
            cluster: read("cluster.toml"),
            cert: read("party0.cert.pem"),
            key: read("party0.key.pem"),
        }
    })
}

/// Parses and validates like `Cluster::load`.
fn cluster(text: &str) -> Option<Cluster> {
    let c: Cluster = toml::from_str(text).ok()?;
    c.validate().ok()?;
    Some(c)
}

fn datasets() -> Vec<Dataset> {
    let c = cluster(&deployment().cluster).unwrap();
    c.datasets
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_files_init_writes_parse() {
    let d = deployment();
    assert!(cluster(&d.cluster).is_some());
    assert!(Identity::from_pem(&d.cert, &d.key).is_ok());
    assert!(roots_from_pem(d.cert.as_bytes()).is_ok());
}

/// A 16 GiB file (sparse) given as any file a role reads is refused after reading at most
/// its limit. Before the limits, `Cluster::load`, `Identity::load`, `NotaryKey::load`,
/// `Proof::read` and `load_roots` read the whole file into memory.
#[test]
fn oversized_files_are_refused_without_reading_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge");
    std::fs::File::create(&p)
        .unwrap()
        .set_len(16 << 30)
        .unwrap();
    let small = 4 << 20;
    let (r, largest) = largest_allocation(|| Cluster::load(&p).map(|_| ()));
    assert!(format!("{:#}", r.unwrap_err()).contains("larger than"));
    assert!(largest <= small, "{largest} B");
    let (r, largest) = largest_allocation(|| Identity::load(&p, &p).map(|_| ()));
    assert!(format!("{:#}", r.unwrap_err()).contains("larger than"));
    assert!(largest <= small, "{largest} B");
    let (r, largest) = largest_allocation(|| NotaryKey::load(&p).map(|_| ()));
    assert!(format!("{:#}", r.unwrap_err()).contains("larger than"));
    assert!(largest <= small, "{largest} B");
    let (r, largest) = largest_allocation(|| load_roots(std::slice::from_ref(&p)).map(|_| ()));
    assert!(format!("{:#}", r.unwrap_err()).contains("larger than"));
    assert!(largest <= 2 * small, "{largest} B");
    let (r, largest) = largest_allocation(|| Proof::read(&p).map(|_| ()));
    assert!(format!("{:#}", r.unwrap_err()).contains("larger than"));
    assert!(largest <= 2 * (MAX_PROOF_LEN + 16), "{largest} B");
}

/// Found by the `query_request` fuzz target: `decimal::format` computed 10^scale unchecked,
/// which overflows from scale 39 on (a panic with overflow checks, a wrong string without).
#[test]
fn decimal_format_beyond_u128_scales() {
    assert_eq!(decimal::format(5, 40), format!("0.{}5", "0".repeat(39)));
    assert_eq!(
        decimal::format(u128::MAX, 39),
        format!("0.{:039}", u128::MAX)
    );
    assert_eq!(decimal::format(12, 38), format!("0.{}12", "0".repeat(36)));
    for scale in [38, 39, 40, 60] {
        let text = decimal::format(123, scale);
        assert_eq!(decimal::parse(&text, scale, Excess::Reject).unwrap(), 123);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// `cluster.toml`, mutated: refused, or a cluster whose own encoding is accepted again
    /// and encodes to the same text.
    #[test]
    fn cluster_files(ms in mutations(), junk in ".{0,200}") {
        let d = deployment();
        for text in [lossy(&apply_all(d.cluster.as_bytes(), &ms)), junk] {
            if let Some(c) = cluster(&text) {
                let again = toml::to_string_pretty(&c).unwrap();
                let c2 = cluster(&again).expect("a valid cluster's encoding is valid");
                prop_assert_eq!(toml::to_string_pretty(&c2).unwrap(), again);
            }
        }
    }

    /// PEM identities, root bundles and notary keys, mutated or arbitrary: no panic; the
    /// genuine pair loads.
    #[test]
    fn pem_files(ms in mutations(), junk in prop::collection::vec(any::<u8>(), 0..200)) {
        let d = deployment();
        let cert = lossy(&apply_all(d.cert.as_bytes(), &ms));
        let key = lossy(&apply_all(d.key.as_bytes(), &ms));
        if let Ok(id) = Identity::from_pem(&cert, &d.key) {
            prop_assert!(Identity::from_pem(&id.cert_pem(), &id.key_pem()).is_ok());
        }
        let _ = Identity::from_pem(&d.cert, &key);
        let _ = Identity::from_pem(&lossy(&junk), &lossy(&junk));
        let _ = roots_from_pem(cert.as_bytes());
        let _ = roots_from_pem(&junk);
        let _ = NotaryKey::from_bytes(key.as_bytes());
        let _ = NotaryKey::from_bytes(&junk);
        let bundle = [&b"-----BEGIN PRIVATE KEY-----\n"[..], &junk].concat();
        prop_assert!(NotaryKey::from_bytes(&bundle).is_err() || junk.windows(5).any(|w| w == b"-----"));
    }

    /// The API key file's TOML: accepted only with both fields.
    #[test]
    fn api_key_toml(text in ".{0,80}", ms in mutations()) {
        let valid = "api_key = \"mbx-key-0\"\napi_secret = \"mbx-secret-0\"\n";
        for t in [text, lossy(&apply_all(valid.as_bytes(), &ms))] {
            let _ = toml::from_str::<toml::Table>(&t);
        }
    }

    /// Decimal text: whatever parses formats back to text that parses to the same integer.
    #[test]
    fn decimals(text in "[0-9.]{0,45}", raw in ".{0,20}", scale in 0u32..64) {
        for t in [&text, &raw] {
            for excess in [Excess::Reject, Excess::Truncate] {
                if let Ok(v) = decimal::parse(t, scale, excess) {
                    prop_assert_eq!(decimal::parse(&decimal::format(v, scale), scale, Excess::Reject).unwrap(), v);
                }
            }
        }
        for ds in datasets() {
            if let Ok(v) = ds.parse_value(&text) {
                prop_assert!(v <= ds.max_scaled().unwrap());
            }
        }
    }

    /// A consumer's request, as the coordinator, every party and the REST API parse it.
    #[test]
    fn statistic_requests(
        stat in prop_oneof![Just("mean".to_string()), Just("histogram".to_string()), Just("quantile".to_string()), Just("lorenz".to_string()), ".{0,12}"],
        param in proptest::option::of(prop_oneof!["[0-9.]{0,8}", ".{0,8}"]),
        edges in prop::collection::vec(prop_oneof!["[0-9.]{0,8}", ".{0,8}"], 0..70),
        filter in proptest::option::of(prop_oneof!["(<|<=|>|>=|==|!=) ?[0-9.]{0,8}", ".{0,12}"]),
        population in any::<bool>(),
    ) {
        let _ = Stat::parse(&stat);
        for ds in datasets() {
            let spec = QuerySpec {
                dataset: ds.name.clone(),
                stat: stat.clone(),
                population,
                param: param.clone(),
                edges: edges.clone(),
                filter: filter.clone(),
            };
            if Query::new(&spec, &ds).is_ok() {
                prop_assert!(Stat::parse(&stat).is_ok());
                prop_assert!(edges.len() <= 64);
            }
            if let Some(f) = &filter {
                if let Ok(parsed) = Filter::parse(f, &ds) {
                    let again = Filter::parse(&parsed.describe(ds.scale), &ds).unwrap();
                    prop_assert_eq!(again.describe(ds.scale), parsed.describe(ds.scale));
                }
            }
        }
    }
}
