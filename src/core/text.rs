//! Free text in and out: what a stored value may contain, how it is shown, and how a
//! pasted secret is recognised. Input is refused here (SPEC §5 "Text values"); output
//! that still holds such characters (values stored before the rule, or by another
//! writer) is escaped by [`escape`], and secrets in messages are cut by [`redact`].

use std::borrow::Cow;

use super::key::{checksum, BODY_LEN, DISPLAY_BODY_CHARS, RANDOM_LEN};

/// Unicode general category Cf (format characters), Unicode 15.1/16.0: bidi controls,
/// zero-width characters, the BOM, tag characters. Same ranges as regex-syntax's
/// `general_category::FORMAT`.
const FORMAT: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{600}', '\u{605}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{6dd}', '\u{6dd}'),
    ('\u{70f}', '\u{70f}'),
    ('\u{890}', '\u{891}'),
    ('\u{8e2}', '\u{8e2}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{fff9}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0001}', '\u{e0001}'),
    ('\u{e0020}', '\u{e007f}'),
];

/// True for a character that must never reach a terminal or a cell raw: controls (Cc,
/// C0, DEL and C1), format characters (Cf) and the line/paragraph separators, which
/// can reorder, hide or break the text around them.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || c == '\u{2028}'
        || c == '\u{2029}'
        || (c >= '\u{ad}' && FORMAT.iter().any(|&(lo, hi)| lo <= c && c <= hi))
}

/// The first hidden character in `text` ([`is_hidden`]) and its byte index. Printable
/// ASCII, what almost every field and request line is, is told by its bytes alone.
pub fn first_hidden(text: &str) -> Option<(usize, char)> {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    text.char_indices().find(|&(_, c)| is_hidden(c))
}

/// True when `text` holds a hidden character ([`first_hidden`]).
pub fn has_hidden(text: &str) -> bool {
    first_hidden(text).is_some()
}

/// The text with every hidden character written as `\u{202e}` (Rust-style, lower-case
/// hex). The result holds only visible characters, so escaping twice changes nothing.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !has_hidden(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A message for stderr: secrets cut to their display prefix, hidden characters escaped.
pub fn for_terminal(message: &str) -> String {
    escape(&redact(message)).into_owned()
}

/// Body characters after `<prefix>_<mode>_` from which a token counts as a (possibly
/// mistyped or cut) secret in a message. Fewer is a display prefix or a plain name
/// such as `ci_test_deploy`; a real body has 38.
const SECRET_SHAPED_BODY: usize = 16;

/// A secret-shaped token found in text.
struct Token {
    /// Byte range of the whole token (prefix run through body run).
    start: usize,
    end: usize,
    /// `<prefix>_<mode>_` and the first 4 body characters: public.
    display: String,
    /// True when a checksum-valid secret of keyctl's format lies inside it.
    exact: bool,
}

fn is_prefix_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Every `<[a-z0-9]+>_(live|test)_<alnum>` token with more than a display prefix's
/// worth of body, in order.
fn tokens(text: &str) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 6 <= bytes.len() {
        let mode = &bytes[i..i + 6];
        if mode != b"_live_" && mode != b"_test_" {
            i += 1;
            continue;
        }
        let run_start = i - bytes[..i]
            .iter()
            .rev()
            .take_while(|&&b| is_prefix_byte(b))
            .count();
        let body_start = i + 6;
        let body_end = body_start
            + bytes[body_start..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
        if run_start == i || body_end - body_start <= DISPLAY_BODY_CHARS {
            i += 1;
            continue;
        }
        // A secret is `<1-16 prefix chars>_<mode>_<32 random><6 checksum>`; text glued
        // to either side does not hide it.
        let exact = body_end - body_start >= BODY_LEN
            && (run_start.max(i.saturating_sub(16))..i).any(|s| {
                let head = &text[s..body_start + RANDOM_LEN];
                checksum(head) == text[body_start + RANDOM_LEN..body_start + BODY_LEN]
            });
        if exact || body_end - body_start >= SECRET_SHAPED_BODY {
            found.push(Token {
                start: run_start,
                end: body_end,
                display: text[run_start..body_start + DISPLAY_BODY_CHARS].to_string(),
                exact,
            });
        }
        i = body_end;
    }
    found
}

/// The display prefix of the first checksum-valid secret of keyctl's format in `text`.
pub fn find_secret(text: &str) -> Option<String> {
    tokens(text)
        .into_iter()
        .find(|t| t.exact)
        .map(|t| t.display)
}

