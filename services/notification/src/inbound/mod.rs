//! Inbound adapters: the Kafka event handler and HTTP.

pub mod http;
pub mod kafka;
