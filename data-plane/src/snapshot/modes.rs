//! The `auto:*` routing modes as the data plane knows them, parsed once when a snapshot (a rule
//! naming a mode) or a request (`model: "auto:..."`) names one.

/// An `auto:*` routing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutoMode {
    Fast,
    Balance,
    Cost,
    Quality,
}

impl AutoMode {
    /// Every mode, in the order listings show them.
    pub const ALL: [AutoMode; 4] = [
        AutoMode::Fast,
        AutoMode::Balance,
        AutoMode::Cost,
        AutoMode::Quality,
    ];

    /// From its name (`auto:fast`, ...).
    pub fn parse(name: &str) -> Option<AutoMode> {
        AutoMode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Its name, as clients and rules write it.
    pub fn name(self) -> &'static str {
        match self {
            AutoMode::Fast => "auto:fast",
            AutoMode::Balance => "auto:balance",
            AutoMode::Cost => "auto:cost",
            AutoMode::Quality => "auto:quality",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Protocol;
    use crate::snapshot::policy::RetryClass;
    use tokenrouter_proto::validate::{AUTO_MODES, RETRY_CLASSES, SUPPORTED_KINDS};

    /// The data plane's enums and the names the control plane's validation accepts are the same
    /// sets: a name added on one side only fails here, not in production.
    #[test]
    fn enums_match_the_names_validation_accepts() {
        let modes: Vec<&str> = AutoMode::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(modes, AUTO_MODES);
        for name in AUTO_MODES {
            assert_eq!(AutoMode::parse(name).map(AutoMode::name), Some(*name));
        }
        let classes: Vec<&str> = RetryClass::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(classes, RETRY_CLASSES);
        for name in RETRY_CLASSES {
            assert_eq!(RetryClass::parse(name).map(RetryClass::name), Some(*name));
        }
        for kind in SUPPORTED_KINDS {
            assert!(Protocol::from_kind(kind).is_some(), "{kind}");
        }
        let spoken = Protocol::ALL
            .iter()
            .filter(|p| {
                SUPPORTED_KINDS
                    .iter()
                    .any(|k| Protocol::from_kind(k) == Some(**p))
            })
            .count();
        assert_eq!(spoken, Protocol::ALL.len(), "a protocol no kind names");
        assert_eq!(Protocol::from_kind("openai-typo"), None);
        assert_eq!(AutoMode::parse("auto:slow"), None);
        assert_eq!(RetryClass::parse("4xx"), None);
    }
}
