//! The two handlers this worker runs.
//!
//! - `text.stats` — args `{"text": "…"}`; result `{"bytes", "chars", "words",
//!   "lines", "sha256"}`.
//! - `files.write` — args `{"path": "relative/name", "content": "…"}`; writes
//!   the file under the outbox directory (atomically: a temporary file renamed
//!   into place, so a retry after a crash rewrites the same content) and
//!   returns `{"path", "bytes", "sha256"}`. A path that is absolute, empty or
//!   climbs out of the outbox (`..`) is rejected: the task is dead-lettered at
//!   once with `payload-invalid` (retrying cannot make it valid). I/O errors
//!   are ordinary failed attempts and are retried with backoff.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use signet_runtime::{HandlerError, HandlerResult, TaskContext};

/// Args of `text.stats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TextStats {
    text: String,
}

/// Counts bytes, characters, words and lines, and hashes the text.
pub(crate) async fn text_stats(_ctx: TaskContext, args: TextStats) -> HandlerResult {
    let text = args.text;
    Ok(Some(serde_json::json!({
        "bytes": text.len(),
        "chars": text.chars().count(),
        "words": text.split_whitespace().count(),
        "lines": text.lines().count(),
        "sha256": hex::encode(Sha256::digest(text.as_bytes())),
    })))
}

/// Args of `files.write`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilesWrite {
    path: String,
    content: String,
}

/// Writes files under one directory.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    root: Arc<PathBuf>,
}

impl Outbox {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root: Arc::new(root),
        }
    }

    /// The handler for `files.write`.
    pub(crate) async fn write(&self, ctx: TaskContext, args: FilesWrite) -> HandlerResult {
        let relative = safe_relative(&args.path)?;
        let target = self.root.join(&relative);
        let content = args.content;
        let bytes = content.len();
        let digest = hex::encode(Sha256::digest(content.as_bytes()));
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        // Unique per attempt, so two workers racing after a lease loss never
        // share a temporary file.
        let tmp = target.with_file_name(format!(
            ".{}.{}-{}.tmp",
            target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            ctx.id(),
            ctx.attempt()
        ));
        tokio::fs::write(&tmp, content.as_bytes()).await?;
        tokio::fs::rename(&tmp, &target).await?;
        Ok(Some(serde_json::json!({
            "path": relative.to_string_lossy(),
            "bytes": bytes,
            "sha256": digest,
        })))
    }
}

/// The path as a relative path of plain components, or a rejection saying why.
fn safe_relative(path: &str) -> Result<PathBuf, HandlerError> {
    if path.is_empty() {
        return Err(HandlerError::reject(
            "path is empty; give a relative file name",
        ));
    }
    if path.contains('\0') {
        return Err(HandlerError::reject("path contains a NUL byte"));
    }
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(HandlerError::reject(format!(
                    "path {path:?} contains \"..\"; files may only be written inside the outbox"
                )))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(HandlerError::reject(format!(
                    "path {path:?} is absolute; give a path relative to the outbox"
                )))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(HandlerError::reject(format!(
            "path {path:?} names no file; give a relative file name"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_accepted_and_escapes_rejected() {
        assert_eq!(safe_relative("a/b.txt").unwrap(), PathBuf::from("a/b.txt"));
        assert_eq!(safe_relative("./a.txt").unwrap(), PathBuf::from("a.txt"));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", ".", "a\0b"] {
            let e = safe_relative(bad).unwrap_err();
            assert!(e.is_reject(), "{bad:?}");
        }
    }
}
