//! The binaries as programs (issue 20): each answers `--version` and `--help` (every
//! setting with its variable and default), refuses an unknown argument, and a service whose
//! broker does not answer says so — which, and how to start it — within 5 s and keeps
//! trying until it is stopped. The real binaries from `target/debug` (or
//! `HOUSEBOOK_BIN_DIR`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e::{bin_dir, free_port};

fn run(service: &str, arg: &str) -> std::process::Output {
    Command::new(bin_dir().join(service))
        .arg(arg)
        .env("HOUSEBOOK_DATA_DIR", std::env::temp_dir())
        .output()
        .unwrap()
}

#[test]
fn every_service_answers_version_and_help_and_refuses_the_unknown() {
    for service in fleet::names() {
        let version = run(service, "--version");
        assert!(version.status.success(), "{service} --version");
        assert_eq!(
            String::from_utf8_lossy(&version.stdout).trim(),
            format!("{service} {}", env!("CARGO_PKG_VERSION"))
        );
        let help = run(service, "--help");
        assert!(help.status.success(), "{service} --help");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.starts_with(&format!("{service} ")), "{text}");
        for setting in [
            "HOUSEBOOK_HTTP__PORT=",
            "HOUSEBOOK_LOG__FILTER=",
            "HOUSEBOOK_AUTH__ISSUER=",
        ] {
            assert!(
                text.contains(setting),
                "{service} --help lists {setting}: {text}"
            );
        }
        assert!(
            !text.contains("dev-secret"),
            "{service} --help shows no secret"
        );
        // Each setting with what it is, on the line under it.
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with("  HOUSEBOOK_") {
                let meaning = lines.get(i + 1).copied().unwrap_or_default();
                assert!(
                    meaning.starts_with("      ") && meaning.trim().len() > 8,
                    "{service} --help says what {line} is: {meaning:?}"
                );
            }
        }
        let unknown = run(service, "--port=1");
        assert_eq!(unknown.status.code(), Some(2), "{service} --port=1");
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("--help"));
    }
}

