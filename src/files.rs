//! Bounded reads of local files: every file a role parses (cluster file, PEM identities and
//! root bundles, the notary's key, proof files) is read through [`read_limited`], which stops
//! one byte past the file's limit, so a huge or endless file cannot make us allocate it.
//!
//! Holds no parser and no file's content in an error: only its path and the limit.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Largest `cluster.toml` read: 1 MiB.
pub const MAX_CLUSTER_FILE: u64 = 1 << 20;
/// Largest PEM file with one certificate or one key read: 64 KiB.
pub const MAX_PEM_FILE: u64 = 64 << 10;
/// Largest PEM bundle of trust anchors read (`--extra-root`): 4 MiB.
pub const MAX_ROOTS_FILE: u64 = 4 << 20;

/// Reads at most `max` bytes of the file at `path` (`what` names it in errors); a longer file
/// is refused after reading `max + 1` bytes, the buffer growing only as bytes arrive.
pub fn read_limited(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!(
            "the {what} {} is larger than {max} bytes: refused",
            path.display()
        );
    }
    Ok(bytes)
}

/// As [`read_limited`], as UTF-8 text.
pub fn read_limited_text(path: &Path, max: u64, what: &str) -> Result<String> {
    let bytes = read_limited(path, max, what)?;
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the {what} {} is not UTF-8 text", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, [7u8; 100]).unwrap();
        assert_eq!(read_limited(&p, 100, "file").unwrap(), vec![7u8; 100]);
        let e = read_limited(&p, 99, "file").unwrap_err().to_string();
        assert!(e.contains("larger than 99 bytes"), "{e}");
        assert!(read_limited(&dir.path().join("missing"), 1, "file").is_err());
    }
}
