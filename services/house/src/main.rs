//! The `house` service binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::service::main::<house::Application>().await
}
