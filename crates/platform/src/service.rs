//! The shape every service's `Application` has, so `main` and the test harness are
//! written once for the whole fleet.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::settings::{LogSettings, ServiceDefaults};

/// A service of the fleet: built from settings, then run until shutdown.
#[async_trait]
pub trait Service: Sized + Send + 'static {
    /// All of its settings (serialized for `--help`, secrets as `(secret)`).
    type Settings: DeserializeOwned + Serialize + schemars::JsonSchema + Send + 'static;
    /// Its name and local port.
    const DEFAULTS: ServiceDefaults;
    /// Its log settings.
    fn log(settings: &Self::Settings) -> &LogSettings;
    /// Connects, migrates and binds; serves nothing yet.
    async fn build(settings: Self::Settings, shutdown: CancellationToken) -> anyhow::Result<Self>;
    /// The bound port.
    fn port(&self) -> u16;
    /// Serves until `shutdown` is cancelled, then drains.
    async fn run(self) -> anyhow::Result<()>;
}

/// What the command line asks.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    Run,
    Help,
    Version,
    Unknown(String),
}

fn asked(mut args: impl Iterator<Item = String>) -> Asked {
    match args.next().as_deref() {
        None => Asked::Run,
        Some("-h" | "--help" | "help") => Asked::Help,
        Some("-V" | "--version") => Asked::Version,
        Some(other) => Asked::Unknown(other.to_owned()),
    }
}

/// A command a service's binary takes beside running (`mypage rebuild`): its name and,
/// in one line, what it does.
pub type Command = (&'static str, &'static str);

/// What `--help` prints: what the program is, its commands, how it is configured, and
/// every setting with its environment variable, default (secrets not shown) and meaning,
/// marking those the environment or the config file set now.
pub fn help<S: Service>(commands: &[Command]) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let name = S::DEFAULTS.name;
    let defaults: S::Settings = crate::settings::defaults(S::DEFAULTS)?;
    let defaults = crate::settings::env_lines(&serde_json::to_value(&defaults)?);
    let now: Option<std::collections::HashMap<String, String>> =
        crate::settings::load::<S::Settings>(S::DEFAULTS)
            .ok()
            .and_then(|s| serde_json::to_value(&s).ok())
            .map(|v| crate::settings::env_lines(&v).into_iter().collect());
    let mut out = String::new();
    writeln!(
        out,
        "{name} {} — a service of the housebook fleet",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(out)?;
    let names: String = commands.iter().map(|(c, _)| format!(" | {c}")).collect();
    writeln!(out, "Usage: {name} [--help | --version{names}]")?;
    writeln!(out)?;
    writeln!(out, "Commands:")?;
    writeln!(out, "  (none)         runs the service")?;
    for (command, what) in commands {
        writeln!(out, "  {command:<14} {what}")?;
    }
    writeln!(out, "  --help         prints this")?;
    writeln!(out, "  --version      prints the version")?;
    writeln!(out)?;
    writeln!(
        out,
        "Runs until SIGTERM or Ctrl-C, then drains. Configured by the environment (below) and \
         by a TOML file named in HOUSEBOOK_CONFIG with the same keys in lower case (a key's \
         parts are its sections: HOUSEBOOK_HTTP__PORT is `port` under `[http]`); the \
         environment wins. Lists are set in the file."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Settings (environment variable = default, and under it what the setting is):"
    )?;
    let meanings = crate::settings::meanings::<S::Settings>();
    for (key, default) in &defaults {
        write!(out, "  {key}={default}")?;
        if let Some(value) = now.as_ref().and_then(|n| n.get(key)) {
            if value != default {
                write!(out, "    (set now: {value})")?;
            }
        }
        writeln!(out)?;
        if let Some(meaning) = meanings.get(key) {
            writeln!(out, "      {meaning}")?;
        }
    }
    Ok(out)
}

