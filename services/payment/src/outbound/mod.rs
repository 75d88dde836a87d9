//! Outbound adapters: the payment database (with its outbox).

pub mod db;
