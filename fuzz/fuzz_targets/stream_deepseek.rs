//! Fuzz target `stream_deepseek`: the deepseek stream translator behind the relay's decoder: no panic, every chunk a JSON object, split invariance (see `props`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let seed = tokenrouter_fuzz_props::hash(data);
    if let Err(failure) = tokenrouter_fuzz_props::run("stream_deepseek", data, seed) {
        panic!("stream_deepseek: {failure}");
    }
});
