//! The payment domain: no HTTP, SQL or Kafka types in here. The Payment aggregate — taking
//! and refunding, who may move money ([`models`]) — what it needs from its store
//! ([`ports`]), and the use cases ([`service`]).

pub mod models;
pub mod ports;
pub mod service;

#[cfg(test)]
pub mod fakes;
#[cfg(test)]
mod tests;
