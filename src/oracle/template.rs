//! Dataset templates for proven contributions: which HTTPS server, which request and which
//! JSON field a value must come from, and the checks of a response against them.
//!
//! The prover uses a template to find where the value and the account id lie in its
//! response; the parties use it to check the request line and Host, and the response they
//! open with the value left out.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Where a proven value comes from. Lives in `cluster.toml` as `[dataset.template]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The HTTPS server's DNS name, checked against its certificate by the notary.
    pub server_name: String,
    /// The request method; only `GET` is supported.
    #[serde(default = "default_method")]
    pub method: String,
    /// The request path, e.g. `/api/v1/account`.
    pub path: String,
    /// Where the value is in the JSON body: dot-separated keys, and `name[key=value]` to pick
    /// the element of array `name` whose string field `key` equals `value`, e.g.
    /// `balances[asset=ETH].free`. The value must be a JSON string holding a decimal.
    pub value: String,
    /// Where the account id is (a JSON string), e.g. `account`.
    pub account: String,
    /// Decimal places the server writes: the value text has exactly this many after its
    /// point (none and no point when 0). Digits beyond the dataset's scale are truncated.
    pub decimals: u32,
    /// The oldest attestation accepted, in seconds.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
}

fn default_method() -> String {
    "GET".into()
}

fn default_max_age() -> u64 {
    3600
}

impl Template {
    /// Checks the template itself against its dataset's scale.
    pub fn validate(&self, scale: u32) -> Result<()> {
        if self.method != "GET" {
            bail!("method {:?}: only GET is supported", self.method);
        }
        if !self.path.starts_with('/') || self.path.bytes().any(|c| c <= b' ' || c >= 0x7f) {
            bail!(
                "path {:?} must start with / and hold no spaces or control characters",
                self.path
            );
        }
        if self.server_name.is_empty()
            || !self
                .server_name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        {
            bail!(
                "server_name {:?} must be a lower-case DNS name",
                self.server_name
            );
        }
        if self.decimals < scale {
            bail!(
                "the server writes {} decimals, fewer than the dataset's scale {scale}",
                self.decimals
            );
        }
        if self.decimals > 30 {
            bail!("decimals {} is above 30", self.decimals);
        }
        Ok(())
    }

    /// The start of every accepted request: request line and Host header, opened to the
    /// parties. Everything after it (the other headers, with credentials) stays hidden.
    pub fn request_prefix(&self) -> Vec<u8> {
        format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.path, self.server_name
        )
        .into_bytes()
    }
}
