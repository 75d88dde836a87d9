//! The `notification` service binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::service::main::<notification::Application>().await
}
