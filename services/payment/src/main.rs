//! The `payment` service binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::service::main::<payment::Application>().await
}
