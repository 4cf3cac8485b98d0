//! The one-line summary each scenario prints and the JSON it can write.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;

/// Everything one run produced, written as JSON with `--json`.
#[derive(Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub tool_version: &'static str,
    /// Start of the run, seconds since the Unix epoch.
    pub started_at_unix: u64,
    pub addr: String,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub parameters: Value,
    pub results: Value,
    pub summary: String,
}

impl Report {
    /// Prints the summary line to stdout and writes the JSON file if asked.
    pub fn publish(&self, json_path: Option<&Path>) -> anyhow::Result<()> {
        println!("{}", self.summary);
        let Some(path) = json_path else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("failed to write {}", path.display()))
    }
}

/// Returns the current time in seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
