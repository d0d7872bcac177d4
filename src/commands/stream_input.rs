//! The request lines of `verify --stream`, taken so that a group never waits (SPEC §7):
//! the first line of a group is waited for; after it, a line is taken only when it is
//! whole in the buffer or completed by reads that a zero-timeout `poll` said cannot
//! wait. A line split across reads still joins the group when its end is there
//! already, so pipelined input forms groups of any size, not one buffer's worth.

use std::io::{self, Read};
use std::ops::Range;

use memchr::memchr;

use crate::core::fields::MAX_LINE;
use crate::ui::output::poll_now;

/// Bytes asked of the input per read.
const READ_CHUNK: usize = 64 * 1024;

/// An input that can tell whether a read would return at once.
pub trait Source: Read {
    /// True when a read returns without waiting (bytes, or the end of input, are there).
    fn ready(&self) -> bool;
}

/// What [`StreamInput::next`] took.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken<'a> {
    /// One line, its newline kept (the last line of the input may have none).
    Line(&'a [u8]),
    /// A line longer than [`MAX_LINE`]: refused whole; the rest of it is skipped.
    TooLong,
    /// The input has ended.
    Eof,
    /// No whole line can be taken without waiting (only when not asked to wait).
    NotYet,
}

/// What one step of [`StreamInput::next`] found, as positions in the buffer (a borrow
/// of it is only taken once the search is over).
enum Found {
    Line(Range<usize>),
    TooLong,
    Eof,
    NotYet,
}

pub struct StreamInput<S> {
    source: S,
    /// `buf[start..end]` is read and not taken yet; at most one partial line once no
    /// newline is in it, so it never holds more than `MAX_LINE + READ_CHUNK` bytes.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// The rest of an over-long line is being discarded, up to its newline.
    skipping: bool,
}

impl<S: Source> StreamInput<S> {
    pub fn new(source: S) -> StreamInput<S> {
        StreamInput {
            source,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            skipping: false,
        }
    }

    /// The next line. With `wait`, reads until a line (or the end) is there; without,
    /// reads only while the source is ready, and answers `NotYet` otherwise.
    pub fn next(&mut self, wait: bool) -> io::Result<Taken<'_>> {
        let found = loop {
            if let Some(found) = self.take() {
                break found;
            }
            if !wait && !self.source.ready() {
                break Found::NotYet;
            }
            self.fill()?;
        };
        Ok(match found {
            Found::Line(range) => Taken::Line(&self.buf[range]),
            Found::TooLong => Taken::TooLong,
            Found::Eof => Taken::Eof,
            Found::NotYet => Taken::NotYet,
        })
    }

    /// What the bytes read so far give, or None when more must be read.
    fn take(&mut self) -> Option<Found> {
        if self.skipping {
            match memchr(b'\n', &self.buf[self.start..self.end]) {
                Some(i) => {
                    self.start += i + 1;
                    self.skipping = false;
                }
                None => {
                    self.start = self.end;
                    return self.eof.then_some(Found::Eof);
                }
            }
        }
        let pending = self.start..self.end;
        if let Some(i) = memchr(b'\n', &self.buf[pending.clone()]) {
            self.start += i + 1;
            // The same bound as `read_bounded_line`: MAX_LINE bytes and the newline.
            return Some(if i > MAX_LINE {
                Found::TooLong
            } else {
                Found::Line(pending.start..self.start)
            });
        }
        if pending.len() > MAX_LINE {
            self.start = self.end;
            self.skipping = true;
            return Some(Found::TooLong);
        }
        if self.eof {
            self.start = self.end;
            return Some(if pending.is_empty() {
                Found::Eof
            } else {
                Found::Line(pending)
            });
        }
        None
    }

    /// One read, after the partial line left is moved to the front of the buffer.
    fn fill(&mut self) -> io::Result<()> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.buf.len() < self.end + READ_CHUNK {
            self.buf.resize(self.end + READ_CHUNK, 0);
        }
        loop {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            return Ok(());
        }
    }
}

/// Standard input, ready when a zero-timeout `poll` says so.
pub struct Stdin(pub io::StdinLock<'static>);

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Reads of READ_CHUNK bypass std's own 8 KiB buffer once it is empty, so
        // `poll` sees every byte not yet taken.
        self.0.read(buf)
    }
}

