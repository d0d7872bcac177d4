//! One json object per input line (`verify --stream`, `create --batch`), read field by
//! field with our own checks, so every problem is told the same way in plain words:
//! which field, what it must be, what it was. A parser's own text (serde's "untagged
//! enum", "expected ident") is never shown: it speaks of Rust types, not of the input.

use std::fmt;
use std::io::{self, BufRead, Read};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::core::limits::MAX_COUNT;

/// Longest line read as one request or batch entry; longer lines are refused whole.
pub const MAX_LINE: usize = 64 * 1024;

/// The problem with a line longer than [`MAX_LINE`].
pub fn too_long() -> String {
    format!("the line is longer than {MAX_LINE} bytes")
}

/// What [`read_bounded_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// The input has ended.
    Eof,
    /// One whole line is in the buffer, its newline kept (the last line may have none).
    Line,
    /// The line is longer than [`MAX_LINE`]: the buffer holds its first `MAX_LINE + 1`
    /// bytes and the rest is still unread.
    TooLong,
}

/// Reads one line into `buf` (cleared first), holding at most `MAX_LINE + 1` bytes, so
/// input without newlines cannot exhaust memory.
pub fn read_bounded_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    let n = reader.take(MAX_LINE as u64 + 1).read_until(b'\n', buf)?;
    Ok(if n == 0 {
        Line::Eof
    } else if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
        Line::TooLong
    } else {
        Line::Line
    })
}

/// The members of one input line, in the order given (duplicates refused).
#[derive(Debug)]
pub struct JsonLine {
    fields: Vec<(String, Value)>,
}

/// Parses one line (without its newline) into an object. `example` shows a good line
/// in the messages for a blank or non-object line.
pub fn parse_line(line: &[u8], example: &str) -> Result<JsonLine, String> {
    let text = std::str::from_utf8(line).map_err(|e| {
        format!(
            "the line is not UTF-8 text (invalid byte at column {})",
            e.valid_up_to() + 1
        )
    })?;
    if text.trim().is_empty() {
        return Err(format!(
            "the line is empty; send one json object like {example}"
        ));
    }
    // One value, then nothing but whitespace ("{} {}" is malformed too).
    let mut de = serde_json::Deserializer::from_str(text);
    let top = (&mut de)
        .deserialize_any(TopVisitor)
        .and_then(|top| de.end().map(|_| top))
        .map_err(|e| syntax_problem(text, &e))?;
    match top {
        Top::Other(what) => Err(format!(
            "the line must be one json object like {example}, got {what}"
        )),
        Top::Object(fields) => {
            for (i, (name, _)) in fields.iter().enumerate() {
                if fields[..i].iter().any(|(earlier, _)| earlier == name) {
                    return Err(format!(
                        "field `{name}` is given twice; give each field once"
                    ));
                }
            }
            Ok(JsonLine { fields })
        }
    }
}

/// serde_json's error in our words: its category and column, not its text.
fn syntax_problem(text: &str, e: &serde_json::Error) -> String {
    let column = e.column();
    if e.classify() == serde_json::error::Category::Eof {
        return format!(
            "the line is not valid json: it ends at column {column} before the object is complete"
        );
    }
    let at = column
        .checked_sub(1)
        .and_then(|i| text.get(i..))
        .and_then(|rest| rest.chars().next());
    let before = text.get(..column.saturating_sub(1)).unwrap_or("");
    let (depth, in_string) = scan(before);
    // A misspelt word (`tru`, `nul`, an unquoted string) fails just after it.
    let word_len = before
        .bytes()
        .rev()
        .take_while(u8::is_ascii_alphanumeric)
        .count();
    let word = &before[before.len() - word_len..];
    if !in_string && word.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) {
        return format!(
            "the line is not valid json: `{word}` at column {} is not a json value; use true, false, null, a number or a \"quoted string\"",
            column - word_len
        );
    }
    match at {
        Some('{' | '[') if depth >= 100 => {
            format!("the line is not valid json: too deeply nested at column {column}")
        }
        Some(c) if c.is_ascii_graphic() => {
            // The two slips people make most when typing json by hand.
            let hint = match (c, before.trim_end().chars().last()) {
                ('\'', _) => "; json strings and field names take double quotes",
                (c, Some('{' | ',')) if c.is_ascii_alphabetic() => {
                    "; field names take double quotes"
                }
                _ => "",
            };
            format!(
                "the line is not valid json: unexpected character `{c}` at column {column}{hint}"
            )
        }
        // By code point: a control character, BOM or bidi override printed raw would
        // hide itself or garble the terminal.
        Some(c) => format!(
            "the line is not valid json: unexpected character U+{:04X} at column {column}",
            c as u32
        ),
        None => format!("the line is not valid json: unexpected input at column {column}"),
    }
}

