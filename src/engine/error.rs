//! Errors of the MPC engine. Every variant says what was expected and what was found, so a
//! party operator can tell a faulty peer from a network failure.

use thiserror::Error;

/// An error raised by an engine operation. The session that raised it must be abandoned.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The transport failed (connection closed, stream reset, timeout).
    #[error("transport to the {peer} party failed: {reason}")]
    Transport { peer: &'static str, reason: String },
    /// A peer sent a message of the wrong size or shape.
    #[error("malformed message from the {peer} party: expected {expected}, found {found}")]
    Malformed {
        peer: &'static str,
        expected: String,
        found: String,
    },
    /// A malicious-security check failed: one of `suspects` deviated from the protocol (the
    /// checking party `by` cannot tell which). The session must abort.
    #[error("malicious-security check failed at party {by}: {check}; party {} or party {} deviated", suspects[0], suspects[1])]
    Verification {
        check: &'static str,
        by: usize,
        suspects: [usize; 2],
    },
    /// Inputs to an operation do not fit together (caller bug, never network input).
    #[error("invalid operation: {0}")]
    Invalid(String),
}

impl EngineError {
    /// A failed check at party `by` that cannot tell which of the other two deviated.
    pub fn verification(check: &'static str, by: usize) -> Self {
        let (p, n) = ((by + 2) % 3, (by + 1) % 3);
        EngineError::Verification {
            check,
            by,
            suspects: [p.min(n), p.max(n)],
        }
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;
