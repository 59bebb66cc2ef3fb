//! Request signing for providers: the API key file and the signing schemes a template may
//! name (`template::SigningScheme`).
//!
//! `hmac-sha256-query` is Binance's: the prover sets `timestamp` to the current unix time in
//! milliseconds and appends `signature` = lower-case hex HMAC-SHA256(secret, the query
//! string before it). The key goes into the template's `key_header`.
//!
//! Must not hold: any way for the secret or the key to reach an error, a log line or a
//! `Debug` output. The key file must be private (mode 0600 or stricter).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// An API key and its secret, from a private key file.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Sent in the template's key header (hidden from everyone but the server).
    pub api_key: String,
    /// Signs requests; never sent.
    pub api_secret: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

/// Largest key file read.
const MAX_KEY_FILE: u64 = 64 << 10;

/// Reads a small file that holds credentials (`what` names it in errors): it must be private
/// (no access for group or others) and at most 64 KiB.
pub fn read_private(path: &Path, what: &str) -> Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("reading the {what} {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the {what} {} has mode {mode:o}: others may read it; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    if meta.len() > MAX_KEY_FILE {
        bail!(
            "the {what} {} is larger than {MAX_KEY_FILE} bytes",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))
}

impl ApiKey {
    /// Reads a key file: TOML with `api_key = "…"` and `api_secret = "…"`, mode 0600.
    pub fn load(path: &Path) -> Result<ApiKey> {
        let text = read_private(path, "key file")?;
        // The parser's own message would quote the file: say only what is expected.
        let key: ApiKey = toml::from_str(&text).map_err(|_| {
            anyhow::anyhow!(
                "the key file {} must hold exactly two lines: api_key = \"…\" and api_secret = \"…\"",
                path.display()
            )
        })?;
        let printable = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_graphic());
        if !printable(&key.api_key) || !printable(&key.api_secret) {
            bail!(
                "the key file {}: api_key and api_secret must be non-empty printable ASCII without spaces",
                path.display()
            );
        }
        Ok(key)
    }
}

/// `hmac-sha256-query`: the lower-case hex HMAC-SHA256 of `query` under `secret`.
pub fn hmac_sha256_hex(secret: &str, query: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(ring::hmac::sign(&key, query.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_documented_signature() {
        // The example of Binance's API documentation (SIGNED endpoint security).
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        let query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert_eq!(
            hmac_sha256_hex(secret, query),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
    }

    #[test]
    fn key_files_must_be_private_and_well_formed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.toml");
        std::fs::write(
            &path,
            "api_key = \"k-123\"\napi_secret = \"s3cr3t-value\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = format!("{:#}", ApiKey::load(&path).unwrap_err());
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let key = ApiKey::load(&path).unwrap();
        assert_eq!(key.api_key, "k-123");
        assert_eq!(format!("{key:?}"), "ApiKey(..)");
        // A malformed file: the error quotes none of it.
        std::fs::write(&path, "api_key = \"k-123\"\napi_secret = s3cr3t-value\n").unwrap();
        let e = format!("{:#}", ApiKey::load(&path).unwrap_err());
        assert!(!e.contains("s3cr3t") && !e.contains("k-123"), "{e}");
        std::fs::write(&path, "api_key = \"k 1\"\napi_secret = \"x\"\n").unwrap();
        assert!(ApiKey::load(&path).is_err());
        assert!(ApiKey::load(&dir.path().join("none")).is_err());
        // Header files with bearer tokens are held to the same rule.
        let headers = dir.path().join("token.txt");
        std::fs::write(&headers, "Authorization: Bearer t0k3n\n").unwrap();
        std::fs::set_permissions(&headers, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = format!("{:#}", read_private(&headers, "header file").unwrap_err());
        assert!(
            e.contains("the header file") && e.contains("chmod 600") && !e.contains("t0k3n"),
            "{e}"
        );
        std::fs::set_permissions(&headers, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_private(&headers, "header file")
            .unwrap()
            .contains("t0k3n"));
    }
}
