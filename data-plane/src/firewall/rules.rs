//! The firewall as a snapshot compiles it: every pattern of every rule in one `RegexSet` (one pass
//! over a text tells which patterns occur), each pattern also alone to find where, and every
//! keyword in one Aho-Corasick automaton; plus which rules apply to a key and model.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexSet, RegexSetBuilder};
use tokenrouter_proto::v1::FirewallRule;
use tokenrouter_proto::validate::FIREWALL_REGEX_SIZE_LIMIT;

use tokenrouter_proto::limits::glob_match;

use crate::firewall::detectors::{self, always_valid};

/// What a rule does when one of its patterns is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Block,
    Mask,
    Flag,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Mask => "mask",
            Action::Flag => "flag",
        }
    }
}

/// Which way the text flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// One compiled rule.
#[derive(Debug)]
pub struct RuleRt {
    pub name: String,
    pub action: Action,
    input: bool,
    output: bool,
    keys: Vec<String>,
    models: Vec<String>,
}

impl RuleRt {
    /// Whether the rule is scoped to include `key` (whatever the model).
    pub fn applies_to_key(&self, key: &str) -> bool {
        self.keys.is_empty() || self.keys.iter().any(|k| k == key)
    }

    /// Whether the rule looks at `direction` for this key and requested model.
    pub fn applies(&self, direction: Direction, key: &str, model: &str) -> bool {
        let way = match direction {
            Direction::Input => self.input,
            Direction::Output => self.output,
        };
        way && (self.keys.is_empty() || self.keys.iter().any(|k| k == key))
            && (self.models.is_empty() || self.models.iter().any(|g| glob_match(g, model)))
    }
}

/// What a pattern stands for.
#[derive(Debug)]
pub struct Pattern {
    pub rule: usize,
    /// The detector's name (`email`, ..., `regex`, `keyword`) and its placeholder label.
    pub detector: &'static str,
    pub label: &'static str,
    pub valid: fn(&str) -> bool,
}

/// Every rule of a snapshot, compiled.
#[derive(Debug, Default)]
pub struct Firewall {
    pub rules: Vec<RuleRt>,
    pub patterns: Vec<Pattern>,
    set: Option<RegexSet>,
    regexes: Vec<Regex>,
    /// The pattern each regex of the set stands for.
    regex_patterns: Vec<usize>,
    /// Every pattern and keyword as one lazy DFA run anchored, to tell whether a text could still
    /// grow into a match (what a stream must keep holding back).
    prefixes: Option<regex_automata::hybrid::dfa::DFA>,
    /// Warm DFA caches handed back by finished streams (a fresh one rebuilds its states).
    prefix_pool: std::sync::Mutex<Vec<PrefixCache>>,
    keywords: Option<(AhoCorasick, Vec<usize>)>,
}

/// Why the rules could not be compiled (validation catches these first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("firewall rule {rule}: {reason}")]
pub struct FirewallError {
    pub rule: String,
    pub reason: String,
}

/// One place a pattern matched: byte range in the text and the pattern's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
    pub pattern: usize,
}

impl Firewall {
    /// Compiles `rules` (disabled ones left out).
    pub fn compile(rules: &[FirewallRule]) -> Result<Firewall, FirewallError> {
        let mut fw = Firewall::default();
        let mut sources = Vec::new();
        let mut keyword_texts = Vec::new();
        let mut keyword_patterns = Vec::new();
        // Most specific first (a rule naming keys, then one naming models, then the rest), so the
        // rule an error or `firewall list` names first is the one written for that key.
        let mut ordered: Vec<&FirewallRule> = rules.iter().filter(|r| !r.disabled).collect();
        ordered.sort_by_key(|r| {
            let s =
                u8::from(!r.match_api_keys.is_empty()) * 2 + u8::from(!r.match_models.is_empty());
            (std::cmp::Reverse(s), r.name.clone())
        });
        for r in ordered {
            let bad = |reason: String| FirewallError {
                rule: r.name.clone(),
                reason,
            };
            let action = match r.action.as_str() {
                "block" => Action::Block,
                "mask" => Action::Mask,
                "flag" => Action::Flag,
                other => return Err(bad(format!("unknown action {other:?}"))),
            };
            let rule = fw.rules.len();
            fw.rules.push(RuleRt {
                name: r.name.clone(),
                action,
                input: r.direction != "output",
                output: r.direction != "input",
                keys: r.match_api_keys.clone(),
                models: r.match_models.clone(),
            });
            for name in &r.detectors {
                let d = detectors::by_name(name)
                    .ok_or_else(|| bad(format!("unknown detector {name:?}")))?;
                sources.push(d.pattern.to_string());
                fw.regex_patterns.push(fw.patterns.len());
                fw.patterns.push(Pattern {
                    rule,
                    detector: d.name,
                    label: d.label,
                    valid: d.valid,
                });
            }
            for pattern in &r.regexes {
                sources.push(pattern.clone());
                fw.regex_patterns.push(fw.patterns.len());
                fw.patterns.push(Pattern {
                    rule,
                    detector: "regex",
                    label: "REGEX",
                    valid: always_valid,
                });
            }
            for word in &r.keywords {
                keyword_texts.push(word.trim().to_string());
                keyword_patterns.push(fw.patterns.len());
                fw.patterns.push(Pattern {
                    rule,
                    detector: "keyword",
                    label: "KEYWORD",
                    valid: always_valid,
                });
            }
        }
        if !sources.is_empty() {
            let set = RegexSetBuilder::new(&sources)
                .size_limit(FIREWALL_REGEX_SIZE_LIMIT * 8)
                .build()
                .map_err(|e| FirewallError {
                    rule: "(all)".into(),
                    reason: e.to_string(),
                })?;
            fw.regexes = sources
                .iter()
                .map(|s| {
                    regex::RegexBuilder::new(s)
                        .size_limit(FIREWALL_REGEX_SIZE_LIMIT)
                        .build()
                })
                .collect::<Result<_, _>>()
                .map_err(|e| FirewallError {
                    rule: "(all)".into(),
                    reason: e.to_string(),
                })?;
            fw.set = Some(set);
        }
        let mut prefix_sources = sources.clone();
        prefix_sources.extend(
            keyword_texts
                .iter()
                .map(|k| format!(r"(?i)\b{}\b", regex::escape(k))),
        );
        if !prefix_sources.is_empty() {
            use regex_automata::hybrid::dfa;
            let built = dfa::Builder::new()
                .configure(
                    dfa::Config::new()
                        .unicode_word_boundary(true)
                        .cache_capacity(4 << 20),
                )
                .build_many(&prefix_sources);
            // Without it a stream holds everything until its choice finishes: safe, only slower.
            fw.prefixes = built.ok();
        }
        if !keyword_texts.is_empty() {
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(&keyword_texts)
                .map_err(|e| FirewallError {
                    rule: "(keywords)".into(),
                    reason: e.to_string(),
                })?;
            fw.keywords = Some((ac, keyword_patterns));
        }
        Ok(fw)
    }

