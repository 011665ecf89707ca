//! Fuzz target `stream_filter`: a card planted in arbitrary streamed text never gets past the firewall's stream filter (see `props`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let seed = tokenrouter_fuzz_props::hash(data);
    if let Err(failure) = tokenrouter_fuzz_props::run("stream_filter", data, seed) {
        panic!("stream_filter: {failure}");
    }
});
