//! The booking gRPC adapter (SPEC §4, the seed's hexagonal checkpoint): the same calls as
//! the REST adapter ([`super::calls`]), over `proto/housebook/book/v1/bookings.proto`.
//!
//! Tokens come as `authorization: Bearer …` metadata and are checked as for REST. The
//! domain's errors map to gRPC codes (its `From` impls below); an outage becomes
//! `UNAVAILABLE` with a `google.rpc.RetryInfo` detail. How the service is served — health
//! following readiness, reflection, rate limits and connection bounds, the drain — is
//! `platform::grpc`'s.

use std::time::Duration;

use platform::auth::TokenVerifier;
pub use platform::grpc::GrpcSettings;
use platform::grpc::{Api, Edge};
use platform::health::Health;
use platform::http::Page;
use platform::settings::HttpSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::models::Booking;
use crate::domain::service::BookService;
use crate::domain::service::{BookError, CancelBookingError, GetError};
use crate::inbound::calls::{self, ListError, StayAsked};

/// The generated messages, client and server.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("housebook.book.v1");

    /// The encoded descriptors of `bookings.proto`, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/bookings_descriptor.bin"));
}

use pb::bookings_server::{Bookings, BookingsServer};

/// The full name of the service, as clients and the health service name it.
pub const SERVICE: &str = "housebook.book.v1.Bookings";

/// The `Bookings` service over the domain service.
#[derive(Clone)]
pub struct BookingsApi {
    service: BookService,
    edge: Edge,
}

impl BookingsApi {
    /// An adapter over the domain service, checking tokens with `verifier` and limiting
    /// calls as `settings` say.
    pub fn new(service: BookService, verifier: TokenVerifier, settings: &GrpcSettings) -> Self {
        Self {
            service,
            edge: Edge::new(verifier, settings),
        }
    }
}

/// The domain's answers as gRPC statuses (the same messages as over REST), chosen from
/// the domain's error, never from an HTTP status.
fn domain_status(code: Code, message: String, retry_after: Option<Duration>) -> Status {
    match retry_after {
        Some(after) => {
            Status::with_error_details(code, message, ErrorDetails::with_retry_info(Some(after)))
        }
        None => Status::new(code, message),
    }
}

/// An internal failure: logged here, opaque to the client.
fn internal(cause: &anyhow::Error) -> Status {
    tracing::error!(error = format!("{cause:#}"), "grpc call failed");
    Status::internal("internal error")
}

impl From<BookError> for Status {
    fn from(e: BookError) -> Self {
        let message = e.to_string();
        match e {
            BookError::NotAllowed => domain_status(Code::PermissionDenied, message, None),
            BookError::Invalid(_) => domain_status(Code::InvalidArgument, message, None),
            BookError::TooFast { retry_after } => {
                domain_status(Code::ResourceExhausted, message, Some(retry_after))
            }
            BookError::PaymentUnavailable { retry_after, .. }
            | BookError::HouseUnavailable { retry_after, .. } => {
                domain_status(Code::Unavailable, message, Some(retry_after))
            }
            BookError::Unknown(e) => internal(&e),
        }
    }
}

impl From<CancelBookingError> for Status {
    fn from(e: CancelBookingError) -> Self {
        let message = e.to_string();
        match e {
            CancelBookingError::NotFound(_) => domain_status(Code::NotFound, message, None),
            CancelBookingError::NotYours => domain_status(Code::PermissionDenied, message, None),
            CancelBookingError::Invalid(_) | CancelBookingError::StayBegun(_) => {
                domain_status(Code::FailedPrecondition, message, None)
            }
            CancelBookingError::Unknown(e) => internal(&e),
        }
    }
}

impl From<GetError> for Status {
    fn from(e: GetError) -> Self {
        let message = e.to_string();
        match e {
            GetError::NotFound(_) => domain_status(Code::NotFound, message, None),
            GetError::NotYours => domain_status(Code::PermissionDenied, message, None),
            GetError::Unknown(e) => internal(&e),
        }
    }
}

impl From<ListError> for Status {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Invalid(m) => domain_status(Code::InvalidArgument, m, None),
            ListError::Unknown(e) => internal(&e),
        }
    }
}

fn some(text: String) -> Option<String> {
    (!text.trim().is_empty()).then_some(text)
}

