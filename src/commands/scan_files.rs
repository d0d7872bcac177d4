//! What `keyctl scan` reads: the files under its paths, walked in parallel as
//! ripgrep walks them (the `ignore` crate: .gitignore, .ignore and hidden files
//! skipped unless `--all`), or stdin. Each file is read in pieces with an overlap of
//! the longest secret, so memory stays flat whatever a file's size, and searched with
//! `core::scan::Finder`. A file with a NUL byte is binary: skipped, as ripgrep and
//! git do. Only each secret's hash and display prefix leave this module.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ignore::{WalkBuilder, WalkState};

use crate::core::key::{display_prefix, hash_secret, parse};
use crate::core::scan::{Finder, LineCounter, MAX_SECRET_LEN};

/// Bytes read and searched at a time (plus the overlap): most files fit in one piece,
/// whose lines are then counted only up to the last secret found.
const PIECE: usize = 1 << 20;

/// Where a secret of the store's format was found. The secret itself is not kept.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The path as walked (`src/app.env`; `<stdin>`).
    pub path: String,
    /// From 1.
    pub line: u64,
    /// From 1, in bytes (as ripgrep counts).
    pub column: u64,
    pub hash: [u8; 32],
    /// `sk_live_4eC3`: the public display prefix.
    pub display: String,
}

/// Everything a walk found.
#[derive(Debug, Default)]
pub struct Walked {
    pub hits: Vec<Hit>,
    /// Text files searched.
    pub files: u64,
    /// Binary files skipped.
    pub binary: u64,
    /// Files and folders that could not be read, each as a one-line message.
    pub unreadable: Vec<String>,
}

/// Searches one stream. `None`: it is binary (a NUL byte), and what was found in it
/// before the NUL is dropped with it.
pub fn scan_reader(
    finder: &Finder,
    reader: &mut dyn Read,
    path: &str,
    buf: &mut Vec<u8>,
) -> io::Result<Option<Vec<Hit>>> {
    buf.clear();
    let mut lines = LineCounter::default();
    let mut hits = Vec::new();
    let mut from = 0;
    loop {
        let start = buf.len();
        let want = (PIECE + MAX_SECRET_LEN - start) as u64;
        let read = reader.take(want).read_to_end(buf)?;
        if memchr::memchr(0, &buf[start..]).is_some() {
            return Ok(None);
        }
        let eof = (read as u64) < want;
        let upto = if eof {
            buf.len()
        } else {
            buf.len() - MAX_SECRET_LEN
        };
        let mut counted = 0;
        let mut next_from = 0;
        finder.find(buf, from, upto, |found| {
            lines.advance(&buf[counted..found.offset]);
            counted = found.offset;
            let (line, column) = lines.here();
            if let Ok(key) = parse(found.secret) {
                hits.push(Hit {
                    path: path.to_string(),
                    line,
                    column,
                    hash: hash_secret(found.secret),
                    display: display_prefix(key.prefix, key.mode, key.body),
                });
            }
            next_from = found.offset + found.secret.len();
        });
        if eof {
            return Ok(Some(hits));
        }
        // The overlap is searched again with the next piece; a secret found across
        // the cut is not found twice.
        lines.advance(&buf[counted..upto]);
        buf.drain(..upto);
        from = next_from.saturating_sub(upto);
    }
}

/// How a path is shown: as given, without the `./` of the default root.
fn shown(path: &Path, default_root: bool) -> String {
    let path = if default_root {
        path.strip_prefix(".").unwrap_or(path)
    } else {
        path
    };
    path.to_string_lossy().into_owned()
}

