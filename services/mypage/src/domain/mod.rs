//! The mypage domain: what the view holds ([`models`]), how each event changes it
//! ([`view`]), what it needs from its store ([`ports`]) and the use cases ([`service`]). No
//! HTTP, SQL or Kafka types in here.

pub mod models;
pub mod ports;
pub mod service;
pub mod view;

#[cfg(test)]
mod tests;
