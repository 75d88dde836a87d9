//! The `gateway` service binary. `gateway hash-password` reads a password (or a client
//! secret) from its standard input and prints the argon2id PHC string a deployment's
//! `gateway.toml` takes for it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("hash-password") => hash_password(),
        _ => {
            platform::service::main_with::<gateway::Application>(&[(
                "hash-password",
                "reads a password or client secret (its first line) from standard input and \
                 prints its argon2id hash for gateway.toml's users or clients",
            )])
            .await
        }
    }
}

fn hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let secret = line.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        !secret.is_empty(),
        "no password on standard input: printf %s \"$PASSWORD\" | gateway hash-password"
    );
    println!("{}", gateway::passwords::hash_new(secret.as_bytes())?);
    Ok(())
}
