//! Outbound adapters: the booking database, and the payment context over HTTP.

pub mod db;
pub mod payment_client;