/// Walks `roots` in parallel and searches every text file. `default_root`: the roots
/// are the `.` put there for no PATH.
pub fn scan_paths(finder: &Finder, roots: &[PathBuf], all: bool, default_root: bool) -> Walked {
    let Some((first, rest)) = roots.split_first() else {
        return Walked::default();
    };
    let mut builder = WalkBuilder::new(first);
    for root in rest {
        builder.add(root);
    }
    builder
        .hidden(!all)
        .ignore(!all)
        .git_ignore(!all)
        .git_global(!all)
        .git_exclude(!all)
        .parents(!all)
        // .gitignore means the same in a copy of a project without its .git folder.
        .require_git(false)
        .threads(0);
    let hits = Mutex::new(Vec::new());
    let unreadable = Mutex::new(Vec::new());
    let files = AtomicU64::new(0);
    let binary = AtomicU64::new(0);
    builder.build_parallel().run(|| {
        let mut buf = Vec::new();
        let (hits, unreadable, files, binary) = (&hits, &unreadable, &files, &binary);
        Box::new(move |entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    lock(unreadable).push(e.to_string());
                    return WalkState::Continue;
                }
            };
            // A root given by name is searched even as a symlink to a file.
            let is_file = entry.file_type().is_some_and(|t| t.is_file())
                || (entry.depth() == 0 && entry.path().is_file());
            if !is_file {
                return WalkState::Continue;
            }
            let path = shown(entry.path(), default_root);
            let searched = std::fs::File::open(entry.path())
                .and_then(|mut file| scan_reader(finder, &mut file, &path, &mut buf));
            match searched {
                Ok(Some(found)) => {
                    files.fetch_add(1, Ordering::Relaxed);
                    if !found.is_empty() {
                        lock(hits).extend(found);
                    }
                }
                Ok(None) => {
                    binary.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => lock(unreadable).push(format!("{path}: {e}")),
            }
            WalkState::Continue
        })
    });
    Walked {
        hits: into_inner(hits),
        files: files.into_inner(),
        binary: binary.into_inner(),
        unreadable: into_inner(unreadable),
    }
}

/// Searches stdin, shown as `<stdin>`.
pub fn scan_stdin(finder: &Finder) -> Walked {
    let mut buf = Vec::new();
    let mut walked = Walked::default();
    let path = "<stdin>";
    match scan_reader(finder, &mut io::stdin().lock(), path, &mut buf) {
        Ok(Some(hits)) => {
            walked.files = 1;
            walked.hits = hits;
        }
        Ok(None) => walked.binary = 1,
        Err(e) => walked.unreadable.push(format!("{path}: {e}")),
    }
    walked
}

/// A lock whose holder panicked still holds whole pushes: use it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::{assemble, Mode};

    const BODY: &str = "4eC39HqLyjWDarjtT1zdp7dcABCDEFGH";

    fn search(bytes: &[u8]) -> Option<Vec<(u64, u64)>> {
        let finder = Finder::new(&["sk"]).unwrap();
        let mut buf = Vec::new();
        scan_reader(&finder, &mut &bytes[..], "x", &mut buf)
            .unwrap()
            .map(|hits| hits.iter().map(|h| (h.line, h.column)).collect())
    }

    #[test]
    fn secrets_across_pieces_are_found_once_with_their_lines() {
        let secret = assemble("sk", Mode::Live, BODY).expose().to_string();
        // One secret cut by the first piece's end, one in the overlap, one far after.
        let mut text = Vec::new();
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrs\n";
        while text.len() < PIECE - 10 {
            text.extend_from_slice(line);
        }
        let lines_before = text.iter().filter(|&&b| b == b'\n').count() as u64;
        text.extend_from_slice(b"k=");
        let first_col = (text.len() - lines_before as usize * line.len()) as u64 + 1;
        text.extend_from_slice(secret.as_bytes());
        text.push(b' ');
        text.extend_from_slice(secret.as_bytes());
        text.push(b'\n');
        for _ in 0..20_000 {
            text.extend_from_slice(line);
        }
        text.extend_from_slice(secret.as_bytes());
        let found = search(&text).unwrap();
        let last_line = lines_before + 1 + 20_000 + 1;
        assert_eq!(
            found,
            vec![
                (lines_before + 1, first_col),
                (lines_before + 1, first_col + secret.len() as u64 + 1),
                (last_line, 1),
            ]
        );
    }

    #[test]
    fn a_nul_byte_makes_a_file_binary() {
        let secret = assemble("sk", Mode::Live, BODY).expose().to_string();
        assert_eq!(search(secret.as_bytes()), Some(vec![(1, 1)]));
        let mut bytes = secret.into_bytes();
        bytes.push(0);
        assert_eq!(search(&bytes), None);
        assert_eq!(search(b""), Some(vec![]));
    }
}
