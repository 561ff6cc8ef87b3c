//! Settings of the flow brain.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::compile::Flow;
use super::issue::Issue;
use super::{FlowBrain, builtin};

/// How the flow brain is set up for calls whose agent has no flow of its
/// own (the demo agent behind `sip:agent@…`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// A JSON file holding a flow definition (`{"start": …, "nodes":
    /// […]}`, the format of `docs/flows.md`); the built-in demo flow when
    /// unset.
    pub file: Option<PathBuf>,
}

/// Why the configured flow could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FlowConfigError {
    /// The file could not be read.
    #[error("flow file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("flow file {path}: not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The flow has problems.
    #[error("flow file {path}: {}", join(.issues))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem, with its path.
        issues: Vec<Issue>,
    },
}

fn join(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(Issue::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl FlowConfig {
    /// The brain these settings describe. Reads the file (at start-up,
    /// not on a call's path).
    pub fn load(&self) -> Result<FlowBrain, FlowConfigError> {
        let Some(path) = &self.file else {
            return Ok(FlowBrain::demo());
        };
        let text = std::fs::read_to_string(path).map_err(|source| FlowConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| FlowConfigError::Json {
                path: path.clone(),
                source,
            })?;
        Flow::from_json(&value)
            .map(FlowBrain::new)
            .map_err(|issues| FlowConfigError::Invalid {
                path: path.clone(),
                issues,
            })
    }

    /// The built-in flows by name (`demo`, `receptionist`, `alert`) as
    /// JSON, for `docs/` and for operators to start from.
    pub fn builtin_json(name: &str) -> Option<serde_json::Value> {
        let def = match name {
            "demo" => builtin::demo(),
            "receptionist" => builtin::receptionist("Example Corp", None),
            "alert" => builtin::alert("The example service is down."),
            _ => return None,
        };
        serde_json::to_value(def).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_demo_or_a_file_and_explains_failures() {
        let demo = FlowConfig::default().load().unwrap();
        assert_eq!(demo.flow().definition(), &builtin::demo());

        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("flow.json");
        std::fs::write(
            &good,
            FlowConfig::builtin_json("alert").unwrap().to_string(),
        )
        .unwrap();
        let brain = FlowConfig {
            file: Some(good.clone()),
        }
        .load()
        .unwrap();
        assert_eq!(
            brain.flow().definition(),
            &builtin::alert("The example service is down.")
        );

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"start": "x", "nodes": []}"#).unwrap();
        let e = FlowConfig { file: Some(bad) }.load().unwrap_err();
        assert!(
            e.to_string()
                .contains("flow.nodes: must have at least one node"),
            "{e}"
        );

        let missing = FlowConfig {
            file: Some(dir.path().join("none.json")),
        };
        assert!(matches!(missing.load(), Err(FlowConfigError::Read { .. })));
        std::fs::write(&good, "{").unwrap();
        let e = FlowConfig { file: Some(good) }.load().unwrap_err();
        assert!(matches!(e, FlowConfigError::Json { .. }));
        assert!(FlowConfig::builtin_json("nope").is_none());
    }
}