/// At the end of `prefix`: how many brackets are open (strings skipped), and whether
/// it stops inside a string. serde_json's nesting limit fails on a bracket, like any
/// other unexpected one; a misspelt word is only a word outside a string.
fn scan(prefix: &str) -> (usize, bool) {
    let (mut open, mut in_string, mut escaped) = (0usize, false, false);
    for c in prefix.chars() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, false, _) => {}
            (false, _, '"') => in_string = true,
            (false, _, '{' | '[') => open += 1,
            (false, _, '}' | ']') => open = open.saturating_sub(1),
            _ => {}
        }
    }
    (open, in_string)
}

/// What a line turned out to be at its top level.
enum Top {
    /// Members in order, duplicates kept so they can be refused.
    Object(Vec<(String, Value)>),
    /// Not an object: what it was, in words.
    Other(String),
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut fields = Vec::new();
        while let Some((name, value)) = map.next_entry::<String, Value>()? {
            fields.push((name, value));
        }
        Ok(Top::Object(fields))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::Other("a list".into()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
        Ok(Top::Other("null".into()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Top, E> {
        Ok(Top::Other(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
        Ok(Top::Other("a number".into()))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
        Ok(Top::Other("a number".into()))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
        Ok(Top::Other("a number".into()))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
        Ok(Top::Other("a string".into()))
    }
}

/// A value in words for "got ...": numbers and short number-like text as given,
/// anything else by its kind, so free text (perhaps a pasted secret) is never echoed.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.is_empty() => "an empty string".into(),
        Value::String(s)
            if s.len() <= 32
                && s.chars().all(|c| {
                    c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E' | ' ')
                }) =>
        {
            format!("\"{s}\"")
        }
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

impl JsonLine {
    fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// Refuses a member not in `known` (batch: a misspelt field must not be dropped).
    pub fn refuse_unknown(&self, known: &[&str]) -> Result<(), String> {
        match self
            .fields
            .iter()
            .find(|(n, _)| !known.contains(&n.as_str()))
        {
            None => Ok(()),
            Some((name, _)) => Err(format!(
                "unknown field `{name}`; fields are {}",
                known.join(", ")
            )),
        }
    }

    /// A string member; absent or null is `None`.
    pub fn text(&self, name: &str) -> Result<Option<&str>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "field `{name}` must be a string, got {}",
                describe(other)
            )),
        }
    }

    /// A string member that must be there.
    pub fn required_text(&self, name: &str) -> Result<&str, String> {
        self.text(name)?
            .ok_or_else(|| format!("field `{name}` is missing; it is required"))
    }

    /// A whole number from `min` to [`MAX_COUNT`], as a json number or a string of
    /// digits (`100` or `"100"`).
    pub fn count(&self, name: &str, min: u64) -> Result<Option<u64>, String> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let n = match v {
            // `1e3` is a whole number too (json has one number type).
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && (0.0..=MAX_COUNT as f64).contains(f))
                    .map(|f| f as u64)
            }),
            Value::String(s) => {
                let t = s.trim();
                if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                    // Too many digits for u64 is simply too large.
                    Some(t.parse::<u64>().unwrap_or(u64::MAX))
                } else {
                    None
                }
            }
            _ => None,
        };
        match n {
            Some(n) if (min..=MAX_COUNT).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "field `{name}` must be a whole number from {min} to {MAX_COUNT}, got {}",
                describe(v)
            )),
        }
    }

    /// A list of strings, or one string of comma-separated items; absent is empty.
    pub fn list(&self, name: &str) -> Result<Vec<String>, String> {
        let wrong = |what: String| {
            format!(
                "field `{name}` must be a list of strings or a comma-separated string, got {what}"
            )
        };
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(s.split(',').map(|s| s.trim().to_string()).collect()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong(format!("{} as item {}", describe(other), i + 1))),
                })
                .collect(),
            Some(other) => Err(wrong(describe(other))),
        }
    }

    /// An object whose members are all strings, sorted by name (a name given twice
    /// inside it keeps its last value, as json parsers do); absent or null is empty.
    /// A member's name is not echoed unless it is plain (it may be anything).
    pub fn string_map(&self, name: &str) -> Result<Vec<(&str, &str)>, String> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(members)) => members
                .iter()
                .map(|(key, v)| match v {
                    Value::String(s) => Ok((key.as_str(), s.as_str())),
                    other => Err(format!(
                        "field `{name}` must be an object of strings, got {} for {}",
                        describe(other),
                        // Only a key of metadata's own form (core::meta) is quoted.
                        if crate::core::meta::validate_key("", key).is_ok() {
                            format!("'{key}'")
                        } else {
                            "one of its keys".to_string()
                        }
                    )),
                })
                .collect(),
            Some(other) => Err(format!(
                "field `{name}` must be an object of strings like {{\"tenant\": \"acme\"}}, got {}",
                describe(other)
            )),
        }
    }

    /// `true` or `false`; absent or null is `false`.
    pub fn flag(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(format!(
                "field `{name}` must be true or false, got {}",
                describe(other)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"key": "..."}"#;

    fn problem(line: &str) -> String {
        parse_line(line.as_bytes(), EXAMPLE).unwrap_err()
    }

    #[test]
    fn bounded_lines_hold_at_most_max_line_bytes_and_leave_the_rest_unread() {
        let longest = "x".repeat(MAX_LINE);
        let input = format!("a\n{longest}\n{longest}yz\nb");
        let mut reader = io::BufReader::new(input.as_bytes());
        let mut buf = Vec::new();
        let mut read = || {
            let line = read_bounded_line(&mut reader, &mut buf).unwrap();
            (line, buf.len())
        };
        assert_eq!(read(), (Line::Line, 2));
        // MAX_LINE bytes and the newline: a whole line, not too long.
        assert_eq!(read(), (Line::Line, MAX_LINE + 1));
        assert_eq!(read(), (Line::TooLong, MAX_LINE + 1));
        // What was not read of the long line comes next.
        assert_eq!(read(), (Line::Line, 2));
        assert_eq!(read(), (Line::Line, 1));
        assert_eq!(read(), (Line::Eof, 0));
    }

    fn line(text: &str) -> JsonLine {
        parse_line(text.as_bytes(), EXAMPLE).unwrap()
    }

    #[test]
    fn lines_that_are_not_one_object_say_what_they_are() {
        for (input, says) in [
            (
                "",
                "the line is empty; send one json object like {\"key\": \"...\"}",
            ),
            ("  \t\r", "the line is empty"),
            (
                "[1, 2]",
                "must be one json object like {\"key\": \"...\"}, got a list",
            ),
            ("null", "got null"),
            ("42", "got a number"),
            ("\"sk_live_x\"", "got a string"),
            ("true", "got true"),
            (
                "{not json",
                "not valid json: unexpected character `n` at column 2",
            ),
            (
                "{\"key\": \"x\"",
                "ends at column 11 before the object is complete",
            ),
            (
                "{} {}",
                "not valid json: unexpected character `{` at column 4",
            ),
            ("{\"key\": 1, \"key\": 2}", "field `key` is given twice"),
        ] {
            let got = problem(input);
            assert!(got.contains(says), "{input:?}: {got}");
            assert!(!got.contains(" expected"), "{input:?}: {got}");
        }
        assert_eq!(
            problem("{'key': 'x'}"),
            "the line is not valid json: unexpected character `'` at column 2; json strings and field names take double quotes"
        );
        assert_eq!(
            problem("{\"key\": \"x\", ip: 5}"),
            "the line is not valid json: unexpected character `i` at column 14; field names take double quotes"
        );
        assert_eq!(
            problem("{\"key\": nul}"),
            "the line is not valid json: `nul` at column 9 is not a json value; use true, false, null, a number or a \"quoted string\""
        );
        assert!(problem("{\"key\": tru, \"ip\": 1}").contains("`tru` at column 9"));
        assert_eq!(
            problem("\u{feff}{}"),
            "the line is not valid json: unexpected character U+FEFF at column 1"
        );
        assert_eq!(
            problem("{\"key\": \"a\tb\"}"),
            "the line is not valid json: unexpected character U+0009 at column 11"
        );
        let deep = format!("{{\"key\": {}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(
            problem(&deep).contains("too deeply nested"),
            "{}",
            problem(&deep)
        );
        // Nesting as deep as the longest line allowed ends in an answer, not a crash.
        let deepest = format!("{}{}", "[".repeat(MAX_LINE / 2), "]".repeat(MAX_LINE / 2));
        assert!(
            problem(&deepest).ends_with("got a list"),
            "{}",
            problem(&deepest)
        );
        let open = "[".repeat(MAX_LINE);
        assert!(
            problem(&open).contains("not valid json"),
            "{}",
            problem(&open)
        );
        let bad = parse_line(b"{\"key\": \"\xff\"}", EXAMPLE).unwrap_err();
        assert_eq!(
            bad,
            "the line is not UTF-8 text (invalid byte at column 10)"
        );
    }

    #[test]
    fn fields_are_read_with_plain_type_checks() {
        let l =
            line(r#"{"a": "x", "n": 5, "s": "7", "neg": -1, "f": 1.5, "o": {"k": 1}, "z": null}"#);
        assert_eq!(l.text("a"), Ok(Some("x")));
        assert_eq!(l.text("z"), Ok(None));
        assert_eq!(l.text("missing"), Ok(None));
        assert_eq!(
            l.text("o").unwrap_err(),
            "field `o` must be a string, got an object"
        );
        assert_eq!(
            l.required_text("k").unwrap_err(),
            "field `k` is missing; it is required"
        );
        assert_eq!(l.count("n", 0), Ok(Some(5)));
        assert_eq!(l.count("s", 1), Ok(Some(7)));
        let want = format!("field `neg` must be a whole number from 0 to {MAX_COUNT}, got -1");
        assert_eq!(l.count("neg", 0).unwrap_err(), want);
        assert!(l.count("f", 0).unwrap_err().ends_with("got 1.5"));
        assert_eq!(line(r#"{"e": 1e3}"#).count("e", 0), Ok(Some(1000)));
        assert!(line(r#"{"e": 1e300}"#).count("e", 0).is_err());
        assert!(l.count("n", 6).unwrap_err().contains("from 6 to"));
        assert!(l.count("a", 0).unwrap_err().ends_with("got a string"));
        let l = line(&format!(
            r#"{{"max": {MAX_COUNT}, "over": {}, "huge": "99999999999999999999999"}}"#,
            MAX_COUNT + 1
        ));
        assert_eq!(l.count("max", 0), Ok(Some(MAX_COUNT)));
        assert!(l.count("over", 0).is_err());
        assert!(l.count("huge", 0).is_err());
    }

    #[test]
    fn lists_flags_and_unknown_fields() {
        let l = line(r#"{"l": ["a", "b"], "c": "a, b", "bad": ["a", 2], "t": true, "u": "yes"}"#);
        assert_eq!(l.list("l").unwrap(), ["a", "b"]);
        assert_eq!(l.list("c").unwrap(), ["a", "b"]);
        assert_eq!(
            l.list("bad").unwrap_err(),
            "field `bad` must be a list of strings or a comma-separated string, got 2 as item 2"
        );
        assert_eq!(l.list("none").unwrap(), Vec::<String>::new());
        assert_eq!(l.flag("t"), Ok(true));
        assert_eq!(l.flag("none"), Ok(false));
        assert_eq!(
            l.flag("u").unwrap_err(),
            "field `u` must be true or false, got a string"
        );
        assert_eq!(
            l.refuse_unknown(&["l", "c", "bad", "t"]).unwrap_err(),
            "unknown field `u`; fields are l, c, bad, t"
        );
    }

    #[test]
    fn free_text_is_never_echoed() {
        let l = line(r#"{"n": "sk_live_abcdefghijklmnop"}"#);
        let e = l.count("n", 0).unwrap_err();
        assert!(!e.contains("sk_live"), "{e}");
    }
}
