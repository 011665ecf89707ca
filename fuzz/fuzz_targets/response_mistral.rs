//! Fuzz target `response_mistral`: the mistral answer translation and error mapper: no panic, JSON out (see `props`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let seed = tokenrouter_fuzz_props::hash(data);
    if let Err(failure) = tokenrouter_fuzz_props::run("response_mistral", data, seed) {
        panic!("response_mistral: {failure}");
    }
});