impl From<Booking> for pb::Booking {
    fn from(b: Booking) -> Self {
        Self {
            id: b.id,
            customer_id: b.customer_id,
            house_id: b.house_id,
            house_name: b.house_name,
            house_price: b.price,
            check_in: b.stay.check_in().to_string(),
            check_out: b.stay.check_out().to_string(),
            nights: b.stay.nights(),
            status: b.status.as_str().to_owned(),
            payment_id: b.payment_id,
            created_at: b.created_at.to_rfc3339(),
            book_cancel_date: b
                .book_cancel_date
                .map(|d| d.to_rfc3339())
                .unwrap_or_default(),
        }
    }
}

#[tonic::async_trait]
impl Bookings for BookingsApi {
    async fn create_booking(
        &self,
        request: Request<pb::CreateBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let caller = self.edge.caller(&request)?;
        let m = request.into_inner();
        let asked = StayAsked {
            house_id: m.house_id,
            check_in: some(m.check_in),
            check_out: some(m.check_out),
            book_date: None,
        };
        let b = calls::book(&self.service, &caller, asked).await?;
        Ok(Response::new(b.into()))
    }

    async fn get_booking(
        &self,
        request: Request<pb::GetBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let caller = self.edge.caller(&request)?;
        let id = request.into_inner().id;
        let b = calls::get(&self.service, &caller, &id).await?;
        Ok(Response::new(b.into()))
    }

    async fn list_bookings(
        &self,
        request: Request<pb::ListBookingsRequest>,
    ) -> Result<Response<pb::ListBookingsResponse>, Status> {
        let caller = self.edge.caller(&request)?;
        let m = request.into_inner();
        let page = Page {
            limit: (m.limit != 0).then_some(m.limit),
            offset: Some(m.offset),
            order: None,
        };
        let status_filter = some(m.status);
        let list = calls::list(&self.service, &caller, status_filter.as_deref(), &page).await?;
        Ok(Response::new(pb::ListBookingsResponse {
            bookings: list.into_iter().map(Into::into).collect(),
        }))
    }

    async fn cancel_booking(
        &self,
        request: Request<pb::CancelBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let caller = self.edge.caller(&request)?;
        let id = request.into_inner().id;
        let b = calls::cancel(&self.service, &caller, &id).await?;
        Ok(Response::new(b.into()))
    }
}

/// Serves `Bookings`, health and (if enabled) reflection on `listener` until `shutdown`
/// (`platform::grpc`).
pub async fn serve(
    listener: TcpListener,
    api: BookingsApi,
    settings: &GrpcSettings,
    http: &HttpSettings,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let bookings = BookingsServer::new(api).max_decoding_message_size(settings.max_message_bytes);
    let api = Api {
        name: SERVICE,
        routes: Routes::new(bookings),
        descriptors: pb::FILE_DESCRIPTOR_SET,
    };
    platform::grpc::serve(listener, api, settings, http, health, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_map_to_grpc_codes_and_keep_nothing_internal() {
        use crate::domain::models::{BookingInvalid, InvalidTransition};
        let cases: [(Status, Code); 8] = [
            (BookError::NotAllowed.into(), Code::PermissionDenied),
            (
                BookError::Invalid(BookingInvalid::InThePast).into(),
                Code::InvalidArgument,
            ),
            (
                CancelBookingError::NotFound("b".into()).into(),
                Code::NotFound,
            ),
            (CancelBookingError::NotYours.into(), Code::PermissionDenied),
            (
                CancelBookingError::Invalid(InvalidTransition { from: "A", to: "B" }).into(),
                Code::FailedPrecondition,
            ),
            (GetError::NotFound("b".into()).into(), Code::NotFound),
            (GetError::NotYours.into(), Code::PermissionDenied),
            (
                ListError::Invalid("bad".into()).into(),
                Code::InvalidArgument,
            ),
        ];
        for (s, code) in cases {
            assert_eq!(s.code(), code, "{s:?}");
            assert!(!s.message().is_empty());
        }
        let s = Status::from(GetError::Unknown(anyhow::anyhow!("SELECT secret")));
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"));
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let s = Status::from(BookError::PaymentUnavailable {
            reason: "circuit open".into(),
            retry_after: Duration::from_secs(3),
        });
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("circuit"), "{}", s.message());
        let retry = s
            .get_error_details()
            .retry_info()
            .and_then(|r| r.retry_delay)
            .unwrap();
        assert_eq!(retry, Duration::from_secs(3));
    }

    #[test]
    fn the_service_name_is_the_proto_one() {
        assert_eq!(
            <BookingsServer<BookingsApi> as tonic::server::NamedService>::NAME,
            SERVICE
        );
    }
}
