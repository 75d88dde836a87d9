//! `dev-token SUB ROLE...` prints a token signed with the LOCAL DEVELOPMENT key, for trying
//! the services directly (`./dev token admin ADMIN`). The gateway issues real tokens.

use platform::auth::{Role, TokenIssuer};
use platform::settings::{AuthSettings, DEV_SIGNING_KEY_PEM};

const USAGE: &str =
    "usage: dev-token SUB [ROLE...]   (ROLE: ADMIN, CUSTOMER (the default) or SERVICE; \
     SUB: the token's subject, e.g. alice)";

/// What the command line asks: help, the version, or a token for a subject and roles.
#[derive(Debug, PartialEq)]
enum Asked {
    Help,
    Version,
    Token(String, Vec<Role>),
}

/// Reads the command line; a mistake is said in one line with what is valid.
fn asked(mut args: impl Iterator<Item = String>) -> Result<Asked, String> {
    let sub = args.next().ok_or_else(|| USAGE.to_owned())?;
    match sub.as_str() {
        "-h" | "--help" => return Ok(Asked::Help),
        "-V" | "--version" => return Ok(Asked::Version),
        s if s.starts_with('-') => return Err(format!("unknown option {s}; {USAGE}")),
        _ => {}
    }
    let roles = args
        .map(|r| match r.to_ascii_uppercase().as_str() {
            "ADMIN" => Ok(Role::Admin),
            "CUSTOMER" => Ok(Role::Customer),
            "SERVICE" => Ok(Role::Service),
            _ => Err(format!(
                "unknown role {r:?}: a role is ADMIN, CUSTOMER or SERVICE"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let roles = if roles.is_empty() {
        vec![Role::Customer]
    } else {
        roles
    };
    Ok(Asked::Token(sub, roles))
}

fn main() -> std::process::ExitCode {
    match asked(std::env::args().skip(1)) {
        Ok(Asked::Help) => {
            println!("dev-token: prints a token signed with the LOCAL DEVELOPMENT key, valid for an hour\n{USAGE}");
        }
        Ok(Asked::Version) => println!("dev-token {}", env!("CARGO_PKG_VERSION")),
        Ok(Asked::Token(sub, roles)) => {
            let auth = AuthSettings::default();
            let token = TokenIssuer::from_pem(DEV_SIGNING_KEY_PEM, &auth.issuer, &auth.audience)
                .and_then(|issuer| issuer.issue(&sub, &roles, 3600));
            match token {
                Ok(token) => println!("{token}"),
                Err(e) => {
                    eprintln!("dev-token: could not sign: {e:#}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        Err(why) => {
            eprintln!("dev-token: {why}");
            return std::process::ExitCode::from(2);
        }
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Asked, String> {
        asked(a.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn roles_are_read_in_any_case_and_a_wrong_one_says_which_are_valid() {
        assert_eq!(
            args(&["alice"]),
            Ok(Asked::Token("alice".into(), vec![Role::Customer]))
        );
        assert_eq!(
            args(&["root", "admin", "Service"]),
            Ok(Asked::Token(
                "root".into(),
                vec![Role::Admin, Role::Service]
            ))
        );
        let wrong = args(&["alice", "SUPERUSER"]).unwrap_err();
        assert!(
            wrong.contains("SUPERUSER") && wrong.contains("ADMIN, CUSTOMER or SERVICE"),
            "{wrong}"
        );
        assert_eq!(args(&[]), Err(USAGE.to_owned()));
        assert!(args(&["--bogus"])
            .unwrap_err()
            .starts_with("unknown option --bogus"));
        assert_eq!(args(&["-h"]), Ok(Asked::Help));
    }
}
