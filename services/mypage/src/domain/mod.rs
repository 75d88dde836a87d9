//! The mypage domain: what the view holds. No HTTP, SQL or Kafka types in here.

pub mod models;
pub mod ports;
pub mod service;
pub mod view;

#[cfg(test)]
mod tests;
