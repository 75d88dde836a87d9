//! Inbound adapters: HTTP, the Kafka event handler, and the reconciler's timer.

pub mod http;
pub mod kafka;
pub mod reconciler;
