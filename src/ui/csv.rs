//! RFC 4180 csv fields: quoted only when they contain a comma, quote or line break.
//! Every cell is made safe first (SPEC §5): hidden characters are escaped
//! (`\u{202e}`), and a cell that begins with `=`, `+`, `-`, `@`, tab or carriage
//! return gets a leading `'` so a spreadsheet shows it as text instead of running it
//! as a formula (OWASP CSV injection). keyctl's own cells (ids, numbers, times,
//! statuses) never begin with those characters, so only text from a person or a
//! service is ever changed.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::core::text::escape;

/// The cell as written: a formula-like start neutralised, hidden characters escaped.
pub fn safe_cell(field: &str) -> Cow<'_, str> {
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{}", escape(field)))
    } else {
        escape(field)
    }
}

pub fn write_field(out: &mut dyn Write, field: &str) -> io::Result<()> {
    let field = safe_cell(field);
    if field.contains([',', '"', '\n', '\r']) {
        out.write_all(b"\"")?;
        out.write_all(field.replace('"', "\"\"").as_bytes())?;
        out.write_all(b"\"")
    } else {
        out.write_all(field.as_bytes())
    }
}

pub fn write_row<S: AsRef<str>>(out: &mut dyn Write, fields: &[S]) -> io::Result<()> {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_field(out, f.as_ref())?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[&str]) -> String {
        let mut buf = Vec::new();
        write_row(&mut buf, fields).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn quoting() {
        assert_eq!(
            row(&["a", "b,c", "say \"hi\"", ""]),
            "a,\"b,c\",\"say \"\"hi\"\"\",\n"
        );
    }

    #[test]
    fn formulas_and_hidden_characters() {
        assert_eq!(
            row(&["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "\tx", "\rx"]),
            "\"'=HYPERLINK(\"\"x\"\")\",'+1,'-2,'@SUM(A1),'\\u{9}x,'\\u{d}x\n"
        );
        assert_eq!(
            row(&["a=b", "2026-11-23", "key_abc"]),
            "a=b,2026-11-23,key_abc\n"
        );
        assert_eq!(row(&["a\u{202e}b\nc"]), "a\\u{202e}b\\u{a}c\n");
    }
}
