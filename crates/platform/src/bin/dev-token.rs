//! `dev-token SUB ROLE...` prints a token signed with the LOCAL DEVELOPMENT key, for trying
//! the services directly (`./dev token admin ADMIN`). The gateway issues real tokens.

use platform::auth::{Role, TokenIssuer};
use platform::settings::{AuthSettings, DEV_SIGNING_KEY_PEM};

const USAGE: &str =
    "usage: dev-token SUB [ROLE...]   (ROLE: ADMIN, CUSTOMER (the default), SERVICE)";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let sub = args.next().ok_or_else(|| anyhow::anyhow!(USAGE))?;
    match sub.as_str() {
        "-h" | "--help" => {
            println!("dev-token: prints a token signed with the LOCAL DEVELOPMENT key, valid for an hour\n{USAGE}");
            return Ok(());
        }
        "-V" | "--version" => {
            println!("dev-token {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        s if s.starts_with('-') => anyhow::bail!("unknown option {s}; {USAGE}"),
        _ => {}
    }
    let roles = args
        .map(|r| match r.to_ascii_uppercase().as_str() {
            "ADMIN" => Ok(Role::Admin),
            "CUSTOMER" => Ok(Role::Customer),
            "SERVICE" => Ok(Role::Service),
            other => Err(anyhow::anyhow!("unknown role {other}")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let roles = if roles.is_empty() {
        vec![Role::Customer]
    } else {
        roles
    };
    let auth = AuthSettings::default();
    let issuer = TokenIssuer::from_pem(DEV_SIGNING_KEY_PEM, &auth.issuer, &auth.audience)?;
    println!("{}", issuer.issue(&sub, &roles, 3600)?);
    Ok(())
}
