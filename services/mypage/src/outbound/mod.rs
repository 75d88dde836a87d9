//! Outbound adapters: the view database.

pub mod db;
