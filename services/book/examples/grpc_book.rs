//! A tiny gRPC client of book: books a stay, shows it, cancels it.
//!
//! ```sh
//! ALICE=$(curl -s localhost:8088/oauth/token -d grant_type=password -d username=alice -d password=alice | jq -r .access_token)
//! TOKEN=$ALICE cargo run -p book --example grpc_book -- 1 $(date -d '+30 days' +%F) $(date -d '+32 days' +%F)
//! ```
//!
//! Arguments: house id, check-in, check-out. `BOOK_GRPC` is where book serves gRPC
//! (`http://127.0.0.1:50051` under `./dev`).

use book::inbound::grpc::pb::bookings_client::BookingsClient;
use book::inbound::grpc::pb::{CancelBookingRequest, CreateBookingRequest, GetBookingRequest};
use tonic::Request;

fn authorized<T>(message: T, token: &str) -> Result<Request<T>, Box<dyn std::error::Error>> {
    let mut r = Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(r)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [house, check_in, check_out] = args.as_slice() else {
        return Err(
            "usage: grpc_book HOUSE_ID CHECK_IN CHECK_OUT (and TOKEN in the environment)".into(),
        );
    };
    let token = std::env::var("TOKEN").map_err(|_| "set TOKEN to a bearer token")?;
    let url = std::env::var("BOOK_GRPC").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let mut book = BookingsClient::connect(url).await?;

    let created = book
        .create_booking(authorized(
            CreateBookingRequest {
                house_id: house.parse()?,
                check_in: check_in.clone(),
                check_out: check_out.clone(),
            },
            &token,
        )?)
        .await;
    let created = match created {
        Ok(b) => b.into_inner(),
        Err(status) => return Err(format!("{:?}: {}", status.code(), status.message()).into()),
    };
    println!("booked:    {created:?}");
    let id = created.id;
    let seen = book
        .get_booking(authorized(GetBookingRequest { id: id.clone() }, &token)?)
        .await?
        .into_inner();
    println!("now:       {}", seen.status);
    let cancelled = book
        .cancel_booking(authorized(CancelBookingRequest { id }, &token)?)
        .await?
        .into_inner();
    println!("cancelled: {}", cancelled.status);
    Ok(())
}
