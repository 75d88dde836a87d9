//! The notification context: what a customer is told ([`models`]), what it needs from
//! storage ([`ports`]), and the use cases over them ([`service`]), as in the other services.

pub mod models;
pub mod ports;
pub mod service;

pub use models::*;

#[cfg(test)]
mod tests;
