//! The one json writer of keyctl's output. serde_json escapes only C0 controls, `"`
//! and `\`; a stored value may also hold DEL, C1 controls, format characters (U+202E,
//! zero-width spaces) and U+2028/2029, which would reach a terminal or a log viewer
//! raw. They are written as `\uXXXX` too (SPEC §5); the json still parses back to the
//! original string.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter, Serializer};

use crate::core::text::{first_hidden, is_hidden};

/// A formatter that escapes hidden characters in strings and otherwise lays out json
/// as `F` does.
struct Escaping<F>(F);

macro_rules! delegate {
    ($($name:ident $(($arg:ident: $ty:ty))?),* $(,)?) => {
        $(
            fn $name<W: ?Sized + Write>(&mut self, w: &mut W $(, $arg: $ty)?) -> io::Result<()> {
                self.0.$name(w $(, $arg)?)
            }
        )*
    };
}

impl<F: Formatter> Formatter for Escaping<F> {
    delegate!(
        begin_array,
        end_array,
        begin_array_value(first: bool),
        end_array_value,
        begin_object,
        end_object,
        begin_object_key(first: bool),
        end_object_key,
        begin_object_value,
        end_object_value,
    );

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = first_hidden(rest) {
            w.write_all(&rest.as_bytes()[..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            rest = &rest[i + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
}

fn serialize<T: Serialize + ?Sized, F: Formatter>(
    out: &mut dyn Write,
    value: &T,
    formatter: F,
) -> io::Result<()> {
    let mut ser = Serializer::with_formatter(out, Escaping(formatter));
    // From keeps the writer's own io error (a closed pipe stays BrokenPipe).
    value.serialize(&mut ser).map_err(io::Error::from)
}

/// Compact json (no newline).
pub fn write<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serialize(out, value, CompactFormatter)
}

/// Indented json (no newline).
pub fn write_pretty<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serialize(out, value, PrettyFormatter::new())
}

/// Compact json in a buffer, for output written in one piece.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(256);
    write(&mut buf, value)?;
    Ok(buf)
}

/// Appends `s` as a json string, escaped exactly as [`write`] escapes it (serde_json's
/// escapes, then hidden characters as `\uXXXX`), for writers that build a record's
/// json by hand: `list --json` and batch reveals write every row this way.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // Printable ASCII other than `"` and `\` is copied as it is: the usual case.
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        if b < 0x80 {
            out.extend_from_slice(&bytes[start..i]);
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                // Other C0 controls and DEL.
                _ => push_unit(out, u16::from(b)),
            }
            i += 1;
            start = i;
            continue;
        }
        // A multi-byte character: `i` is on its first byte (s is valid UTF-8).
        let c = s[i..].chars().next().unwrap_or('\u{fffd}');
        let len = c.len_utf8();
        if is_hidden(c) {
            out.extend_from_slice(&bytes[start..i]);
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                push_unit(out, *unit);
            }
            start = i + len;
        }
        i += len;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `\uXXXX` in lower-case hex, as serde_json writes it.
fn push_unit(out: &mut Vec<u8>, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((unit >> shift) & 0xf)]);
    }
}

/// Appends an optional string: the string, or `null`.
pub fn push_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends an optional count: the number, or `null`.
pub fn push_opt_u64(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => push_u64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends a number as serde_json writes a u64.
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends a list of strings as a json array.
pub fn push_str_list(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn via_serde(s: &str) -> Vec<u8> {
        to_vec(s).unwrap()
    }

    fn by_hand(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        push_str(&mut out, s);
        out
    }

    #[test]
    fn hand_written_strings_match_the_serde_writer_on_every_kind_of_character() {
        // Every C0 control, DEL, C1 controls, quotes, backslashes, format characters,
        // the line separators, astral characters (a tag character: two \u units).
        let mut all = String::new();
        for c in (0u32..0x100).chain([0x2028, 0x2029, 0x202e, 0x200b, 0xfeff, 0xe0041, 0x1f600]) {
            let c = char::from_u32(c).unwrap();
            all.push(c);
            assert_eq!(by_hand(&c.to_string()), via_serde(&c.to_string()), "{c:?}");
        }
        assert_eq!(by_hand(&all), via_serde(&all));
        assert_eq!(by_hand(""), via_serde(""));
    }

    #[test]
    fn hand_written_numbers_and_lists_match_serde() {
        for n in [0, 1, 9, 10, 99, 12345, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, to_vec(&n).unwrap());
        }
        let items = vec!["a".to_string(), "\u{1b}\"".into(), "é".into()];
        let mut out = Vec::new();
        push_str_list(&mut out, &items);
        assert_eq!(out, to_vec(&items).unwrap());
        let mut out = Vec::new();
        push_str_list(&mut out, &[]);
        assert_eq!(out, b"[]");
    }

    proptest! {
        #[test]
        fn hand_written_strings_match_serde_on_random_text(s in "\\PC*|[\\x00-\\x7f\\u{80}-\\u{10ffff}]{0,40}", raw in proptest::collection::vec(any::<char>(), 0..40)) {
            prop_assert_eq!(by_hand(&s), via_serde(&s));
            let raw: String = raw.into_iter().collect();
            prop_assert_eq!(by_hand(&raw), via_serde(&raw));
        }
    }

    #[test]
    fn hidden_characters_are_escaped_and_round_trip() {
        let original = "a\u{1b}b\u{7f}c\u{85}d\u{202e}e\u{2028}f\u{200b}g\u{e0041}h\"\\é😀";
        let text =
            String::from_utf8(to_vec(&serde_json::json!({ "name": original })).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\"name\":\"a\\u001bb\\u007fc\\u0085d\\u202ee\\u2028f\\u200bg\\udb40\\udc41h\\\"\\\\é😀\"}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], original);
    }

    #[test]
    fn pretty_keeps_its_layout() {
        let mut buf = Vec::new();
        write_pretty(&mut buf, &serde_json::json!({ "a": [1, "\u{202e}"] })).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\n  \"a\": [\n    1,\n    \"\\u202e\"\n  ]\n}"
        );
    }
}
