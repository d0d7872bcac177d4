//! The one json writer of keyctl's output. serde_json escapes only C0 controls, `"`
//! and `\`; a stored value may also hold DEL, C1 controls, format characters (U+202E,
//! zero-width spaces) and U+2028/2029, which would reach a terminal or a log viewer
//! raw. They are written as `\uXXXX` too (SPEC §5); the json still parses back to the
//! original string.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter, Serializer};

use crate::core::text::is_hidden;

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
        while let Some((i, c)) = rest.char_indices().find(|&(_, c)| is_hidden(c)) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
