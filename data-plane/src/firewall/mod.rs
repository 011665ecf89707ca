//! The firewall: rules from the snapshot (`rules`) with the built-in detectors (`detectors`),
//! applied to what a client sends before a provider sees it (`input`) and to what a model answers
//! before the client sees it. Blocks name the rule and detector, never the matched text; masks
//! replace each match with a placeholder numbered stably within the request; every action is
//! recorded (rule, detector, action, direction, count) without the text.

pub mod detectors;
pub mod input;
pub mod output;
pub mod rules;
pub mod stream;

use std::collections::HashMap;

pub use rules::{Action, Direction, Firewall};

/// One rule's action on one detector's matches, for the usage record, metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub rule: String,
    pub detector: &'static str,
    pub action: Action,
    pub direction: Direction,
    pub count: u32,
}

/// A rule that refuses what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub rule: String,
    pub detector: &'static str,
    pub direction: Direction,
}

/// What the firewall did to one request: its events, and the stable numbering of masks.
#[derive(Debug, Default)]
pub struct Audit {
    pub events: Vec<Event>,
    numbers: HashMap<(&'static str, String), usize>,
    next: HashMap<&'static str, usize>,
}

impl Audit {
    fn count(&mut self, rule: &str, detector: &'static str, action: Action, direction: Direction) {
        match self
            .events
            .iter_mut()
            .find(|e| e.rule == rule && e.detector == detector && e.direction == direction)
        {
            Some(e) => e.count += 1,
            None => self.events.push(Event {
                rule: rule.to_string(),
                detector,
                action,
                direction,
                count: 1,
            }),
        }
    }

    /// `[LABEL_n]`, the same `n` for the same text within the request.
    fn placeholder(&mut self, label: &'static str, text: &str) -> String {
        let n = match self.numbers.get(&(label, text.to_string())) {
            Some(n) => *n,
            None => {
                let next = self.next.entry(label).or_insert(0);
                *next += 1;
                self.numbers.insert((label, text.to_string()), *next);
                *next
            }
        };
        format!("[{label}_{n}]")
    }

    /// The record's summary: `rule:detector:action:direction:count`, comma-separated.
    pub fn summary(&self) -> String {
        self.events
            .iter()
            .map(|e| {
                format!(
                    "{}:{}:{}:{}:{}",
                    e.rule,
                    e.detector,
                    e.action.as_str(),
                    e.direction.as_str(),
                    e.count
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The rules that look at `direction` for this key and model, as a mask over `fw.rules`; `None`
/// when none does (then nothing is scanned).
pub fn active(fw: &Firewall, direction: Direction, key: &str, model: &str) -> Option<Vec<bool>> {
    let mask: Vec<bool> = fw
        .rules
        .iter()
        .map(|r| r.applies(direction, key, model))
        .collect();
    mask.iter().any(|a| *a).then_some(mask)
}

/// Applies the active rules to one text: records every match, masks what mask rules found, and
/// stops at the first block.
pub fn filter_text(
    fw: &Firewall,
    active: &[bool],
    direction: Direction,
    text: &mut String,
    audit: &mut Audit,
) -> Result<(), Blocked> {
    let hits = fw.scan(text, active);
    apply_hits(fw, direction, text, &hits, audit)
}

/// [`filter_text`] with the matches already found (`hits`, in text order, all within `text`).
pub fn apply_hits(
    fw: &Firewall,
    direction: Direction,
    text: &mut String,
    hits: &[rules::Hit],
    audit: &mut Audit,
) -> Result<(), Blocked> {
    if hits.is_empty() {
        return Ok(());
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut masked = false;
    for h in hits {
        let pattern = &fw.patterns[h.pattern];
        let rule = &fw.rules[pattern.rule];
        audit.count(&rule.name, pattern.detector, rule.action, direction);
        match rule.action {
            Action::Block => {
                return Err(Blocked {
                    rule: rule.name.clone(),
                    detector: pattern.detector,
                    direction,
                });
            }
            Action::Mask => {
                out.push_str(&text[at..h.start]);
                out.push_str(&audit.placeholder(pattern.label, &text[h.start..h.end]));
                at = h.end;
                masked = true;
            }
            Action::Flag => {}
        }
    }
    if masked {
        out.push_str(&text[at..]);
        *text = out;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
