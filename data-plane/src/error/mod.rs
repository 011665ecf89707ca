//! The two error families, leaves every other module may use: what a client is told
//! ([`ApiError`], always OpenAI's envelope) and how one upstream attempt failed ([`UpstreamError`]).

mod api;
mod upstream;

pub use api::ApiError;
pub use upstream::{UpstreamError, retry_after};
