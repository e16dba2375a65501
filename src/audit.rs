//! The audit trail: an [`AuditSink`] receives one [`AuditEvent`] per
//! operation, successful or not.
//!
//! An event has exactly the fields below, so no plaintext, key material,
//! data key, ciphertext or import token can reach a sink: there is nowhere
//! to put one.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::{Error, Result};

/// One operation, as an audit sink sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When the operation started, by the service's clock (unix seconds).
    pub time: i64,
    /// The action's wire name (`Encrypt`), or for Rust-only operations a
    /// name in the same style (`EnvelopeEncrypt`).
    pub action: &'static str,
    /// The key the operation acted on when the response names it; otherwise
    /// the `KeyId` parameter as given (an alias, say), or `None`.
    pub key_id: Option<String>,
    /// The key version, when the response names one.
    pub key_version_id: Option<String>,
    /// `Success`, or the error's wire code (`Rejected.Disabled`).
    pub outcome: &'static str,
    /// On the wire, the response's `RequestId`; for Rust API calls a fresh
    /// id in the same form.
    pub request_id: String,
}

/// Receives every operation of a [`Kms`](crate::Kms) once a sink is set with
/// [`Kms::set_audit_sink`](crate::Kms::set_audit_sink).
///
/// `record` runs on the caller's thread after the operation, outside every
/// lock of the service; a slow sink slows the caller.
pub trait AuditSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: &AuditEvent);
}

/// An [`AuditSink`] that writes each event as one JSON line (fields as in
/// [`AuditEvent`], PascalCase, `Time` as `YYYY-MM-DDThh:mm:ssZ`) to a file or
/// any writer.
///
/// ```
/// use std::sync::Arc;
/// let kms = localkms::Kms::in_memory()?;
/// let sink = Arc::new(localkms::JsonLinesAudit::new(Vec::new()));
/// kms.set_audit_sink(sink.clone());
/// kms.create_key(&Default::default())?;
/// let text = String::from_utf8(sink.with_writer(|w| w.clone())).unwrap();
/// assert!(text.starts_with(r#"{"Time":"#) && text.contains(r#""Action":"CreateKey""#));
/// # Ok::<(), localkms::Error>(())
/// ```
pub struct JsonLinesAudit<W> {
    writer: Mutex<W>,
    failures: AtomicU64,
}

impl<W> fmt::Debug for JsonLinesAudit<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesAudit")
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl JsonLinesAudit<std::fs::File> {
    /// Appends to the file at `path`, creating it if needed.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be opened.
    pub fn file(path: impl AsRef<Path>) -> Result<Self> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(Self::new)
            .map_err(Error::from)
    }
}

impl<W: Write + Send> JsonLinesAudit<W> {
    /// Writes to `writer`, one `write_all` per line.
    pub fn new(writer: W) -> Self {
        Self {
            writer: Mutex::new(writer),
            failures: AtomicU64::new(0),
        }
    }

    /// How many events could not be written.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Runs `f` on the writer (to read a `Vec<u8>` back, or flush).
    pub fn with_writer<T>(&self, f: impl FnOnce(&mut W) -> T) -> T {
        let mut w = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut w)
    }
}

/// The JSON line of one event (without the newline).
pub(crate) fn json_line(event: &AuditEvent) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Line<'a> {
        time: String,
        action: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        key_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        key_version_id: Option<&'a str>,
        outcome: &'a str,
        request_id: &'a str,
    }
    serde_json::to_string(&Line {
        time: crate::clock::format_timestamp(event.time),
        action: event.action,
        key_id: event.key_id.as_deref(),
        key_version_id: event.key_version_id.as_deref(),
        outcome: event.outcome,
        request_id: &event.request_id,
    })
    .unwrap_or_default()
}

impl<W: Write + Send> AuditSink for JsonLinesAudit<W> {
    fn record(&self, event: &AuditEvent) {
        let mut line = json_line(event);
        line.push('\n');
        let ok = match self.writer.lock() {
            Ok(mut w) => w
                .write_all(line.as_bytes())
                .and_then(|()| w.flush())
                .is_ok(),
            Err(_) => false,
        };
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An [`AuditSink`] that keeps the events in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryAudit {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAudit {
    /// An empty trail.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .map(|e| e.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Removes and returns the events so far.
    pub fn take(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, event: &AuditEvent) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event.clone());
        }
    }
}

thread_local! {
    /// The wire request being answered on this thread, if any.
    static REQUEST_ID: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` as the handling of the wire request `request_id`: audit events
/// of the operation it calls carry that id.
#[cfg_attr(not(feature = "wire"), allow(dead_code))] // used by the wire layer only
pub(crate) fn with_request_id<T>(request_id: &str, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let old = self.0.take();
            REQUEST_ID.with(|r| *r.borrow_mut() = old);
        }
    }
    let old = REQUEST_ID.with(|r| r.borrow_mut().replace(request_id.to_owned()));
    let _restore = Restore(old);
    f()
}

/// The id of the wire request being answered on this thread, or a fresh one.
pub(crate) fn current_request_id() -> String {
    REQUEST_ID
        .with(|r| r.borrow().clone())
        .unwrap_or_else(request_id)
}

/// A fresh `RequestId`: an uppercase UUID v4, as the service sends.
///
/// Request ids need to be unique, not secret, so they come from a keyed
/// hash (SipHash under a per-process random key) of a counter rather than a
/// system call per response.
pub(crate) fn request_id() -> String {
    use std::hash::BuildHasher as _;
    static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let key = KEY.get_or_init(std::hash::RandomState::new);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&key.hash_one((n, 0u8)).to_le_bytes());
    bytes[8..].copy_from_slice(&key.hash_one((n, 1u8)).to_le_bytes());
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_upper(&mut buf)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_only_the_event_fields() {
        let e = AuditEvent {
            time: 1_700_000_000,
            action: "Encrypt",
            key_id: Some("k".into()),
            key_version_id: None,
            outcome: "Success",
            request_id: "R".into(),
        };
        assert_eq!(
            json_line(&e),
            r#"{"Time":"2023-11-14T22:13:20Z","Action":"Encrypt","KeyId":"k","Outcome":"Success","RequestId":"R"}"#
        );
    }

    #[test]
    fn failed_writes_are_counted() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = JsonLinesAudit::new(Broken);
        let e = AuditEvent {
            time: 0,
            action: "Decrypt",
            key_id: None,
            key_version_id: None,
            outcome: "InvalidParameter",
            request_id: "R".into(),
        };
        sink.record(&e);
        sink.record(&e);
        assert_eq!(sink.failures(), 2);
    }
}