impl Source for Stdin {
    fn ready(&self) -> bool {
        poll_now(0, libc::POLLIN) & (libc::POLLIN | libc::POLLHUP) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Input arriving in pieces: `now` of them are there already, the rest only come
    /// to a read that waits.
    struct Pieces {
        pieces: VecDeque<Vec<u8>>,
        now: usize,
        reads: usize,
    }

    impl Pieces {
        fn new(pieces: &[&[u8]], now: usize) -> Pieces {
            Pieces {
                pieces: pieces.iter().map(|p| p.to_vec()).collect(),
                now,
                reads: 0,
            }
        }
    }

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            self.now = self.now.saturating_sub(1);
            let Some(mut piece) = self.pieces.pop_front() else {
                return Ok(0);
            };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            if n < piece.len() {
                piece.drain(..n);
                self.pieces.push_front(piece);
                self.now += 1;
            }
            Ok(n)
        }
    }

    impl Source for Pieces {
        fn ready(&self) -> bool {
            self.now > 0 || self.pieces.is_empty()
        }
    }

    fn line(taken: Taken<'_>) -> String {
        match taken {
            Taken::Line(l) => String::from_utf8(l.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_line_split_across_reads_joins_the_group_when_its_end_is_there() {
        let mut input = StreamInput::new(Pieces::new(&[b"a\nb", b"b\nc", b"c\n"], 2));
        assert_eq!(line(input.next(true).unwrap()), "a\n");
        assert_eq!(line(input.next(false).unwrap()), "bb\n");
        // "cc"'s end is not there yet: the group ends rather than wait for it.
        assert_eq!(input.next(false).unwrap(), Taken::NotYet);
        assert_eq!(input.source.reads, 2);
        assert_eq!(line(input.next(true).unwrap()), "cc\n");
        assert_eq!(input.next(true).unwrap(), Taken::Eof);
    }

    #[test]
    fn nothing_is_read_for_a_group_when_the_source_is_not_ready() {
        let mut input = StreamInput::new(Pieces::new(&[b"a\n", b"b\n"], 1));
        assert_eq!(line(input.next(true).unwrap()), "a\n");
        assert_eq!(input.next(false).unwrap(), Taken::NotYet);
        assert_eq!(input.source.reads, 1);
        assert_eq!(line(input.next(true).unwrap()), "b\n");
    }

    #[test]
    fn the_last_line_needs_no_newline() {
        let mut input = StreamInput::new(Pieces::new(&[b"a\nlast"], 1));
        assert_eq!(line(input.next(true).unwrap()), "a\n");
        assert_eq!(line(input.next(false).unwrap()), "last");
        assert_eq!(input.next(false).unwrap(), Taken::Eof);
        assert_eq!(input.next(true).unwrap(), Taken::Eof);
    }

    #[test]
    fn an_over_long_line_is_refused_once_and_the_next_line_is_whole() {
        let longest = format!("{}\n", "x".repeat(MAX_LINE));
        let over = format!("{}\n", "y".repeat(MAX_LINE + 1));
        let far_over = "z".repeat(3 * MAX_LINE);
        let text = format!("{longest}{over}{far_over}\nafter\n");
        // Small pieces, all there at once, and one big piece.
        let small: Vec<&[u8]> = text.as_bytes().chunks(1000).collect();
        for pieces in [small, vec![text.as_bytes()]] {
            let n = pieces.len();
            let mut input = StreamInput::new(Pieces::new(&pieces, n));
            assert_eq!(line(input.next(true).unwrap()), longest);
            assert_eq!(input.next(false).unwrap(), Taken::TooLong);
            assert_eq!(input.next(false).unwrap(), Taken::TooLong);
            assert_eq!(line(input.next(false).unwrap()), "after\n");
            assert_eq!(input.next(false).unwrap(), Taken::Eof);
            assert!(input.buf.len() <= MAX_LINE + READ_CHUNK);
        }
    }

    #[test]
    fn an_over_long_line_cut_by_the_end_of_input_is_refused() {
        let text = "w".repeat(MAX_LINE + 10);
        let mut input = StreamInput::new(Pieces::new(&[text.as_bytes()], 1));
        assert_eq!(input.next(true).unwrap(), Taken::TooLong);
        assert_eq!(input.next(true).unwrap(), Taken::Eof);
    }
}
