//! Fuzz target `response_anthropic`: the anthropic answer translation and error mapper: no panic, JSON out (see `props`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let seed = tokenrouter_fuzz_props::hash(data);
    if let Err(failure) = tokenrouter_fuzz_props::run("response_anthropic", data, seed) {
        panic!("response_anthropic: {failure}");
    }
});
