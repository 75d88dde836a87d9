//! A part's log file on a developer's machine, capped: `./dev` pipes each process's
//! output through `fleet log FILE`, which appends it to FILE and, when FILE reaches its
//! cap, moves it to FILE.1 (replacing the one before) and starts FILE again — at most
//! twice the cap on disk per part, the newest lines always in FILE.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

/// The cap of one log file unless `HOUSEBOOK_LOG_FILE_MAX_BYTES` says otherwise: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Where the file before the current one goes.
pub fn previous(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Appends `input`, line by line, to `path`, each line written out as it comes (a reader
/// of the file sees it at once), moving the file aside whenever it has reached
/// `max_bytes`. Returns at the end of `input`.
pub fn keep(mut input: impl BufRead, path: &Path, max_bytes: u64) -> io::Result<()> {
    let open = || OpenOptions::new().create(true).append(true).open(path);
    let mut file: File = open()?;
    let mut size = file.metadata()?.len();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if size > 0 && size + line.len() as u64 > max_bytes {
            std::fs::rename(path, previous(path))?;
            file = open()?;
            size = 0;
        }
        file.write_all(&line)?;
        size += line.len() as u64;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_log_moves_aside_at_its_cap_and_keeps_every_line_of_the_last_two_files() {
        let dir = std::env::temp_dir().join(format!("fleet-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("book.log");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(previous(&path));
        // 100 lines of 10 bytes into files of at most 250 bytes.
        let lines: String = (0..100).map(|i| format!("line {i:04}\n")).collect();
        keep(lines.as_bytes(), &path, 250).unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        let before = std::fs::read_to_string(previous(&path)).unwrap();
        assert!(
            now.len() <= 250 && before.len() <= 250,
            "{} {}",
            now.len(),
            before.len()
        );
        assert_eq!(before.len(), 250, "a file moves aside full");
        assert!(
            now.ends_with("line 0099\n"),
            "the newest lines in the file: {now}"
        );
        assert!(
            before.ends_with(
                &now.lines()
                    .next()
                    .map(|l| {
                        let n: u32 = l[5..].parse().unwrap();
                        format!("line {:04}\n", n - 1)
                    })
                    .unwrap()
            ),
            "the file before ends where this one begins"
        );
        // Appending again continues the file, and a line longer than the cap is kept whole.
        let long = format!("{}\n", "x".repeat(400));
        keep(long.as_bytes(), &path, 250).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), long);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
