//! `fleet`: the fleet's definition (`crates/fleet`) for scripts — `./dev` starts every
//! process from what this prints; the manifest and buildspec checks read `fleet json`.

use std::io::Write as _;
use std::process::ExitCode;

use fleet::{Plan, Port, BROKER, SERVICES};

const HELP: &str = "\
fleet: the housebook fleet, defined once (crates/fleet), for scripts.

usage:
  fleet instances [--replicas N]
      every process of a fleet on this machine, in start order, one per line:
      NAME HTTP-PORT GRPC-PORT ADMIN-PORT INTERNAL-PORT   ('-' where it has none)
  fleet env INSTANCE [--replicas N] [--brokers HOST:PORT] [--pg-server URL]
      INSTANCE's settings on a developer's machine, one KEY=VALUE per line (--pg-server:
      every service on its own PostgreSQL database on that server; else each on its own
      SQLite file)
  fleet databases
      the PostgreSQL databases of the services that keep one, one per line
  fleet broker program|version|rustc|checksum|features|postgres-feature|port|test-port|start-secs
      the local broker: which, how it is compiled, where it listens
  fleet broker-args PORT STORAGE
      the broker's arguments to listen on 127.0.0.1:PORT with STORAGE, one per line
  fleet json
      the whole definition as JSON
  fleet log FILE
      appends standard input to FILE line by line, moving FILE to FILE.1 whenever it reaches
      HOUSEBOOK_LOG_FILE_MAX_BYTES (default 10 MiB): each part's log under ./dev
  fleet --help | --version

--replicas N: N replicas of each service that scales (book, payment, house); default 1.
--brokers: default 127.0.0.1:9092 (the local broker).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, file] = args.as_slice() {
        if command == "log" {
            return log(std::path::Path::new(file));
        }
    }
    match run(&args) {
        // A closed pipe (`fleet json | head -1`) is the reader's choice, not a failure.
        Ok(out) => match std::io::stdout().write_all(out.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fleet: cannot write: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("fleet: {e} (fleet --help)");
            ExitCode::from(2)
        }
    }
}

/// `fleet log FILE`: standard input into FILE, capped.
fn log(file: &std::path::Path) -> ExitCode {
    let max = match std::env::var("HOUSEBOOK_LOG_FILE_MAX_BYTES") {
        Err(_) => fleet::log::DEFAULT_MAX_BYTES,
        Ok(v) => match v.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("fleet log: HOUSEBOOK_LOG_FILE_MAX_BYTES must be a number of bytes above 0, not {v:?}");
                return ExitCode::from(2);
            }
        },
    };
    match fleet::log::keep(std::io::stdin().lock(), file, max) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet log: {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let (command, rest) = args.split_first().ok_or("no command")?;
    let options = Options::read(rest)?;
    let lines = |items: Vec<String>| items.iter().map(|l| format!("{l}\n")).collect();
    match (command.as_str(), options.positional.as_slice()) {
        ("--help" | "-h" | "help", []) => Ok(HELP.to_owned()),
        ("--version" | "-V", []) => Ok(format!("fleet {}\n", env!("CARGO_PKG_VERSION"))),
        ("instances", []) => Ok(lines(
            options
                .plan()
                .local_instances()
                .iter()
                .map(|i| {
                    let ports = Port::ALL.map(|k| i.port(k).map_or("-".into(), |p| p.to_string()));
                    format!("{} {}", i.name, ports.join(" "))
                })
                .collect(),
        )),
        ("env", [instance]) => {
            let all = options.plan().local_instances();
            let i = all
                .iter()
                .find(|i| &i.name == instance)
                .ok_or_else(|| format!("no instance {instance} in this fleet"))?;
            Ok(lines(
                i.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ))
        }
        ("databases", []) => Ok(lines(
            SERVICES
                .iter()
                .filter(|s| s.database)
                .map(|s| s.database_name())
                .collect(),
        )),
        ("broker", [what]) => match what.as_str() {
            "program" => Ok(BROKER.program.to_owned()),
            "version" => Ok(BROKER.version.to_owned()),
            "rustc" => Ok(BROKER.rustc.to_owned()),
            "checksum" => Ok(BROKER.checksum.to_owned()),
            "features" => Ok(BROKER.features.to_owned()),
            "postgres-feature" => Ok(BROKER.postgres_feature.to_owned()),
            "port" => Ok(BROKER.port.to_string()),
            "test-port" => Ok(BROKER.test_port.to_string()),
            "start-secs" => Ok(BROKER.start_secs.to_string()),
            other => Err(format!("the broker has no {other}")),
        }
        .map(|v| v + "\n"),
        ("broker-args", [port, storage]) => {
            let port: u16 = port.parse().map_err(|_| format!("not a port: {port}"))?;
            Ok(lines(BROKER.args(port, storage)))
        }
        ("json", []) => Ok(fleet::json() + "\n"),
        (other, _) => Err(format!("unknown command or arguments: {other} {rest:?}")),
    }
}

struct Options {
    replicas: usize,
    brokers: String,
    pg_server: Option<String>,
    positional: Vec<String>,
}

impl Options {
    fn read(args: &[String]) -> Result<Self, String> {
        let mut o = Self {
            replicas: 1,
            brokers: format!("127.0.0.1:{}", BROKER.port),
            pg_server: None,
            positional: Vec::new(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--replicas" => {
                    let n = value()?;
                    o.replicas = n
                        .parse()
                        .ok()
                        .filter(|n| (1..=9).contains(n))
                        .ok_or(format!("--replicas {n}: a number from 1 to 9"))?;
                }
                "--brokers" => o.brokers = value()?.clone(),
                "--pg-server" => o.pg_server = Some(value()?.clone()),
                flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
                _ => o.positional.push(arg.clone()),
            }
        }
        Ok(o)
    }

    fn plan(&self) -> Plan {
        let plan = Plan::new(self.brokers.clone())
            .scaled(self.replicas)
            .for_a_developer();
        match &self.pg_server {
            Some(server) => plan.postgres(server),
            None => plan,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::run;

    fn call(args: &str) -> Result<String, String> {
        run(&args
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>())
    }

    #[test]
    fn instances_print_their_ports_in_start_order() {
        let out = call("instances --replicas 2").unwrap_or_default();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.first(), Some(&"payment 8082 - - -"));
        assert!(lines.contains(&"book-2 8091 50061 - -"), "{out}");
        assert_eq!(lines.last(), Some(&"gateway 8088 - 9088 8089"));
    }

    #[test]
    fn env_is_one_setting_per_line_with_the_databases_on_the_server_asked() {
        let out = call("env mypage --pg-server postgres://h:1 --brokers b:1").unwrap_or_default();
        assert!(out
            .lines()
            .any(|l| l == "HOUSEBOOK_DATABASE__URL=postgres://h:1/housebook_mypage"));
        assert!(out.lines().any(|l| l == "HOUSEBOOK_KAFKA__BROKERS=b:1"));
        assert!(out
            .lines()
            .all(|l| l.starts_with("HOUSEBOOK_") && l.contains('=')));
    }

    #[test]
    fn mistakes_are_refused_with_what_was_wrong() {
        for bad in [
            "",
            "env",
            "env nobody",
            "env book-2",
            "instances --replicas 0",
            "instances --replicas x",
            "instances --replicas",
            "instances --colour",
            "broker colour",
            "broker-args 99999 s",
            "dance",
        ] {
            assert!(call(bad).is_err(), "{bad:?} was taken");
        }
    }
}
