//! What the kit found wrong: every problem with where it is, collected rather than thrown, so
//! one failing run shows them all.

use std::fmt;

/// Which of the kit's checks a problem comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// The kit was set up inconsistently with the connector (a schema that does not
    /// compile, a mapping for a stream the connector lacks).
    Setup,
    /// The connection config does not satisfy the connector's config form.
    Config,
    /// `test_connection` failed or reported missing permissions.
    Connection,
    /// A read failed, did not end, or returned a page the kit cannot apply.
    Read,
    /// A record does not satisfy its stream's `schema`.
    RecordSchema,
    /// A record cannot be mapped onto its stream's unified model.
    Unified,
    /// The records a read led to differ from the expected ones.
    Expected,
    /// An action sample did not do what it was expected to.
    Action,
    /// A webhook sample did not ask for what it was expected to.
    Webhook,
    /// Something the connector declares has no sample to exercise it.
    Coverage,
}

impl ProblemKind {
    fn label(self) -> &'static str {
        match self {
            ProblemKind::Setup => "setup",
            ProblemKind::Config => "config",
            ProblemKind::Connection => "connection check",
            ProblemKind::Read => "read",
            ProblemKind::RecordSchema => "record schema",
            ProblemKind::Unified => "unified model",
            ProblemKind::Expected => "expected records",
            ProblemKind::Action => "action",
            ProblemKind::Webhook => "webhook",
            ProblemKind::Coverage => "coverage",
        }
    }
}

/// Which read of a stream a problem was seen in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadKind {
    /// From no checkpoint to the end.
    Full,
    /// From the full read's final checkpoint to the end.
    Incremental,
}

/// One thing wrong. Messages never carry record values, only keys and pointers: the same
/// kit may one day run against recorded provider data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub stream: Option<String>,
    pub read: Option<ReadKind>,
    /// The record's primary key.
    pub record: Option<String>,
    /// JSON pointer into the record (or the mapped unified record) where it is wrong.
    pub pointer: Option<String>,
    pub message: String,
}

impl Problem {
    pub(super) fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            stream: None,
            read: None,
            record: None,
            pointer: None,
            message: message.into(),
        }
    }

    pub(super) fn in_stream(mut self, stream: &str, read: Option<ReadKind>) -> Self {
        self.stream = Some(stream.to_owned());
        self.read = read;
        self
    }

    pub(super) fn at_record(mut self, key: &str, pointer: Option<String>) -> Self {
        self.record = Some(key.to_owned());
        self.pointer = pointer;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind.label())?;
        if let Some(stream) = &self.stream {
            write!(f, ", stream `{stream}`")?;
        }
        match self.read {
            Some(ReadKind::Full) => write!(f, " (full read)")?,
            Some(ReadKind::Incremental) => write!(f, " (incremental read)")?,
            None => {}
        }
        if let Some(record) = &self.record {
            write!(f, ", record `{record}`")?;
        }
        if let Some(pointer) = &self.pointer {
            let pointer = if pointer.is_empty() { "/" } else { pointer };
            write!(f, " at {pointer}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A connector that failed conformance, with every problem found.
#[derive(Clone, thiserror::Error)]
pub struct ConformanceFailure {
    pub connector: String,
    pub problems: Vec<Problem>,
}

/// How many problems the message lists; all of them stay in `problems`.
const LISTED: usize = 50;

impl fmt::Display for ConformanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connector `{}` failed conformance with {} problem(s):",
            self.connector,
            self.problems.len()
        )?;
        for problem in self.problems.iter().take(LISTED) {
            write!(f, "\n  - {problem}")?;
        }
        if self.problems.len() > LISTED {
            write!(f, "\n  … and {} more", self.problems.len() - LISTED)?;
        }
        Ok(())
    }
}

// The readable list, so that a test's `unwrap()` prints every problem.
impl fmt::Debug for ConformanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
