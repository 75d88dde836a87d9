//! Inbound adapters: HTTP and the Kafka event handler.

pub mod http;
pub mod kafka;
