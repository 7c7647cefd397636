//! One module per resource.

pub mod dead_letters;
pub mod health;
pub mod keys;
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod queues;
pub mod schedules;
pub mod targets;
pub mod tasks;
