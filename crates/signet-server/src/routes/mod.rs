//! One module per resource.

pub mod dead_letters;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod queues;
pub mod tasks;
