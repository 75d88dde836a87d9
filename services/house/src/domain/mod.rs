//! The house domain: no HTTP, SQL or Kafka types in here. Houses and what makes one valid
//! ([`models`]), the calendar's rules — hold, refuse, release ([`calendar`]) — what it
//! needs from its store ([`ports`]), and the use cases ([`service`]).

pub mod calendar;
pub mod models;
pub mod ports;
pub mod service;

#[cfg(test)]
pub mod fakes;
#[cfg(test)]
mod tests;
