//! Arbitrary bytes as the SPDY/3.1 byte stream a peer sends: decoding gives frames or a typed
//! error (never a panic, a hang or unbounded buffering), fed in pieces of the size the first
//! byte picks, and every frame decoded survives an encode/decode round trip. The same entry
//! point runs on random and mutated input in peapod-streams' unit tests.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| peapod_streams::spdy::fuzzing::decode_frames(data));
