//! The booking domain: no HTTP, SQL or Kafka types in here. The Book aggregate and what
//! makes a request valid ([`models`]), every rule of the saga as book lives it ([`saga`]),
//! what it needs from outside ([`ports`]), and the use cases ([`service`]).

pub mod models;
pub mod ports;
pub mod saga;
pub mod service;

#[cfg(test)]
pub mod fakes;
#[cfg(test)]
mod tests;
