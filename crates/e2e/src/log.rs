//! Lines a child process writes to stderr, and its JSON log events.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};

/// Lines a child wrote to stderr, collected by a reader thread.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub(crate) fn follow(&self, stream: impl std::io::Read + Send + 'static) {
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// The fields of the first JSON log line whose message is `msg`: the
    /// server flattens them into the line, the client nests them under
    /// `fields`.
    pub fn find_json(&self, msg: &str) -> Option<Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| match v.get("fields") {
                Some(fields) if fields.is_object() => fields.clone(),
                _ => v,
            })
            .find(|v| v["message"] == msg)
    }
}
