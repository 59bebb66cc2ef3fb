//! TLS record framing and what follows it: `tls13::parse_records`, `InnerPlaintext::parse`,
//! handshake message reassembly (`HandshakeReader`, fed in pieces), and the parties' split of
//! protected records (`oracle::mpc::gcm::parse`) for both TLS versions. Holds no decoder of
//! its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcstats::oracle::attestation::Direction;
use mpcstats::oracle::handshake::TlsVersion;
use mpcstats::oracle::mpc::gcm;
use mpcstats::oracle::tls13::{parse_records, HandshakeReader, InnerPlaintext, Record};

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = parse_records(data) {
        let again: Vec<u8> = records.iter().flat_map(Record::to_bytes).collect();
        assert_eq!(again, data);
    }
    let _ = InnerPlaintext::parse(0, data.to_vec());
    let mut reader = HandshakeReader::new();
    let mut taken = Vec::new();
    'pieces: for piece in data.chunks(7) {
        reader.push(piece);
        loop {
            match reader.next_message() {
                Ok(Some(m)) => taken.extend(m.to_bytes()),
                Ok(None) => break,
                Err(_) => break 'pieces,
            }
        }
    }
    assert!(data.starts_with(&taken));
    let entries: Vec<Vec<u8>> = data.split(|&b| b == 0xff).map(<[u8]>::to_vec).collect();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let _ = gcm::parse(version, Direction::ServerToClient, &[1; 12], &entries);
    }
});
