//! The incoming request: its body on a clock, parsing and validating a chat completions or
//! embeddings body,
//! what it needs of a model, and the ids requests and answers are given.

pub mod body;
mod caps;
pub mod embeddings;
pub mod ids;
mod parse;
pub mod responses;

pub use caps::Caps;
pub use parse::{ChatRequest, Features, Operation, parse, present};