/// The text with every secret-shaped token (a secret, or a long enough piece or typo
/// of one) replaced by its display prefix and `...`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let found = tokens(text);
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for t in found {
        out.push_str(&text[at..t.start]);
        out.push_str(&t.display);
        out.push_str("...");
        at = t.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Longest free-text value, in characters.
pub const MAX_TEXT: usize = 2000;

/// Checks one free-text value (a name, description, owner, scope, reason, actor,
/// endpoint...): no hidden characters, no pasted secret, not too long. `field` names
/// it in the message (`--owner`, `name`, `line 3: owner`). The value itself is never
/// echoed: it may be a secret or hold characters that would garble the terminal.
pub fn validate_text(field: &str, value: &str) -> Result<(), String> {
    if let Some((_, c)) = first_hidden(value) {
        let what = if c.is_control() {
            "a control character"
        } else {
            "an invisible formatting character"
        };
        return Err(format!(
            "invalid {field}: it contains {what} (U+{:04X}); use one line of plain text",
            u32::from(c)
        ));
    }
    if let Some(display) = find_secret(value) {
        return Err(format!(
            "invalid {field}: it contains a key secret ({display}...); never paste secrets into key fields"
        ));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(format!(
            "invalid {field}: longer than {MAX_TEXT} characters"
        ));
    }
    Ok(())
}

/// True when `text` looks like a display prefix of some store (`sk_live_C2PH`, with or
/// without `...`): a name like that could pose as another key in a KEYREF.
pub fn looks_like_display_prefix(text: &str) -> bool {
    let t = text.strip_suffix("...").unwrap_or(text);
    let mut parts = t.splitn(3, '_');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(prefix), Some("live" | "test"), Some(body)) => {
            (1..=16).contains(&prefix.len())
                && prefix.bytes().all(is_prefix_byte)
                && body.len() == DISPLAY_BODY_CHARS
                && body.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::{assemble, Mode};

    fn secret() -> String {
        assemble("sk", Mode::Live, "4eC39HqLyjWDarjtT1zdp7dcABCDEFGH")
            .expose()
            .to_string()
    }

    #[test]
    fn hidden_characters() {
        for c in [
            '\u{1b}',
            '\t',
            '\n',
            '\u{7f}',
            '\u{85}',
            '\u{202e}',
            '\u{2066}',
            '\u{200b}',
            '\u{200d}',
            '\u{feff}',
            '\u{ad}',
            '\u{2028}',
            '\u{2029}',
            '\u{e0041}',
        ] {
            assert!(is_hidden(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '€', '→', '\u{a0}', '日', '😀'] {
            assert!(!is_hidden(c), "{c:?}");
        }
    }

    #[test]
    fn has_hidden_agrees_with_is_hidden_on_every_ascii_byte_and_beyond() {
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            let text = format!("ab{c}cd");
            assert_eq!(has_hidden(&text), is_hidden(c), "{c:?}");
            assert_eq!(first_hidden(&text), is_hidden(c).then_some((2, c)), "{c:?}");
        }
        assert!(!has_hidden(""));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape("x\u{202e}y\u{2028}"), "x\\u{202e}y\\u{2028}");
        let once = escape("\u{200b}\u{e0041}").into_owned();
        assert_eq!(once, "\\u{200b}\\u{e0041}");
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn secrets_are_found_exactly() {
        let s = secret();
        assert_eq!(find_secret(&s).as_deref(), Some("sk_live_4eC3"));
        assert_eq!(
            find_secret(&format!("key: {s}, thanks")).as_deref(),
            Some("sk_live_4eC3")
        );
        // Glued to other text on either side.
        assert_eq!(
            find_secret(&format!("xx{s}yy")).as_deref(),
            Some("xxsk_live_4eC3")
        );
        // One character off: the checksum fails, so it is no secret of this format.
        let typo = s.replacen('4', "5", 1);
        assert_eq!(find_secret(&typo), None);
        assert_eq!(find_secret("sk_live_4eC3"), None);
        assert_eq!(find_secret("ci_test_deploy"), None);
    }

    #[test]
    fn redaction() {
        let s = secret();
        assert_eq!(
            redact(&format!("no key matches '{s}': use")),
            "no key matches 'sk_live_4eC3...': use"
        );
        let typo = s.replacen('4', "5", 1);
        assert_eq!(redact(&typo), "sk_live_5eC3...");
        let cut = &s[..s.len() - 10];
        assert_eq!(redact(cut), "sk_live_4eC3...");
        for kept in [
            "sk_live_4eC3...",
            "ci_test_deploy",
            "a_live_",
            "_live_abcdefghijklmnopq",
        ] {
            assert_eq!(redact(kept), kept);
        }
        assert_eq!(
            for_terminal(&format!("\u{1b}[2J {s} {s}")),
            "\\u{1b}[2J sk_live_4eC3... sk_live_4eC3..."
        );
    }

    #[test]
    fn validation() {
        assert!(validate_text("--owner", "Ada Lovelace (ops) é 日本").is_ok());
        let e = validate_text("--owner", "a\u{202e}b").unwrap_err();
        assert!(e.contains("U+202E"), "{e}");
        assert!(!e.contains('\u{202e}'));
        let s = secret();
        let e = validate_text("--description", &format!("see {s}")).unwrap_err();
        assert_eq!(
            e,
            "invalid --description: it contains a key secret (sk_live_4eC3...); never paste secrets into key fields"
        );
        assert!(validate_text("x", &"a".repeat(MAX_TEXT + 1)).is_err());
    }

    #[test]
    fn display_prefix_shapes() {
        for yes in [
            "sk_live_C2PH",
            "sk_live_C2PH...",
            "acme2_test_0000",
            "a_live_abcd",
        ] {
            assert!(looks_like_display_prefix(yes), "{yes}");
        }
        for no in [
            "sk_live_C2P",
            "sk_live_C2PHX",
            "SK_live_C2PH",
            "sk_prod_C2PH",
            "_live_C2PH",
            "abcdefghijklmnopq_live_C2PH",
            "sk_live_C2-H",
        ] {
            assert!(!looks_like_display_prefix(no), "{no}");
        }
    }
}
