//! Fuzz target `sse_decoder`: the SSE decoder: any split of the bytes gives the same events as one read; buffering stays bounded (see `props`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let seed = tokenrouter_fuzz_props::hash(data);
    if let Err(failure) = tokenrouter_fuzz_props::run("sse_decoder", data, seed) {
        panic!("sse_decoder: {failure}");
    }
});
