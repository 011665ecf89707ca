//! A snapshot compiled for serving: providers (protocol, URL, credentials, timeouts, client),
//! keys, the rules index, the model catalog and the fallback policies. Built once per snapshot, so
//! the hot path never parses configuration.

pub mod catalog;
pub mod keys;
pub mod modes;
pub mod policy;
pub mod provider;
pub mod runtime;

pub use runtime::{CompilePolicy, Runtime};
