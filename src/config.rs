//! The public cluster file, `cluster.toml`: addresses and certificate pins of every server
//! role, and the dataset definitions. It holds nothing secret and is copied to every host and
//! laptop. Private keys live in separate files next to it (see `roles::init`).
//!
//! Every role finds the file by `--cluster`, then `MPCSTATS_CLUSTER`, then `./cluster.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::decimal;
use crate::net::pin::{pin_from_hex, Pin};

/// Bound on a dataset's maximum × 10^scale: values, their differences and comparison keys
/// (value · 2^ℓ + index) must stay inside the signed ranges of the comparison circuits.
pub const MAX_SCALED: u128 = 1 << 62;

/// Default smallest cohort a statistic may be computed over.
pub const DEFAULT_MIN_COHORT: u64 = 5;

/// Default contributions per release epoch (raised to `min_cohort` when that is larger).
pub const DEFAULT_EPOCH_SIZE: u64 = 10;

/// Default number of distinct probing queries (see [`Dataset::probing_per_epoch`]) per epoch.
pub const DEFAULT_PROBING_PER_EPOCH: u32 = 8;

/// Most contributions one epoch may cover.
pub const MAX_EPOCH_END: u64 = 1 << 40;

/// Most contributions per epoch.
pub const MAX_EPOCH_SIZE: u64 = 1 << 32;

/// Most releases a differentially private dataset may split its budget over.
pub const MAX_RELEASES: u32 = 10_000;

/// The whole cluster file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// What the parties' sessions protect against: "malicious" (the default: security with
    /// abort against one deviating party) or "semi-honest" (faster, for parties that are
    /// trusted to follow the protocol). Every party must run the same mode.
    #[serde(default)]
    pub security: crate::engine::Security,
    pub coordinator: Server,
    /// Exactly three parties, in id order.
    pub parties: Vec<Server>,
    pub notary: Server,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default, rename = "dataset")]
    pub datasets: Vec<Dataset>,
}

/// Where a server role listens and the SHA-256 pin of its certificate (hex).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub addr: SocketAddr,
    pub pin: String,
    /// The notary only: its Ed25519 attestation public key (hex, 32 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_key: Option<String>,
}

/// Admission limits enforced by the coordinator (and, for the ticket timeout, by the
/// parties). Fields added after the first release default, so older files still load.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests (share intents and queries) one client address may make per minute.
    pub requests_per_minute: u32,
    /// Of those, share intents (each asks for a ticket) one client address may make per
    /// minute. Submissions to the parties need a ticket each, so this bounds them too.
    #[serde(default = "default_intents_per_minute")]
    pub intents_per_minute: u32,
    /// Of those, queries one client address may make per minute.
    #[serde(default = "default_queries_per_minute")]
    pub queries_per_minute: u32,
    /// Contributions being checked at once; further intents wait in a queue.
    pub concurrent_contributions: u32,
    /// Queries computing at once; further queries wait in a queue.
    pub concurrent_queries: u32,
    /// Intents that may wait for a contribution slot; when the queue is full an intent is
    /// answered "busy, retry after N s" at once.
    #[serde(default = "default_contribution_queue")]
    pub contribution_queue: u32,
    /// Queries that may wait for a query slot; beyond that, "busy" at once.
    #[serde(default = "default_query_queue")]
    pub query_queue: u32,
    /// Seconds a provider has, from its ticket, to deliver its submission to all three
    /// parties. A ticket not used in time is aborted: its slot and the parties' pending
    /// state are freed. Checking a proven submission after it arrived is not counted.
    #[serde(default = "default_ticket_timeout")]
    pub ticket_timeout_secs: u32,
    /// Tickets one client address may hold at once (issued, not yet decided).
    #[serde(default = "default_tickets_per_address")]
    pub tickets_per_address: u32,
    /// Sessions one client address may have at the notary at once.
    #[serde(default = "default_notary_sessions_per_address")]
    pub notary_sessions_per_address: u32,
}

