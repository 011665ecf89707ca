//! Routing: turns the requested model into a plan of attempts (rules, pins, kind prefixes, bare
//! names, the `auto:*` modes) among the models providers really serve.

pub mod auto;
pub mod availability;
pub mod plan;
pub mod resolve;
