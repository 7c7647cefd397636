//! Integration tests of the example worker binary.

mod crash;
mod handlers;
mod postgres;
mod support;