fn default_intents_per_minute() -> u32 {
    60
}
fn default_queries_per_minute() -> u32 {
    600
}
fn default_contribution_queue() -> u32 {
    256
}
fn default_query_queue() -> u32 {
    64
}
fn default_ticket_timeout() -> u32 {
    20
}
fn default_tickets_per_address() -> u32 {
    8
}
fn default_notary_sessions_per_address() -> u32 {
    4
}

/// Bounds on [`Limits`] checked at load time: a zero would stop admission altogether, and
/// a ticket timeout beyond this would let one client hold a slot for long.
pub const MAX_TICKET_TIMEOUT_SECS: u32 = 600;
/// Largest rate of any per-minute limit (a million a second: beyond it, no limit at all).
pub const MAX_PER_MINUTE: u32 = 60_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_minute: 600,
            intents_per_minute: default_intents_per_minute(),
            queries_per_minute: default_queries_per_minute(),
            concurrent_contributions: 64,
            concurrent_queries: 4,
            contribution_queue: default_contribution_queue(),
            query_queue: default_query_queue(),
            ticket_timeout_secs: default_ticket_timeout(),
            tickets_per_address: default_tickets_per_address(),
            notary_sessions_per_address: default_notary_sessions_per_address(),
        }
    }
}

impl Limits {
    /// The ticket timeout as a duration.
    pub fn ticket_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.ticket_timeout_secs))
    }

    fn validate(&self) -> Result<()> {
        let positive = [
            ("requests_per_minute", self.requests_per_minute),
            ("intents_per_minute", self.intents_per_minute),
            ("queries_per_minute", self.queries_per_minute),
            ("concurrent_contributions", self.concurrent_contributions),
            ("concurrent_queries", self.concurrent_queries),
            ("ticket_timeout_secs", self.ticket_timeout_secs),
            ("tickets_per_address", self.tickets_per_address),
            (
                "notary_sessions_per_address",
                self.notary_sessions_per_address,
            ),
        ];
        for (name, v) in positive {
            if v == 0 {
                bail!("[limits] {name} must be at least 1");
            }
        }
        for (name, v) in [
            ("requests_per_minute", self.requests_per_minute),
            ("intents_per_minute", self.intents_per_minute),
            ("queries_per_minute", self.queries_per_minute),
        ] {
            if v > MAX_PER_MINUTE {
                bail!("[limits] {name} must be at most {MAX_PER_MINUTE}");
            }
        }
        if self.ticket_timeout_secs > MAX_TICKET_TIMEOUT_SECS {
            bail!("[limits] ticket_timeout_secs must be at most {MAX_TICKET_TIMEOUT_SECS}");
        }
        Ok(())
    }
}

/// How contributions to a dataset must be proven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProofPolicy {
    /// Values are taken on the provider's word (for trying a cluster out).
    None,
    /// Values must come from an HTTPS response proven through the cluster's notary and
    /// matching the dataset's `template`.
    Tls,
}

/// One dataset: what a value means and the rules a contribution and a query must meet.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Decimal places of a value; values are stored as integers times 10^scale.
    pub scale: u32,
    /// Largest allowed value, as a decimal string in the dataset's units.
    pub max: String,
    /// Smallest number of contributions a statistic may be computed over.
    #[serde(default = "default_min_cohort")]
    pub min_cohort: u64,
    pub proof: ProofPolicy,
    /// Contributions per release epoch: queries run over the first k·epoch_size committed
    /// contributions only, for the largest such k [default: max(10, min_cohort)].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_size: Option<u64>,
    /// Without `privacy`: how many distinct probing queries (a filter, a histogram, a
    /// quantile or percentile) the parties answer per epoch.
    #[serde(default = "default_probing")]
    pub probing_per_epoch: u32,
    /// Differential privacy for every release of this dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<Privacy>,
    /// For proof policy `tls`: which server, request and JSON field the value comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<crate::oracle::template::Template>,
}