/// The fleet is defined once (`crates/fleet`): each service's own defaults are its entry's
/// ports and the addresses of what it calls, and `./dev` runs what the plan says — every
/// instance on its port — with no list or port of its own.
#[test]
fn the_services_and_dev_take_the_fleet_from_its_one_definition() {
    let plan = fleet::Plan::new("b").scaled(2);
    let all = plan.local_instances();
    for s in fleet::SERVICES {
        let help = String::from_utf8_lossy(&run(s.name, "--help").stdout).into_owned();
        assert!(
            help.contains(&format!("HOUSEBOOK_HTTP__PORT={}", s.port)),
            "{} --help: {help}",
            s.name
        );
        for (setting, callee) in s.calls {
            if let fleet::Callee::Service(callee) = callee {
                let url = fleet::local_url(fleet::service(callee).unwrap());
                assert!(
                    help.contains(&format!("{setting}={url}")),
                    "{}'s default for {setting} is {url}: {help}",
                    s.name
                );
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = dev(&["status"], &[("HOUSEBOOK_REPLICAS", "2")]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "./dev status: {text}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let listed: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0].to_owned(), cols[2].to_owned())
        })
        .collect();
    let planned: Vec<(String, String)> =
        std::iter::once(("broker".to_owned(), fleet::BROKER.port.to_string()))
            .chain(all.iter().map(|i| {
                (
                    i.name.clone(),
                    i.port(fleet::Port::Http).unwrap().to_string(),
                )
            }))
            .collect();
    assert_eq!(listed, planned, "./dev status runs the fleet's plan");
    // Its columns line up, whatever the longest part's name.
    let starts: std::collections::BTreeSet<Option<usize>> = text
        .lines()
        .map(|l| {
            l.find(|c: char| c.is_whitespace())
                .and_then(|end| l[end..].find(|c: char| !c.is_whitespace()).map(|n| end + n))
        })
        .collect();
    assert_eq!(
        starts.len(),
        1,
        "./dev status's second column starts at one place:\n{text}"
    );
    let script = std::fs::read_to_string(root.join("dev")).unwrap();
    for port in all
        .iter()
        .flat_map(|i| i.ports.iter().map(|(_, p)| p.to_string()))
    {
        assert!(!script.contains(&port), "./dev names port {port} itself");
    }
}

#[test]
fn a_service_without_its_broker_says_so_within_5_s_and_keeps_trying() {
    let data = tempdir();
    let dead = free_port(); // nothing listens there
    let mut child = Command::new(bin_dir().join("house"))
        .env("HOUSEBOOK_DATA_DIR", &data)
        .env("HOUSEBOOK_HTTP__PORT", free_port().to_string())
        .env("HOUSEBOOK_KAFKA__BROKERS", format!("127.0.0.1:{dead}"))
        .env("HOUSEBOOK_LOG__FILTER", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let said = |deadline: Duration| {
        let end = started + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((at, line)) if line.contains("cannot be reached") => return Some((at, line)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    };
    // It gives up on one attempt after 3 s; the rest of the 5 s is for starting the process.
    let (first, line) = said(Duration::from_secs(5)).expect("a word within 5 s");
    assert!(first - started <= Duration::from_secs(5));
    assert!(
        line.contains(&format!("the broker at 127.0.0.1:{dead}")),
        "{line}"
    );
    assert!(line.contains("./dev start broker"), "{line}");
    // Still trying: a second word, and the process lives.
    let (second, _) = said(Duration::from_secs(15)).expect("trying again");
    assert!(second > first);
    assert!(child.try_wait().unwrap().is_none(), "it keeps running");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "stopped before it could start: not a clean run"
    );
}

/// `./dev ARGS` with `env`, on a data directory of its own (no fleet of the developer's).
fn dev(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new("bash")
        .arg(e2e::repo().join("dev"))
        .args(args)
        .env("HOUSEBOOK_DATA_DIR", tempdir())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("housebook-programs-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The commands beside running: listed in `--help`, and `gateway hash-password` makes a
/// hash the gateway takes for a new user.
#[test]
fn the_binaries_list_their_commands_and_the_gateway_hashes_a_new_password() {
    let mypage = String::from_utf8_lossy(&run("mypage", "--help").stdout).into_owned();
    assert!(
        mypage.contains("Usage: mypage [--help | --version | rebuild]")
            && mypage.contains("\n  rebuild "),
        "{mypage}"
    );
    let gateway = String::from_utf8_lossy(&run("gateway", "--help").stdout).into_owned();
    assert!(gateway.contains("\n  hash-password "), "{gateway}");
    let hash = |input: &str| {
        let mut child = Command::new(bin_dir().join("gateway"))
            .arg("hash-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let made = hash("s3cret-Passw0rd\n");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let phc = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    assert!(
        phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$") && !phc.contains("s3cret"),
        "{phc}"
    );
    let none = hash("");
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no password on standard input"));
}

/// `./dev` and `dev-token` say what went wrong in a line and exit 2: an unknown command
/// with the commands there are, an unknown role with the roles there are — never a
/// backtrace, even with RUST_BACKTRACE set.
#[test]
fn dev_and_dev_token_refuse_plainly() {
    let unknown = dev(&["frobnicate"], &[]);
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2), "{said}");
    assert!(
        said.contains("unknown command 'frobnicate'")
            && said.contains(" up (")
            && said.contains(" demo, "),
        "{said}"
    );
    let help = dev(&["help"], &[]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("./dev demo"));
    let token = Command::new(bin_dir().join("dev-token"))
        .args(["alice", "SUPERUSER"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&token.stderr);
    assert_eq!(token.status.code(), Some(2), "{said}");
    assert!(
        said.contains("ADMIN, CUSTOMER or SERVICE")
            && !said.contains("backtrace")
            && said.lines().count() == 1,
        "{said}"
    );
}
