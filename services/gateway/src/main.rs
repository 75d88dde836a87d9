//! The `gateway` service binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::service::main::<gateway::Application>().await
}