fn default_min_cohort() -> u64 {
    DEFAULT_MIN_COHORT
}

fn default_probing() -> u32 {
    DEFAULT_PROBING_PER_EPOCH
}

/// A dataset's differential-privacy budget: `epsilon` over its whole lifetime, spent in
/// equal parts by at most `releases` fresh releases (basic composition; every mechanism is
/// pure ε-DP, so δ = 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    /// Total ε, a decimal with at most 6 decimal places, e.g. "1.0".
    pub epsilon: String,
    /// Fresh releases the budget is split over; each spends epsilon / releases.
    pub releases: u32,
}

/// Decimal places ε may have.
pub const EPSILON_DIGITS: u32 = 6;

impl Privacy {
    /// ε × 10^6 as an integer.
    pub fn epsilon_micro(&self) -> Result<u128> {
        decimal::parse(&self.epsilon, EPSILON_DIGITS, decimal::Excess::Reject).with_context(|| {
            format!(
                "privacy epsilon {:?}: expected a decimal with at most {EPSILON_DIGITS} decimal places",
                self.epsilon
            )
        })
    }

    fn validate(&self) -> Result<()> {
        let e = self.epsilon_micro()?;
        if e == 0 || e > 100 * 10u128.pow(EPSILON_DIGITS) {
            bail!("privacy epsilon must be above 0 and at most 100");
        }
        if self.releases == 0 || self.releases > MAX_RELEASES {
            bail!("privacy releases must be between 1 and {MAX_RELEASES}");
        }
        Ok(())
    }
}

impl Dataset {
    /// Contributions per release epoch.
    pub fn epoch_size(&self) -> u64 {
        self.epoch_size
            .unwrap_or_else(|| DEFAULT_EPOCH_SIZE.max(self.min_cohort))
    }

    /// The number of contributions epoch `epoch` covers (1 ..= epoch·epoch_size), or why
    /// it is no release.
    pub fn epoch_end(&self, epoch: u64) -> Result<u64> {
        if epoch == 0 {
            bail!(
                "epoch 0 is not a release: the first epoch closes at {} contributions",
                self.epoch_size()
            );
        }
        epoch
            .checked_mul(self.epoch_size())
            .filter(|&end| end <= MAX_EPOCH_END)
            .with_context(|| {
                format!("epoch {epoch} is out of range: an epoch covers at most 2^40 contributions")
            })
    }

    /// The newest closed epoch over `count` committed contributions (0: none closed yet).
    pub fn closed_epoch(&self, count: u64) -> u64 {
        count / self.epoch_size()
    }

    /// The largest allowed value as a scaled integer.
    pub fn max_scaled(&self) -> Result<u128> {
        decimal::parse(&self.max, self.scale, decimal::Excess::Reject)
            .with_context(|| format!("dataset {}: bad max {:?}", self.name, self.max))
    }

    /// Parses a value given by a provider: exact decimal, at most `scale` decimals, in range.
    pub fn parse_value(&self, text: &str) -> Result<u128> {
        let v = decimal::parse(text, self.scale, decimal::Excess::Reject).with_context(|| {
            format!(
                "{text:?} is not a value of dataset {}: expected a non-negative decimal with at most {} decimal places",
                self.name, self.scale
            )
        })?;
        let max = self.max_scaled()?;
        if v > max {
            bail!(
                "{text} is above the maximum {} of dataset {}",
                self.max,
                self.name
            );
        }
        Ok(v)
    }
}

impl Cluster {
    /// Finds the cluster file: the flag, then `MPCSTATS_CLUSTER`, then `./cluster.toml`.
    pub fn locate(flag: Option<&Path>) -> PathBuf {
        if let Some(p) = flag {
            return p.to_path_buf();
        }
        if let Some(p) = std::env::var_os("MPCSTATS_CLUSTER") {
            return PathBuf::from(p);
        }
        PathBuf::from("cluster.toml")
    }

