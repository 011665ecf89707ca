//! The JSON-mode text gate of an Anthropic stream: with JSON mode answered through a forced tool,
//! the content must be the tool's input alone. Text the model writes before the tool is held
//! back (bounded) until the stream shows what follows: the JSON tool drops it, a client tool call
//! or the end of the answer releases it. Text after the JSON tool is dropped in every stream, as
//! in a whole answer, whether or not the request was known to be in JSON mode.

use std::borrow::Cow;

/// Most text held back; beyond it the text goes out as it comes (and could then precede JSON).
pub(in crate::providers) const MAX_HELD_TEXT: usize = 1024 * 1024;

/// See the module documentation.
#[derive(Debug, Default)]
pub(in crate::providers) struct JsonGate {
    /// Text held back while it may still precede the JSON tool (`None`: not holding).
    held: Option<String>,
    /// The JSON tool started: any further text is not part of the answer.
    json_seen: bool,
}

impl JsonGate {
    /// A gate that holds text back (`json_only`) or lets it through until a JSON tool shows.
    pub fn new(json_only: bool) -> Self {
        JsonGate {
            held: json_only.then(String::new),
            json_seen: false,
        }
    }

    /// What of `text` goes out now: nothing while held or after the JSON tool; the held text
    /// with it once the bound is passed.
    pub fn admit<'a>(&mut self, text: &'a str) -> Option<Cow<'a, str>> {
        if self.json_seen {
            return None;
        }
        match self.held.as_mut() {
            None => Some(Cow::Borrowed(text)),
            Some(held) if held.len() + text.len() <= MAX_HELD_TEXT => {
                held.push_str(text);
                None
            }
            Some(_) => {
                let mut all = self.held.take().unwrap_or_default();
                all.push_str(text);
                Some(Cow::Owned(all))
            }
        }
    }

    /// The JSON tool started: the held text is dropped.
    pub fn json_started(&mut self) {
        self.held = None;
        self.json_seen = true;
    }

    /// A client tool call or the end of the answer: the held text, to send now.
    pub fn release(&mut self) -> Option<String> {
        self.held.take().filter(|h| !h.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_drops_or_releases() {
        let mut g = JsonGate::new(true);
        assert_eq!(g.admit("Here: "), None);
        g.json_started();
        assert_eq!(g.admit("after"), None);
        assert_eq!(g.release(), None);

        let mut g = JsonGate::new(true);
        assert_eq!(g.admit("a"), None);
        assert_eq!(g.admit("b"), None);
        assert_eq!(g.release().as_deref(), Some("ab"));
        assert_eq!(g.admit("c").as_deref(), Some("c"), "released: text flows");

        let mut g = JsonGate::new(false);
        assert_eq!(g.admit("x").as_deref(), Some("x"));
        g.json_started();
        assert_eq!(g.admit("y"), None);
    }

    #[test]
    fn holding_is_bounded() {
        let mut g = JsonGate::new(true);
        let big = "x".repeat(MAX_HELD_TEXT);
        assert_eq!(g.admit(&big), None);
        assert_eq!(g.admit("!").map(|t| t.len()), Some(MAX_HELD_TEXT + 1));
        assert_eq!(g.admit("more").as_deref(), Some("more"));
    }
}
