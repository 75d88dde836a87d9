//! Outbound adapters: the house database (with its outbox and inbox).

pub mod db;