    /// Reads and validates a cluster file.
    pub fn load(path: &Path) -> Result<Cluster> {
        let text = crate::files::read_limited_text(path, crate::files::MAX_CLUSTER_FILE, "cluster file").with_context(|| {
            format!(
                "cannot read the cluster file {} (give --cluster FILE, set MPCSTATS_CLUSTER, or run `mpcstats init`)",
                path.display()
            )
        })?;
        let cluster: Cluster = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid cluster file", path.display()))?;
        cluster
            .validate()
            .with_context(|| format!("{} is not a valid cluster file", path.display()))?;
        Ok(cluster)
    }

    /// Writes the cluster file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Checks the invariants the roles rely on.
    pub fn validate(&self) -> Result<()> {
        if self.parties.len() != 3 {
            bail!("expected exactly 3 parties, found {}", self.parties.len());
        }
        self.limits.validate()?;
        for s in self.servers() {
            pin_from_hex(&s.pin).with_context(|| format!("bad pin for {}", s.addr))?;
        }
        let mut names = std::collections::HashSet::new();
        for d in &self.datasets {
            if !names.insert(d.name.as_str()) {
                bail!("dataset {} is defined twice", d.name);
            }
            if d.scale > 18 {
                bail!("dataset {}: scale {} is above 18", d.name, d.scale);
            }
            let max = d.max_scaled()?;
            if max == 0 || max >= MAX_SCALED {
                bail!(
                    "dataset {}: max × 10^scale must be between 1 and 2^62 − 1",
                    d.name
                );
            }
            if d.min_cohort < 1 {
                bail!("dataset {}: min_cohort must be at least 1", d.name);
            }
            if d.epoch_size() < d.min_cohort || d.epoch_size() > MAX_EPOCH_SIZE {
                bail!(
                    "dataset {}: epoch_size must be at least min_cohort ({}) and at most 2^32",
                    d.name,
                    d.min_cohort
                );
            }
            if let Some(p) = &d.privacy {
                p.validate()
                    .with_context(|| format!("dataset {}", d.name))?;
            }
            match (d.proof, &d.template) {
                (ProofPolicy::Tls, None) => {
                    bail!(
                        "dataset {}: proof policy \"tls\" needs a [dataset.template]",
                        d.name
                    )
                }
                (ProofPolicy::None, Some(_)) => {
                    bail!("dataset {}: a template needs proof policy \"tls\"", d.name)
                }
                (ProofPolicy::Tls, Some(t)) => t
                    .validate(d.scale)
                    .with_context(|| format!("dataset {}: bad template", d.name))?,
                (ProofPolicy::None, None) => {}
            }
        }
        if self.datasets.iter().any(|d| d.proof == ProofPolicy::Tls) {
            self.notary_key()?;
        }
        Ok(())
    }

    fn servers(&self) -> impl Iterator<Item = &Server> {
        std::iter::once(&self.coordinator)
            .chain(self.parties.iter())
            .chain(std::iter::once(&self.notary))
    }

