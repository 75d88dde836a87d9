//! Inbound adapters: HTTP queries and the Kafka event handler.

pub mod http;
pub mod kafka;
