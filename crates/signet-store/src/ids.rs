//! Prefixed ids: `task_…`, `key_…` (API keys), and so on.
//!
//! The part after the prefix is a UUIDv7 in lower-case hex without dashes, so
//! ids sort by creation time and are unique across nodes without a sequence.

use std::fmt;
use std::str::FromStr;

use crate::error::StoreError;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix, with its underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// Parses an id, checking the prefix and the characters after it.
            pub fn parse(s: &str) -> Result<Self, StoreError> {
                let rest = s.strip_prefix($prefix).ok_or_else(|| {
                    StoreError::invalid(format!(
                        "id {s:?} does not start with {:?}", $prefix
                    ))
                })?;
                if rest.is_empty()
                    || rest.len() > 64
                    || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(StoreError::invalid(format!(
                        "id {s:?} is not a valid {} id", stringify!($name)
                    )));
                }
                Ok(Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = StoreError;
            fn try_from(s: String) -> Result<Self, StoreError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

prefixed_id!(
    /// A task id, `task_…`.
    TaskId,
    "task_"
);
prefixed_id!(
    /// An API key id, `key_…` (the id, not the secret `sk_…`).
    ApiKeyId,
    "key_"
);
prefixed_id!(
    /// A message id, `msg_…`. Messages are stored as tasks on the reserved
    /// queue [`MESSAGE_QUEUE`](crate::MESSAGE_QUEUE), so a message id is
    /// also a valid task row id.
    MessageId,
    "msg_"
);
prefixed_id!(
    /// A target (registered receiver) id, `tgt_…`.
    TargetId,
    "tgt_"
);
prefixed_id!(
    /// A cron schedule id, `sch_…`.
    ScheduleId,
    "sch_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let a = TaskId::generate();
        let b = TaskId::generate();
        assert!(a < b);
        assert_eq!(TaskId::parse(a.as_str()).unwrap(), a);
        assert!(TaskId::parse("msg_123").is_err());
        assert!(TaskId::parse("task_").is_err());
        assert!(TaskId::parse("task_a b").is_err());
    }
}
