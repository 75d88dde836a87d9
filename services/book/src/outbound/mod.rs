//! Outbound adapters: the booking database, and the payment and house contexts over HTTP.

pub mod db;
pub mod house_client;
pub mod payment_client;
