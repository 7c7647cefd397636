//! Integration tests of the example worker binary.

mod crash;
mod handlers;
mod metrics;
mod postgres;
mod signals;
mod support;
