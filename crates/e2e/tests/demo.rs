//! The README's walkthrough is code (`docs/walkthrough.sh`, which `./dev demo` runs): here
//! it runs twice in a row on one fleet, on each backend, every promised answer checked,
//! and the README's block is checked to be the script's story as written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use e2e::{repo, tool, Fleet, Options};
use testkit::Backend;

const BEGIN: &str = "# ---- the walkthrough (README.md, \"Try it\") ----";
const END: &str = "# ---- end of the walkthrough ----";

/// The story as the README shows it: the script's lines between its markers, without the
/// checks (`promise…`), each `step "TEXT"` a comment.
fn story(script: &str) -> Vec<String> {
    let start = script.find(BEGIN).expect("the script's start marker") + BEGIN.len();
    let end = script.find(END).expect("the script's end marker");
    script[start..end]
        .trim_matches('\n')
        .lines()
        .filter(|l| !l.starts_with("promise"))
        .map(|l| match l.strip_prefix("step \"") {
            Some(text) => format!("# {}", text.strip_suffix('"').unwrap_or(text)),
            None => l.to_owned(),
        })
        .collect()
}

/// The README's walkthrough block: the `sh` block after the line naming the script.
fn readme_block(readme: &str) -> Vec<String> {
    let at = readme
        .find("<!-- the walkthrough: docs/walkthrough.sh -->")
        .expect("README names the walkthrough's block");
    let rest = &readme[at..];
    let open = rest.find("```sh\n").expect("its sh block") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the block's end");
    rest[open..open + close]
        .trim_end_matches('\n')
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_walkthrough_is_the_script_as_written() {
    let script = std::fs::read_to_string(repo().join("docs/walkthrough.sh")).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let (story, block) = (story(&script), readme_block(&readme));
    assert!(
        story.len() > 30,
        "the story is the whole walkthrough: {story:?}"
    );
    for (i, (s, r)) in story.iter().zip(&block).enumerate() {
        assert_eq!(
            r,
            s,
            "README's walkthrough, line {}, differs from the script's",
            i + 1
        );
    }
    assert_eq!(
        block.len(),
        story.len(),
        "README's walkthrough and the script's have other lengths"
    );
    // The story takes every id from an answer: no id is written into it.
    for line in &story {
        assert!(
            !line.contains("houseId=1") && !line.contains("/books/1") && !line.contains(".[0].id"),
            "an id written into the story: {line}"
        );
    }
}

/// The README's first screen is the quickstart: its two commands, then one booking by
/// hand whose every line is a line of the walkthrough (so it runs as the walkthrough does).
#[test]
fn the_readme_opens_with_the_quickstart_whose_lines_are_the_walkthroughs() {
    let script = std::fs::read_to_string(repo().join("docs/walkthrough.sh")).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let first = readme.find("\n## ").expect("a section");
    assert!(
        readme[first..].starts_with("\n## Quickstart\n"),
        "the first section is the quickstart"
    );
    let quickstart = &readme[first..first + readme[first + 1..].find("\n## ").unwrap()];
    let blocks: Vec<&str> = quickstart
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2, "the two commands, then one booking");
    assert!(
        blocks[0].starts_with("./dev up -d ") && blocks[0].contains("\n./dev test "),
        "{}",
        blocks[0]
    );
    let story = story(&script);
    for line in blocks[1].lines() {
        assert!(
            story.iter().any(|s| s == line),
            "a quickstart line not in the walkthrough: {line}"
        );
    }
    assert!(
        readme
            .lines()
            .take(40)
            .any(|l| l.contains("http://127.0.0.1:8088/")),
        "the storefront's address on the first screen"
    );
}

/// The README and `docs/` stand on their own: no reference to a document outside the
/// repository (a specification's sections, an issue tracker's numbers).
#[test]
fn the_docs_cite_nothing_outside_the_repository() {
    let mut pages = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            let cites_issue = lower
                .match_indices("issue ")
                .any(|(i, m)| lower[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()));
            assert!(
                !line.contains("SPEC") && !line.contains('§') && !cites_issue,
                "{}:{}: cites a document outside the repository: {line}",
                page.display(),
                n + 1
            );
        }
    }
}

