//! Frames and every wire message: `read_frame` under each limit the roles use (the MPC
//! session header and acknowledgement, control frames, MPC frames), then `decode` of every
//! message type of `wire` and of the notary's control stream. Holds no decoder of its own.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mpcstats::net::frame::{decode, read_frame, MAX_CONTROL_FRAME};
use mpcstats::net::MAX_MPC_FRAME;
use mpcstats::roles::notary::{FromNotary, ToNotary};
use mpcstats::wire::{
    Control, ControlReply, FromCoordinator, FromParty, QuerySpec, StatusReport, ToCoordinator,
    ToParty,
};

fn decode_all(bytes: &[u8]) {
    let _ = decode::<ToCoordinator>(bytes);
    let _ = decode::<FromCoordinator>(bytes);
    let _ = decode::<Control>(bytes);
    let _ = decode::<ControlReply>(bytes);
    let _ = decode::<ToParty>(bytes);
    let _ = decode::<FromParty>(bytes);
    let _ = decode::<StatusReport>(bytes);
    let _ = decode::<QuerySpec>(bytes);
    let _ = decode::<ToNotary>(bytes);
    let _ = decode::<FromNotary>(bytes);
}

fuzz_target!(|data: &[u8]| {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    });
    decode_all(data);
    for max in [1, 16, MAX_CONTROL_FRAME, MAX_MPC_FRAME] {
        let mut stream = data;
        if let Ok(frame) = rt.block_on(read_frame(&mut stream, max)) {
            assert!(frame.len() <= max);
            assert_eq!(frame[..], data[4..4 + frame.len()]);
            decode_all(&frame);
        }
    }
});
