//! The payment domain: no HTTP, SQL or Kafka types in here.

pub mod models;
pub mod ports;
pub mod service;

#[cfg(test)]
pub mod fakes;
#[cfg(test)]
mod tests;
