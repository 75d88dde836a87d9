//! Inbound adapters: HTTP, and the fault knobs that sit in front of it.

pub mod faults;
pub mod http;
