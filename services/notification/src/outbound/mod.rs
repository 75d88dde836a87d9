//! Outbound adapters: the store.

pub mod db;
