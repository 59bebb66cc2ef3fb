//! Proof files and attestations: `Proof::decode` (raw, and behind a valid magic and
//! version), `Attestation::decode` (raw, and behind a valid magic and version) and signature
//! verification of an arbitrary body. Holds no decoder of its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcstats::oracle::attestation::{self, Attestation, SignedAttestation, MAGIC, VERSION};
use mpcstats::oracle::proof::{Proof, PROOF_MAGIC, PROOF_VERSION};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Proof::decode(data) {
        let again = p.encode().expect("a decoded proof encodes");
        assert_eq!(Proof::decode(&again).expect("its encoding decodes"), p);
    }
    let mut file = PROOF_MAGIC.to_vec();
    file.extend_from_slice(&PROOF_VERSION.to_be_bytes());
    file.extend_from_slice(data);
    let _ = Proof::decode(&file);

    let mut body = MAGIC.to_vec();
    body.push(VERSION);
    body.extend_from_slice(data);
    for bytes in [data, &body[..]] {
        if let Ok(a) = Attestation::decode(bytes) {
            assert_eq!(a.encode().expect("a decoded attestation encodes"), bytes);
        }
    }
    let split = data.len().min(64);
    let (sig, rest) = data.split_at(split);
    let public = [7u8; 32];
    assert!(attestation::verify(rest, sig, &public).is_err());
    let signed = SignedAttestation {
        body: rest.to_vec(),
        signature: sig.to_vec(),
    };
    assert!(signed.verify(&public).is_err());
});
