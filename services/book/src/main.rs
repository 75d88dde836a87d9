//! The `book` service binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::service::main::<book::Application>().await
}