/// Runs the walkthrough against `fleet`; panics with its transcript unless it kept every
/// promise.
fn walk(fleet: &Fleet, run: usize) {
    let httpie = tool("HOUSEBOOK_HTTPIE", ".tools/httpie/bin/http");
    let gateway = fleet.gateway();
    let out = Command::new(repo().join("docs/walkthrough.sh"))
        .env("HOUSEBOOK_GATEWAY", gateway.trim_start_matches("http://"))
        .env("HOUSEBOOK_HTTPIE", httpie)
        .output()
        .unwrap();
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "run {run} of the walkthrough failed ({}):\n{transcript}",
        out.status
    );
    assert!(
        transcript.contains("every promise kept") && !transcript.contains('✗'),
        "run {run}: {transcript}"
    );
}

/// The walkthrough twice on one fleet, as a newcomer runs it: the booking rules a
/// deployment has (holdings, pace) at their defaults, not raised as for load tests.
async fn twice(backend: Backend) {
    let mut options = Options::new(backend);
    let rules = book::BookingSettings::default();
    for (key, value) in [
        (
            "HOUSEBOOK_BOOKING__MAX_NIGHTS_AHEAD",
            rules.max_nights_ahead.to_string(),
        ),
        (
            "HOUSEBOOK_BOOKING__PACE__PER_SECOND",
            rules.pace.per_second.to_string(),
        ),
        (
            "HOUSEBOOK_BOOKING__PACE__BURST",
            rules.pace.burst.to_string(),
        ),
    ] {
        options.env.push(("book", key.to_owned(), value));
    }
    let fleet = Fleet::start_with(options).await;
    walk(&fleet, 1);
    walk(&fleet, 2);
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_walkthrough_runs_twice_on_one_fleet_sqlite() {
    twice(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_walkthrough_runs_twice_on_one_fleet_postgres() {
    twice(Backend::Postgres).await;
}

/// `./dev seed` fills an empty fleet with described houses and a few bookings, and a
/// second run adds nothing.
#[tokio::test(flavor = "multi_thread")]
async fn seeding_twice_registers_described_houses_and_bookings_once() {
    let fleet = Fleet::start(Backend::Sqlite).await;
    let seed = || {
        let out = Command::new("bash")
            .arg(repo().join("dev"))
            .arg("seed")
            .env(
                "HOUSEBOOK_GATEWAY",
                fleet.gateway().trim_start_matches("http://"),
            )
            .env(
                "HOUSEBOOK_DATA_DIR",
                std::env::temp_dir().join("housebook-seed-test"),
            )
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "./dev seed: {said}");
        said
    };
    let first = seed();
    let admin = fleet.token("admin").await;
    let (_, houses) = fleet.get("/houses?limit=100", &admin).await;
    let houses = houses.as_array().unwrap().clone();
    assert_eq!(houses.len(), 5, "{first}");
    assert!(
        houses
            .iter()
            .all(|h| h["houseDescription"].as_str().is_some_and(|d| d.len() > 40)),
        "every seeded house is described: {houses:?}"
    );
    let (_, booked) = fleet.get("/books?limit=100", &admin).await;
    let booked = booked.as_array().unwrap().clone();
    let by = |who: &str| booked.iter().filter(|b| b["customerId"] == who).count();
    assert_eq!((by("alice"), by("bob")), (2, 1), "{first}");
    let second = seed();
    assert!(second.contains("nothing new to book"), "{second}");
    let (_, again) = fleet.get("/houses?limit=100", &admin).await;
    assert_eq!(again.as_array().unwrap().len(), 5, "{second}");
    let (_, rebooked) = fleet.get("/books?limit=100", &admin).await;
    assert_eq!(rebooked.as_array().unwrap().len(), 3, "{second}");
    fleet.shutdown().await;
}
