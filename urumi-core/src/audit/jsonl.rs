//! [`JsonLinesSink`]: append each event as one JSON line to a file.
//!
//! ```text
//!  record(e) ──serde_json──▶ "{…}\n" ──lock──▶ append to file ──▶ flush
//! ```
//!
//! The file is opened in append mode, so several processes may share it (each line is
//! one `write`); it is never truncated or rewritten. Write-only: queries answer
//! `unsupported` (read the file with `jq`).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::AuditSink;
use crate::error::{Error, Result};
use crate::store::AuditEvent;

/// Appends events as JSON lines (the `AuditEvent` JSON of the API) to a file.
#[derive(Debug)]
pub struct JsonLinesSink {
    path: PathBuf,
    file: Mutex<tokio::fs::File>,
}

impl JsonLinesSink {
    /// Opens (creating if missing) `path` for appending.
    /// Errors: `unavailable` if the file cannot be opened.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|e| unavailable(&path, &e))?;
        Ok(JsonLinesSink {
            path,
            file: Mutex::new(file),
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn unavailable(path: &Path, e: &std::io::Error) -> Error {
    Error::Unavailable {
        message: format!("audit file {}: {e}", path.display()),
    }
}

#[async_trait]
impl AuditSink for JsonLinesSink {
    async fn record(&self, event: &AuditEvent) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| Error::internal(format!("serializing an audit event: {e}")))?;
        line.push(b'\n');
        let mut file = self.file.lock().await;
        file.write_all(&line)
            .await
            .map_err(|e| unavailable(&self.path, &e))?;
        file.flush().await.map_err(|e| unavailable(&self.path, &e))
    }

    fn name(&self) -> &'static str {
        "jsonl"
    }
}
