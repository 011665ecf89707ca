//! The Responses API (`/v1/responses`) on top of the chat machinery: translated answers are built
//! from the chat translators' OpenAI chunks and completions ([`answer`], [`stream`]), a native
//! OpenAI provider's are relayed as they come ([`native`]), and every stored response is kept for
//! `previous_response_id`, `GET` and `DELETE` ([`store`]).

pub mod answer;
pub mod native;
mod object;
pub mod store;
pub mod stream;
#[cfg(test)]
mod tests;

pub use object::new_id;
