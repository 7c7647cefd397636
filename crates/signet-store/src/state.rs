//! The task state machine. Drawn in `docs/state-machine.md`.

use std::fmt;
use std::str::FromStr;

use crate::error::StoreError;

/// Where a task is in its life. Exactly one at any time, across crashes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting for its `not_before` time.
    Scheduled,
    /// Ready to be claimed.
    Available,
    /// Leased by a worker.
    Running,
    /// Failed an attempt; waits for its retry time.
    Retryable,
    /// Finished successfully. Final.
    Succeeded,
    /// Will not be retried: a dead letter with a reason. Final until replayed.
    Dead,
    /// Cancelled before it ran to an end. Final.
    Cancelled,
}

impl TaskState {
    /// Every state, in life order.
    pub const ALL: [TaskState; 7] = [
        TaskState::Scheduled,
        TaskState::Available,
        TaskState::Running,
        TaskState::Retryable,
        TaskState::Succeeded,
        TaskState::Dead,
        TaskState::Cancelled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Scheduled => "scheduled",
            TaskState::Available => "available",
            TaskState::Running => "running",
            TaskState::Retryable => "retryable",
            TaskState::Succeeded => "succeeded",
            TaskState::Dead => "dead",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Whether no worker will touch the task again on its own.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Dead | TaskState::Cancelled
        )
    }

    /// Whether the task still waits to run (counts as pending for key retirement).
    pub fn is_pending(self) -> bool {
        !self.is_final()
    }

    /// Whether `self → next` is an edge of the state machine
    /// (`docs/state-machine.md`). `Running → Available` is a release at
    /// shutdown; `Scheduled → Available` is allowed but stores need not do
    /// it (a due scheduled task is claimable as it is). `Retryable →
    /// Available` is a retry now; `Succeeded → Available` a resend (of a
    /// message only).
    pub fn can_transition_to(self, next: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, next),
            (Scheduled, Available)
                | (Scheduled, Running)
                | (Scheduled, Cancelled)
                | (Scheduled, Dead)
                | (Available, Running)
                | (Available, Cancelled)
                | (Available, Dead)
                | (Running, Available)
                | (Running, Succeeded)
                | (Running, Retryable)
                | (Running, Dead)
                | (Retryable, Available)
                | (Retryable, Running)
                | (Retryable, Cancelled)
                | (Retryable, Dead)
                | (Dead, Available)
                | (Succeeded, Available)
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        TaskState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                StoreError::invalid(format!(
                    "unknown task state {s:?}; use one of scheduled, available, running, retryable, succeeded, dead, cancelled"
                ))
            })
    }
}

/// Why a task was dead-lettered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadReason {
    /// The signature was missing or did not verify (detail says which).
    SignatureInvalid,
    /// Every allowed attempt failed.
    MaxAttempts,
    /// It was past `expires_at` when a worker got to it.
    Expired,
    /// No handler is registered for its name.
    UnknownTask,
    /// Its args did not decode into the handler's type.
    PayloadInvalid,
    /// Its HTTP target was refused by the SSRF guard.
    TargetRefused,
}

impl DeadReason {
    /// Every reason.
    pub const ALL: [DeadReason; 6] = [
        DeadReason::SignatureInvalid,
        DeadReason::MaxAttempts,
        DeadReason::Expired,
        DeadReason::UnknownTask,
        DeadReason::PayloadInvalid,
        DeadReason::TargetRefused,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::SignatureInvalid => "signature-invalid",
            DeadReason::MaxAttempts => "max-attempts",
            DeadReason::Expired => "expired",
            DeadReason::UnknownTask => "unknown-task",
            DeadReason::PayloadInvalid => "payload-invalid",
            DeadReason::TargetRefused => "target-refused",
        }
    }
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeadReason {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        DeadReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                StoreError::invalid(format!(
                    "unknown dead-letter reason {s:?}; use one of signature-invalid, max-attempts, expired, unknown-task, payload-invalid, target-refused"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>().unwrap(), s);
        }
        for r in DeadReason::ALL {
            assert_eq!(r.as_str().parse::<DeadReason>().unwrap(), r);
        }
    }

    #[test]
    fn final_states_have_no_way_out_but_replay_and_resend() {
        for from in TaskState::ALL.into_iter().filter(|s| s.is_final()) {
            for to in TaskState::ALL {
                let allowed = matches!(from, TaskState::Dead | TaskState::Succeeded)
                    && to == TaskState::Available;
                assert_eq!(from.can_transition_to(to), allowed, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn every_store_operation_is_an_edge() {
        use TaskState::*;
        // (from, to) of enqueue-less operations in docs/state-machine.md.
        let edges = [
            (Scheduled, Running),
            (Available, Running),
            (Retryable, Running),
            (Running, Succeeded),
            (Running, Retryable),
            (Running, Dead),
            (Running, Available),
            (Scheduled, Cancelled),
            (Available, Cancelled),
            (Retryable, Cancelled),
            (Scheduled, Dead),
            (Available, Dead),
            (Retryable, Dead),
            (Dead, Available),
            (Retryable, Available),
            (Succeeded, Available),
        ];
        for (from, to) in edges {
            assert!(from.can_transition_to(to), "{from} -> {to}");
        }
        assert!(!Running.can_transition_to(Cancelled));
        assert!(!Succeeded.can_transition_to(Running));
    }
}
