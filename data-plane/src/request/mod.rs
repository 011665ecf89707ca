//! The incoming request: its body on a clock, parsing and validating a chat completions body,
//! what it needs of a model, and the ids requests and answers are given.

pub mod body;
mod caps;
pub mod ids;
mod parse;

pub use caps::Caps;
pub use parse::{ChatRequest, Features, parse, present};
