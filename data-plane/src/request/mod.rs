//! The incoming request: parsing and validating a chat completions body, and the ids requests
//! and answers are given.

pub mod ids;
mod parse;

pub use parse::{ChatRequest, Features, parse};
