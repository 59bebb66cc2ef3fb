//! Files every role reads: `cluster.toml` (parsed and validated as `Cluster::load` does),
//! PEM identities (`Identity::from_pem`, input split at the first NUL into certificate and
//! key), root bundles (`roots_from_pem`), the notary's key (`NotaryKey::from_bytes`) and the
//! provider's API key file. Holds no decoder of its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcstats::config::Cluster;
use mpcstats::net::Identity;
use mpcstats::oracle::attestation::NotaryKey;
use mpcstats::oracle::handshake::roots_from_pem;
use mpcstats::oracle::signing::ApiKey;

fuzz_target!(|data: &[u8]| {
    let _ = roots_from_pem(data);
    let _ = NotaryKey::from_bytes(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = toml::from_str::<Cluster>(text) {
        if c.validate().is_ok() {
            let again = toml::to_string_pretty(&c).expect("a cluster encodes");
            let c2: Cluster = toml::from_str(&again).expect("its encoding parses");
            c2.validate().expect("and validates");
        }
    }
    let _ = toml::from_str::<ApiKey>(text);
    let (cert, key) = text.split_once('\0').unwrap_or((text, text));
    let _ = Identity::from_pem(cert, key);
});