    /// Looks up a dataset by name, with an error that lists the known ones.
    pub fn dataset(&self, name: &str) -> Result<&Dataset> {
        self.datasets
            .iter()
            .find(|d| d.name == name)
            .with_context(|| {
                let known: Vec<&str> = self.datasets.iter().map(|d| d.name.as_str()).collect();
                format!(
                    "unknown dataset {name:?}; this cluster has: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            })
    }

    pub fn coordinator_pin(&self) -> Pin {
        pin_from_hex(&self.coordinator.pin).expect("validated")
    }

    pub fn party_pin(&self, id: usize) -> Pin {
        pin_from_hex(&self.parties[id].pin).expect("validated")
    }

    /// The notary's attestation public key.
    pub fn notary_key(&self) -> Result<[u8; 32]> {
        let hex_key = self
            .notary
            .attestation_key
            .as_deref()
            .context("the cluster file has no notary attestation_key")?;
        let bytes = hex::decode(hex_key).context("notary attestation_key is not hex")?;
        bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("notary attestation_key must be 32 bytes"))
    }

    pub fn party_pins(&self) -> [Pin; 3] {
        [self.party_pin(0), self.party_pin(1), self.party_pin(2)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Security;

    const SERVERS: &str = r#"
[coordinator]
addr = "127.0.0.1:7000"
pin = "00"
[[parties]]
addr = "127.0.0.1:7100"
pin = "01"
[[parties]]
addr = "127.0.0.1:7101"
pin = "02"
[[parties]]
addr = "127.0.0.1:7102"
pin = "03"
[notary]
addr = "127.0.0.1:7200"
pin = "04"
"#;

    #[test]
    fn security_defaults_to_malicious_and_round_trips() {
        let c: Cluster = toml::from_str(SERVERS).unwrap();
        assert_eq!(c.security, Security::Malicious);
        let semi: Cluster =
            toml::from_str(&format!("security = \"semi-honest\"\n{SERVERS}")).unwrap();
        assert_eq!(semi.security, Security::SemiHonest);
        let text = toml::to_string(&semi).unwrap();
        assert!(text.starts_with("security = \"semi-honest\""), "{text}");
        let back: Cluster = toml::from_str(&text).unwrap();
        assert_eq!(back.security, Security::SemiHonest);
    }

    #[test]
    fn an_unknown_security_mode_is_refused_with_the_choices() {
        let err = toml::from_str::<Cluster>(&format!("security = \"paranoid\"\n{SERVERS}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("malicious") && err.contains("semi-honest"),
            "{err}"
        );
    }

    #[test]
    fn limits_of_older_files_default_and_bounds_are_enforced() {
        // A [limits] table written before the queue fields existed still loads.
        let old = format!(
            "{SERVERS}[limits]\nrequests_per_minute = 10\nconcurrent_contributions = 2\nconcurrent_queries = 1\n"
        );
        let c: Cluster = toml::from_str(&old).unwrap();
        assert_eq!(
            c.limits.ticket_timeout_secs,
            Limits::default().ticket_timeout_secs
        );
        assert_eq!(
            c.limits.contribution_queue,
            Limits::default().contribution_queue
        );
        assert!(c.limits.validate().is_ok());
        let at = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            l.validate()
        };
        assert!(at(|l| l.ticket_timeout_secs = MAX_TICKET_TIMEOUT_SECS).is_ok());
        let err = at(|l| l.ticket_timeout_secs = MAX_TICKET_TIMEOUT_SECS + 1).unwrap_err();
        assert!(err.to_string().contains("ticket_timeout_secs"), "{err}");
        for zero in [
            (|l: &mut Limits| l.ticket_timeout_secs = 0) as fn(&mut Limits),
            |l| l.tickets_per_address = 0,
            |l| l.concurrent_contributions = 0,
            |l| l.requests_per_minute = 0,
            |l| l.intents_per_minute = 0,
            |l| l.queries_per_minute = 0,
        ] {
            assert!(at(zero).unwrap_err().to_string().contains("at least 1"));
        }
        // The new rate keys default when absent, and every rate is capped.
        assert_eq!(
            c.limits.intents_per_minute,
            Limits::default().intents_per_minute
        );
        assert_eq!(
            c.limits.queries_per_minute,
            Limits::default().queries_per_minute
        );
        for (name, set) in [
            (
                "requests_per_minute",
                (|l: &mut Limits, v| l.requests_per_minute = v) as fn(&mut Limits, u32),
            ),
            ("intents_per_minute", |l, v| l.intents_per_minute = v),
            ("queries_per_minute", |l, v| l.queries_per_minute = v),
        ] {
            let mut l = Limits::default();
            set(&mut l, MAX_PER_MINUTE);
            assert!(l.validate().is_ok(), "{name}");
            set(&mut l, MAX_PER_MINUTE + 1);
            let err = l.validate().unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("at most"), "{err}");
        }
        // An empty queue is allowed: busy whenever every slot is taken.
        assert!(at(|l| l.contribution_queue = 0).is_ok());
    }
}
