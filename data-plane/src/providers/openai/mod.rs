//! The OpenAI protocol: a passthrough that keeps every field the provider returns, plus the quirks
//! of Mistral, DeepSeek and other compatible servers. Usage is always requested upstream and only
//! shown to the client when it asked for it. OpenAI and compatible servers get the client's body
//! as it is; Mistral and DeepSeek get one built from their allow-lists (see [`dialect`]).

pub mod dialect;
mod error;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub use error::map_error;
pub use request::build_request;
pub use response::{pass_through, translate_response};
pub use stream::OpenAiStream;