    /// Every validated match in `text` of a pattern whose rule is in `active`, in text order,
    /// overlaps removed (the earlier, then the longer, wins).
    pub fn scan(&self, text: &str, active: &[bool]) -> Vec<Hit> {
        let mut hits = Vec::new();
        if let Some(set) = &self.set {
            for i in set.matches(text).into_iter() {
                let pattern = self.regex_patterns[i];
                let p = &self.patterns[pattern];
                if !active[p.rule] {
                    continue;
                }
                for m in self.regexes[i].find_iter(text) {
                    if let Some(end) = validated_end(m.as_str(), p.valid) {
                        hits.push(Hit {
                            start: m.start(),
                            end: m.start() + end,
                            pattern,
                        });
                    }
                }
            }
        }
        if let Some((ac, patterns)) = &self.keywords {
            for m in ac.find_iter(text) {
                let pattern = patterns[m.pattern().as_usize()];
                let bounded =
                    !is_word_byte(text.as_bytes().get(m.start().wrapping_sub(1)).copied())
                        && !is_word_byte(text.as_bytes().get(m.end()).copied());
                if bounded && active[self.patterns[pattern].rule] {
                    hits.push(Hit {
                        start: m.start(),
                        end: m.end(),
                        pattern,
                    });
                }
            }
        }
        // Earliest first, then longest; for the same text, the lowest pattern index: patterns
        // follow the rules most specific first, so the rule written for this key (or model)
        // is the one that acts on a match another, broader rule also makes.
        hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end), h.pattern));
        let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
        for h in hits {
            if kept.last().is_none_or(|k| h.start >= k.end) {
                kept.push(h);
            }
        }
        kept
    }
}

/// A lazy DFA's working memory, one per stream.
pub type PrefixCache = regex_automata::hybrid::dfa::Cache;

impl Firewall {
    /// Working memory for [`Firewall::earliest_live`] (a warm one from the pool when there is
    /// one); `None` when there are no patterns.
    pub fn prefix_cache(&self) -> Option<PrefixCache> {
        let dfa = self.prefixes.as_ref()?;
        let pooled = self.prefix_pool.lock().ok().and_then(|mut p| p.pop());
        Some(pooled.unwrap_or_else(|| dfa.create_cache()))
    }

    /// Hands a cache back for the next stream (at most 64 are kept).
    pub fn return_prefix_cache(&self, cache: PrefixCache) {
        if let Ok(mut pool) = self.prefix_pool.lock()
            && pool.len() < 64
        {
            pool.push(cache);
        }
    }

    /// The first byte offset of `text` from which some pattern could still match text that
    /// continues past its end (so it must not be sent yet); `text.len()` when none can. When the
    /// automaton cannot tell (it gave up on non-ASCII next to a word boundary, or there is
    /// none), the answer is conservative: 0.
    pub fn earliest_live(&self, cache: Option<&mut PrefixCache>, text: &str) -> usize {
        use regex_automata::{Anchored, Input};
        let (Some(dfa), Some(cache)) = (self.prefixes.as_ref(), cache) else {
            return 0;
        };
        let bytes = text.as_bytes();
        for p in (0..bytes.len()).filter(|&p| text.is_char_boundary(p)) {
            let input = Input::new(text).range(p..).anchored(Anchored::Yes);
            let Ok(mut sid) = dfa.start_state_forward(cache, &input) else {
                return p;
            };
            let mut alive = true;
            for &b in &bytes[p..] {
                match dfa.next_state(cache, sid, b) {
                    Ok(next) => sid = next,
                    Err(_) => return p,
                }
                if sid.is_dead() {
                    alive = false;
                    break;
                }
                if sid.is_quit() {
                    return p;
                }
            }
            if alive {
                return p;
            }
        }
        bytes.len()
    }
}

/// Where a validated match of `candidate` ends: the whole of it, or else the longest prefix that
/// ends before a space or hyphen and passes (a card followed by more digit groups, as in
/// `4111 1111 1111 1111 2`, is still that card).
fn validated_end(candidate: &str, valid: fn(&str) -> bool) -> Option<usize> {
    if valid(candidate) {
        return Some(candidate.len());
    }
    candidate
        .char_indices()
        .rev()
        .filter(|(_, c)| *c == ' ' || *c == '-')
        .map(|(i, _)| i)
        .find(|&i| valid(&candidate[..i]))
}

fn is_word_byte(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
}
