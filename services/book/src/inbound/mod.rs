//! Inbound adapters: HTTP and gRPC (both over [`calls`]), the Kafka event handler, and the
//! reconciler's timer.

pub mod calls;
pub mod grpc;
pub mod http;
pub mod kafka;
pub mod reconciler;
