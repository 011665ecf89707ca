//! What a model supports and what a request needs, as one bit set: the catalog declares it per
//! model, request parsing derives it from the parameters used, routing compares the two.

/// What a model supports, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps(pub u16);

impl Caps {
    pub const TOOLS: Caps = Caps(1);
    pub const JSON_MODE: Caps = Caps(1 << 1);
    pub const JSON_SCHEMA: Caps = Caps(1 << 2);
    pub const VISION: Caps = Caps(1 << 3);
    pub const LOGIT_BIAS: Caps = Caps(1 << 4);
    pub const SEED: Caps = Caps(1 << 5);
    pub const REASONING: Caps = Caps(1 << 6);
    pub const LOGPROBS: Caps = Caps(1 << 7);
    pub const N: Caps = Caps(1 << 8);
    /// An embeddings model: served by `/v1/embeddings` only, and never a chat candidate.
    pub const EMBEDDINGS: Caps = Caps(1 << 9);
    /// An embeddings model that can shorten its vectors (`dimensions`).
    pub const DIMENSIONS: Caps = Caps(1 << 10);
    /// Names, in bit order, as the proto spells them.
    pub const NAMES: [(&'static str, Caps); 11] = [
        ("tools", Caps::TOOLS),
        ("json_mode", Caps::JSON_MODE),
        ("json_schema", Caps::JSON_SCHEMA),
        ("vision", Caps::VISION),
        ("logit_bias", Caps::LOGIT_BIAS),
        ("seed", Caps::SEED),
        ("reasoning", Caps::REASONING),
        ("logprobs", Caps::LOGPROBS),
        ("n", Caps::N),
        ("embeddings", Caps::EMBEDDINGS),
        ("dimensions", Caps::DIMENSIONS),
    ];

    pub fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }

    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    /// The capabilities in `needed` that `self` lacks.
    pub fn missing(self, needed: Caps) -> Caps {
        Caps(needed.0 & !self.0)
    }

    pub fn names(self) -> Vec<&'static str> {
        Caps::NAMES
            .iter()
            .filter(|(_, c)| self.contains(*c))
            .map(|(n, _)| *n)
            .collect()
    }

    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Caps {
        names.into_iter().fold(Caps::default(), |acc, n| {
            match Caps::NAMES.iter().find(|(name, _)| *name == n) {
                Some((_, c)) => acc.union(*c),
                None => acc,
            }
        })
    }
}
