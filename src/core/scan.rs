//! Finding a store's secrets in bytes (`keyctl scan`): a multi-string prefilter
//! (Aho-Corasick over the store's `<prefix>_live_` and `<prefix>_test_` heads) finds
//! where a secret may start, then the key format and its CRC32 checksum
//! (`key::parse`) decide. No files and no store here: the caller feeds bytes and
//! looks the hashes up.
//!
//! No word boundary is asked for around a secret: the checksum already makes a false
//! match a 1 in 2^32 chance, and a key glued to other text (`Bearersk_live_...`,
//! `KEY=x${sk_live_...}`) is still leaked. The scanner rules, which cannot check the
//! checksum, ask for boundaries instead (`core::scan_rules`).

use aho_corasick::{packed, AhoCorasick, Input, MatchKind, Span};

use super::key::{self, Mode, BODY_LEN};

/// The longest secret: a 16-character prefix, `_live_`, the body.
pub const MAX_SECRET_LEN: usize = 16 + "_live_".len() + BODY_LEN;

/// Where the secrets of a store's prefixes may start.
#[derive(Debug, Clone)]
pub struct Finder {
    heads: Heads,
}

/// The search for heads. Teddy (SIMD, `packed`) when the CPU has it: with a few
/// heads of 6 to 22 bytes, `AhoCorasick` would pick a rare-byte prefilter, and the
/// underscore it picks is common in code (several times slower on the benchmark's
/// tree). The automaton otherwise.
#[derive(Debug, Clone)]
enum Heads {
    Packed(packed::Searcher),
    Automaton(AhoCorasick),
}

impl Heads {
    /// The leftmost-longest head starting at or after `from`.
    fn find(&self, buf: &[u8], from: usize) -> Option<aho_corasick::Match> {
        match self {
            Heads::Packed(s) => s.find_in(buf, Span::from(from..buf.len())),
            Heads::Automaton(ac) => ac.find(Input::new(buf).range(from..)),
        }
    }
}

/// A checksum-valid secret found in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Found<'a> {
    /// Byte offset of its first character in the buffer.
    pub offset: usize,
    pub secret: &'a str,
}

impl Finder {
    /// A finder for secrets of these key prefixes (each already valid: `[a-z0-9]{1,16}`),
    /// both modes.
    pub fn new<S: AsRef<str>>(prefixes: &[S]) -> Result<Finder, String> {
        Finder::build(prefixes, true)
    }

    /// `packed`: use Teddy when the CPU has it (false: the automaton, for tests).
    fn build<S: AsRef<str>>(prefixes: &[S], packed: bool) -> Result<Finder, String> {
        let heads: Vec<String> = prefixes
            .iter()
            .flat_map(|p| {
                [Mode::Live, Mode::Test].map(|m| format!("{}_{}_", p.as_ref(), m.as_str()))
            })
            .collect();
        let teddy = packed
            .then(|| {
                packed::Config::new()
                    .match_kind(packed::MatchKind::LeftmostLongest)
                    .builder()
                    .extend(&heads)
                    .build()
            })
            .flatten();
        let heads = match teddy {
            Some(searcher) => Heads::Packed(searcher),
            None => Heads::Automaton(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&heads)
                    .map_err(|e| format!("cannot build the prefix search: {e}"))?,
            ),
        };
        Ok(Finder { heads })
    }

    /// Calls `each` for every checksum-valid secret that starts in `buf[from..upto]`,
    /// in order. A secret must lie wholly inside `buf`: a caller reading in chunks
    /// keeps at least [`MAX_SECRET_LEN`] bytes after `upto` (or passes the end).
    pub fn find(&self, buf: &[u8], from: usize, upto: usize, mut each: impl FnMut(Found<'_>)) {
        let mut pos = from;
        while pos < upto {
            let Some(m) = self.heads.find(buf, pos) else {
                return;
            };
            if m.start() >= upto {
                return;
            }
            let end = m.end() + BODY_LEN;
            let secret = buf
                .get(m.start()..end)
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .filter(|text| key::parse(text).is_ok());
            match secret {
                Some(secret) => {
                    each(Found {
                        offset: m.start(),
                        secret,
                    });
                    pos = end;
                }
                // A head inside this candidate may start another one (a prefix that
                // ends another's, `live_test_...`): go on one byte later.
                None => pos = m.start() + 1,
            }
        }
    }
}

/// Line and column (both from 1; the column counts bytes, as ripgrep's does) of
/// offsets in a stream read in pieces: feed it every byte up to each offset once.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineCounter {
    /// Lines completed before the counted bytes' end.
    newlines: u64,
    /// Bytes counted so far.
    counted: u64,
    /// Offset just after the last newline counted.
    line_start: u64,
}