/// Checks that every setting `--help` lists is an environment variable that works: set
/// to its shown default (secrets, lists and unset values aside), each one lands on a field
/// of the settings (a name the loader would read under another key fails), and together
/// they load. Each service's unit tests call it.
pub fn check_help<S: Service>() -> anyhow::Result<()> {
    let defaults: S::Settings = crate::settings::defaults(S::DEFAULTS)?;
    let tree = serde_json::to_value(&defaults)?;
    let lines = crate::settings::env_lines(&tree);
    let env: crate::settings::EnvMap = lines
        .iter()
        .filter(|(_, v)| {
            v != "(unset)" && v != "(secret)" && !v.starts_with('[') && !v.starts_with('"')
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    anyhow::ensure!(
        env.len() * 2 > lines.len(),
        "most settings are plain values: {lines:?}"
    );
    fn leaves(v: &serde_json::Value, path: String, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    leaves(v, p, out);
                }
            }
            _ => out.push(path),
        }
    }
    let mut fields = Vec::new();
    leaves(&tree, String::new(), &mut fields);
    let mut read = Vec::new();
    leaves(
        &crate::settings::env_tree(env.clone())?,
        String::new(),
        &mut read,
    );
    let meanings = crate::settings::meanings::<S::Settings>();
    let unexplained: Vec<_> = lines
        .iter()
        .filter(|(k, _)| meanings.get(k).is_none_or(|m| m.len() < 8))
        .map(|(k, _)| k)
        .collect();
    anyhow::ensure!(
        unexplained.is_empty(),
        "settings --help would list without saying what they are (a doc comment on the field): {unexplained:?}"
    );
    let strays: Vec<_> = read.iter().filter(|k| !fields.contains(k)).collect();
    anyhow::ensure!(
        strays.is_empty(),
        "variables --help lists that the loader reads as no setting: {strays:?}"
    );
    let loaded: S::Settings = crate::settings::load_from(S::DEFAULTS, None, Some(env))?;
    let again = crate::settings::env_lines(&serde_json::to_value(&loaded)?);
    anyhow::ensure!(
        again == lines,
        "the listed values did not load back: {again:?}"
    );
    Ok(())
}

/// The whole of a service binary's `main`: `--help` and `--version`, then settings, logs,
/// signals, build, run.
pub async fn main<S: Service>() -> anyhow::Result<()> {
    main_with::<S>(&[]).await
}

/// [`main`] for a binary that takes `commands` too: its own `main` runs them, this lists
/// them in `--help`.
pub async fn main_with<S: Service>(commands: &[Command]) -> anyhow::Result<()> {
    match asked(std::env::args().skip(1)) {
        Asked::Run => {}
        Asked::Help => {
            print!("{}", help::<S>(commands)?);
            return Ok(());
        }
        Asked::Version => {
            println!("{} {}", S::DEFAULTS.name, env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Asked::Unknown(arg) => {
            eprintln!(
                "{}: unknown argument {arg:?}; it takes {}--help and --version \
                 (settings come from the environment: see --help)",
                S::DEFAULTS.name,
                commands
                    .iter()
                    .map(|(c, _)| format!("{c}, "))
                    .collect::<String>()
            );
            std::process::exit(2);
        }
    }
    let settings: S::Settings = crate::settings::load(S::DEFAULTS)?;
    crate::telemetry::init(S::DEFAULTS.name, S::log(&settings));
    let shutdown = CancellationToken::new();
    crate::shutdown::cancel_on_signal(shutdown.clone());
    let app = S::build(settings, shutdown).await?;
    let ran = app.run().await;
    // Blocking: the last spans go out (bounded by the exporter's timeout).
    let _ = tokio::task::spawn_blocking(crate::telemetry::shutdown).await;
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Asked {
        asked(a.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn the_command_line_is_run_help_version_or_refused() {
        assert_eq!(args(&[]), Asked::Run);
        assert_eq!(args(&["--help"]), Asked::Help);
        assert_eq!(args(&["-h"]), Asked::Help);
        assert_eq!(args(&["--version"]), Asked::Version);
        assert_eq!(args(&["-V"]), Asked::Version);
        assert_eq!(args(&["--port=1"]), Asked::Unknown("--port=1".into()));
    }
}
