//! Fuzz target `request_build`: request::parse then providers::build for every protocol: no panic, JSON out (see `props`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let seed = tokenrouter_fuzz_props::hash(data);
    if let Err(failure) = tokenrouter_fuzz_props::run("request_build", data, seed) {
        panic!("request_build: {failure}");
    }
});