impl LineCounter {
    /// Counts `bytes`, the stream's next bytes.
    pub fn advance(&mut self, bytes: &[u8]) {
        if let Some(last) = memchr::memrchr(b'\n', bytes) {
            // A plain count, which the compiler vectorises: faster than a search per
            // newline in text of short lines.
            self.newlines += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            self.line_start = self.counted + last as u64 + 1;
        }
        self.counted += bytes.len() as u64;
    }

    /// The position of the byte just after those counted.
    pub fn here(&self) -> (u64, u64) {
        (self.newlines + 1, self.counted - self.line_start + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::assemble;

    fn secret(prefix: &str, mode: Mode, body: &str) -> String {
        assemble(prefix, mode, body).expose().to_string()
    }

    /// What both searchers (Teddy and the automaton) find in `text`, which must agree.
    fn found(prefixes: &[&str], text: &str) -> Vec<(usize, String)> {
        let run = |finder: Finder| {
            let mut out = Vec::new();
            finder.find(text.as_bytes(), 0, text.len(), |f| {
                out.push((f.offset, f.secret.to_string()))
            });
            out
        };
        let automaton = Finder::build(prefixes, false).unwrap();
        assert!(matches!(automaton.heads, Heads::Automaton(_)));
        let out = run(Finder::new(prefixes).unwrap());
        assert_eq!(out, run(automaton), "the two searchers differ on {text:?}");
        out
    }

    const BODY: &str = "4eC39HqLyjWDarjtT1zdp7dcABCDEFGH";

    #[test]
    fn finds_valid_secrets_anywhere_and_only_those() {
        let live = secret("sk", Mode::Live, BODY);
        let test = secret("sk", Mode::Test, BODY);
        let text = format!("a={live}\n\"{test}\"x{live}9");
        assert_eq!(
            found(&["sk"], &text),
            vec![
                (2, live.clone()),
                (2 + live.len() + 2, test.clone()),
                (2 + live.len() + 2 + test.len() + 2, live.clone()),
            ]
        );
        let mut broken = live.clone().into_bytes();
        broken[20] = if broken[20] == b'a' { b'b' } else { b'a' };
        let broken = String::from_utf8(broken).unwrap();
        assert!(found(&["sk"], &broken).is_empty());
        assert!(found(&["sk"], &live[..live.len() - 1]).is_empty());
        // Another store's prefix is not this store's secret.
        let other = secret("pk", Mode::Live, BODY);
        assert!(found(&["sk"], &other).is_empty());
    }

    #[test]
    fn a_failed_head_does_not_hide_a_secret_inside_it() {
        let inner = secret("live", Mode::Test, BODY);
        let text = format!("sk_{inner}");
        assert_eq!(found(&["sk", "live"], &text), vec![(3, inner)]);
        let long = secret("ask", Mode::Live, BODY);
        assert_eq!(found(&["sk", "ask"], &long), vec![(0, long.clone())]);
        // A store's own secret glued after another store's prefix letter.
        let glued = secret("sk", Mode::Live, BODY);
        assert_eq!(
            found(&["sk", "ask"], &format!("a{glued}")),
            vec![(1, glued)]
        );
    }

    #[test]
    fn only_starts_in_range_are_reported() {
        let live = secret("sk", Mode::Live, BODY);
        let text = format!("{live} {live}");
        let finder = Finder::new(&["sk"]).unwrap();
        let mut starts = Vec::new();
        finder.find(text.as_bytes(), 1, text.len(), |f| starts.push(f.offset));
        assert_eq!(starts, vec![live.len() + 1]);
        starts.clear();
        finder.find(text.as_bytes(), 0, live.len(), |f| starts.push(f.offset));
        assert_eq!(starts, vec![0]);
    }

    #[test]
    fn lines_and_columns_across_pieces() {
        let mut c = LineCounter::default();
        assert_eq!(c.here(), (1, 1));
        c.advance(b"ab");
        assert_eq!(c.here(), (1, 3));
        c.advance(b"c\nd");
        assert_eq!(c.here(), (2, 2));
        c.advance(b"\n\n");
        assert_eq!(c.here(), (4, 1));
        c.advance(b"");
        assert_eq!(c.here(), (4, 1));
    }

    #[test]
    fn the_longest_secret_fits() {
        let s = secret("a123456789012345", Mode::Live, BODY);
        assert_eq!(s.len(), MAX_SECRET_LEN);
    }
}
