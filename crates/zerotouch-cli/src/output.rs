//! Results for people or for scripts: text lines, or one JSON object per command.

use std::time::Instant as Clock;

use serde_json::Value;

/// Where a command's results go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    started: Option<Clock>,
}

impl Output {
    /// Text output, or JSON with `json`.
    pub fn new(json: bool) -> Self {
        Output {
            json,
            started: None,
        }
    }

    /// The same, with each step stamped with the time since now.
    pub fn timed(self) -> Self {
        Output {
            started: Some(Clock::now()),
            ..self
        }
    }

    /// Whether the output is JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A command's result: `text` for people, `value` for scripts.
    pub fn result(&self, text: &str, value: Value) {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }

    /// A step as it happens (text output only; JSON output prints only results).
    pub fn step(&self, who: &str, what: &str) {
        if self.json {
            return;
        }
        match self.started {
            Some(t) => println!(
                "{:>8.1} ms  {who:<10} {what}",
                t.elapsed().as_secs_f64() * 1e3
            ),
            None => println!("{who:<10} {what}"),
        }
    }
}
