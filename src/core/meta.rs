//! Key metadata (SPEC §8): free-form `KEY=VALUE` entries a key carries and
//! verification hands back, so a service learns the caller's tenant or plan without a
//! second lookup. Pure: parsing and checking the entries, the edit rules, and the
//! stored form (one canonical json object, kept as text so that verification, which
//! reads it on every request, parses it only when it prints it).

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::text::validate_text;

/// Longest metadata key, in bytes (keys are ASCII).
pub const MAX_KEY_LEN: usize = 64;
/// Most entries a key may carry.
pub const MAX_ENTRIES: usize = 32;
/// Most bytes of metadata a key may carry: the UTF-8 bytes of every key and value
/// added up (json quoting and escapes not counted, so the limit does not depend on
/// how a value is written).
pub const MAX_BYTES: usize = 4096;

/// One entry as given: `--meta KEY=VALUE`, or a member of a batch line's `meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
}

/// Checks a metadata key: 1 to [`MAX_KEY_LEN`] characters of `a-z`, `0-9`, `_`, `.`
/// and `-`. `flag` names the value in the message (`--meta`, `--unset-meta`).
pub fn validate_key(flag: &str, key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err(format!(
            "invalid {flag}: the key is empty; use KEY=VALUE with a key like 'tenant'"
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
    {
        // The key is not quoted: it may hold a secret or hidden characters.
        return Err(format!(
            "invalid {flag}: a metadata key may hold only a-z, 0-9, '_', '.' and '-' (like 'tenant' or 'billing.plan')"
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!(
            "invalid {flag}: the key '{}...' is longer than {MAX_KEY_LEN} characters",
            &key[..16]
        ));
    }
    Ok(())
}

/// One entry from its key and value: the key as [`validate_key`] says, the value free
/// text (SPEC §5: no control or format characters, no pasted secret). An empty value
/// is a value; it is kept as given, spaces included (it is the service's data).
pub fn entry(flag: &str, key: &str, value: &str) -> Result<Entry, String> {
    validate_key(flag, key)?;
    validate_text(&format!("{flag} value for '{key}'"), value)?;
    Ok(Entry {
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// `--meta KEY=VALUE` (split at the first `=`).
pub fn parse_entry(flag: &str, text: &str) -> Result<Entry, String> {
    match text.split_once('=') {
        Some((key, value)) => entry(flag, key, value),
        None => {
            validate_key(flag, text)?;
            Err(format!(
                "invalid {flag} '{text}': use KEY=VALUE (e.g. {flag} tenant=acme); to remove a key, use --unset-meta {text}"
            ))
        }
    }
}

/// `--unset-meta KEY`.
pub fn parse_key(flag: &str, text: &str) -> Result<String, String> {
    validate_key(flag, text).map(|_| text.to_string())
}

/// A key's metadata as stored: a json object of strings, keys sorted, or nothing
/// (no entries). It is kept as the stored text and parsed only to be shown, so
/// reading a key costs a string at most, and a key without metadata nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyMeta(Option<String>);

impl KeyMeta {
    /// The stored text as read (written by keyctl, or by another program: it is
    /// checked only when read by [`KeyMeta::entries`]). `{}` is no metadata.
    pub fn from_stored(text: Option<String>) -> KeyMeta {
        KeyMeta(text.filter(|t| t != "{}"))
    }

    /// The text to store (NULL for none).
    pub fn stored(&self) -> Option<&str> {
        self.0.as_deref()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The entries, sorted by key. A stored value that is not a json object of
    /// strings (damaged, or written by another program) reads as no entries: a
    /// stored value never makes a later command fail.
    pub fn entries(&self) -> BTreeMap<String, String> {
        match &self.0 {
            None => BTreeMap::new(),
            Some(text) => serde_json::from_str(text).unwrap_or_default(),
        }
    }

    /// The entries as [`KeyMeta::entries`] gives them, borrowed from the stored text
    /// when it is in keyctl's own form without escapes (`{"k":"v",...}`, keys
    /// ascending), which verification prints on every request; any other text is
    /// parsed as `entries` does. Same pairs, same order.
    pub fn pairs(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        match &self.0 {
            None => Vec::new(),
            Some(text) => plain_pairs(text).unwrap_or_else(|| {
                self.entries()
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))
                    .collect()
            }),
        }
    }

    /// The canonical stored form of these entries.
    pub fn from_entries(entries: &BTreeMap<String, String>) -> KeyMeta {
        if entries.is_empty() {
            return KeyMeta(None);
        }
        // A map of strings always serialises.
        KeyMeta(serde_json::to_string(entries).ok())
    }

    /// The entries as a json object (the audit trail's old → new).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.entries()
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        )
    }
}

/// The pairs of `{"k":"v",...}` with no backslash, no control character, no
/// whitespace and keys strictly ascending: a text json reads as exactly these pairs,
/// in this order. None for anything else (the caller parses it).
fn plain_pairs(text: &str) -> Option<Vec<(Cow<'_, str>, Cow<'_, str>)>> {
    let bytes = text.as_bytes();
    if bytes.iter().any(|&b| b == b'\\' || b < 0x20) {
        return None;
    }
    // The string starting at `at` (a quote): its text and the index after its end.
    let string = |at: usize| -> Option<(&str, usize)> {
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let len = bytes[at + 1..].iter().position(|&b| b == b'"')?;
        Some((&text[at + 1..at + 1 + len], at + len + 2))
    };
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let mut out: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    let mut at = 1;
    loop {
        let (key, next) = string(at)?;
        if bytes.get(next) != Some(&b':') {
            return None;
        }
        let (value, next) = string(next + 1)?;
        if out.last().is_some_and(|(last, _)| last.as_ref() >= key) {
            return None;
        }
        out.push((Cow::Borrowed(key), Cow::Borrowed(value)));
        match bytes.get(next) {
            Some(b',') => at = next + 1,
            Some(b'}') if next + 1 == bytes.len() => return Some(out),
            _ => return None,
        }
    }
}

/// The metadata after an edit: `set` entries added or overwritten (the others kept,
/// as `kubectl label` does), `unset` keys removed (a key it does not have is no
/// error). A key both set and unset, or set twice to different values, is refused;
/// so is a result over the bounds ([`MAX_ENTRIES`], [`MAX_BYTES`]). `create` passes
/// an empty `current`.
pub fn apply(current: &KeyMeta, set: &[Entry], unset: &[String]) -> Result<KeyMeta, String> {
    for (i, e) in set.iter().enumerate() {
        if unset.contains(&e.key) {
            return Err(format!(
                "metadata key '{}' is both set (--meta) and removed (--unset-meta): give one",
                e.key
            ));
        }
        if set[..i]
            .iter()
            .any(|earlier| earlier.key == e.key && earlier.value != e.value)
        {
            return Err(format!(
                "metadata key '{}' is given twice with different values: give it once",
                e.key
            ));
        }
    }
    if set.is_empty() && unset.is_empty() {
        return Ok(current.clone());
    }
    let mut entries = current.entries();
    for key in unset {
        entries.remove(key);
    }
    for e in set {
        entries.insert(e.key.clone(), e.value.clone());
    }
    check_bounds(&entries)?;
    Ok(KeyMeta::from_entries(&entries))
}

/// At most [`MAX_ENTRIES`] entries of at most [`MAX_BYTES`] in all.
fn check_bounds(entries: &BTreeMap<String, String>) -> Result<(), String> {
    if entries.len() > MAX_ENTRIES {
        return Err(format!(
            "too much metadata: {} entries, at most {MAX_ENTRIES}",
            entries.len()
        ));
    }
    let bytes: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_BYTES {
        return Err(format!(
            "too much metadata: {bytes} bytes of keys and values, at most {MAX_BYTES}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::{assemble, Mode};

    fn e(key: &str, value: &str) -> Entry {
        parse_entry("--meta", &format!("{key}={value}")).unwrap()
    }

    #[test]
    fn entries_parse_at_the_first_equals_sign() {
        assert_eq!(
            parse_entry("--meta", "query=a=b").unwrap(),
            Entry {
                key: "query".into(),
                value: "a=b".into()
            }
        );
        assert_eq!(parse_entry("--meta", "plan=").unwrap().value, "");
        assert_eq!(
            parse_entry("--meta", "note= two words ").unwrap().value,
            " two words "
        );
        let no_value = parse_entry("--meta", "tenant").unwrap_err();
        assert!(no_value.contains("use KEY=VALUE"), "{no_value}");
        assert!(no_value.contains("--unset-meta tenant"), "{no_value}");
    }

    #[test]
    fn keys_are_short_lower_case_words() {
        for good in [
            "tenant",
            "billing.plan",
            "a-b_c.9",
            &"k".repeat(MAX_KEY_LEN),
        ] {
            assert_eq!(validate_key("--meta", good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("", "the key is empty"),
            ("Tenant", "only a-z, 0-9"),
            ("a b", "only a-z, 0-9"),
            ("é", "only a-z, 0-9"),
            ("a\u{202e}", "only a-z, 0-9"),
            (&"k".repeat(MAX_KEY_LEN + 1), "longer than 64 characters"),
        ] {
            let why = validate_key("--meta", bad).unwrap_err();
            assert!(why.contains(says), "{bad:?}: {why}");
            assert!(why.starts_with("invalid --meta"), "{why}");
        }
        assert!(parse_entry("--meta", "=x").unwrap_err().contains("empty"));
        assert!(parse_key("--unset-meta", "BAD")
            .unwrap_err()
            .starts_with("invalid --unset-meta"));
    }

    #[test]
    fn values_are_free_text_without_hidden_characters_or_secrets() {
        let secret = assemble("sk", Mode::Live, "4eC39HqLyjWDarjtT1zdp7dcABCDEFGH");
        for (value, says) in [
            ("a\nb".to_string(), "control character"),
            ("x\u{202e}y".to_string(), "invisible formatting"),
            (format!("see {}", secret.expose()), "contains a key secret"),
            ("x".repeat(2001), "longer than 2000"),
        ] {
            let why = entry("--meta", "note", &value).unwrap_err();
            assert!(why.contains(says), "{why}");
            assert!(why.contains("--meta value for 'note'"), "{why}");
            assert!(!why.contains(secret.expose()), "{why}");
        }
        assert!(entry("--meta", "plan", "Pro — 10 seats ✓").is_ok());
    }

    #[test]
    fn edits_merge_overwrite_and_remove() {
        let start = apply(
            &KeyMeta::default(),
            &[e("tenant", "acme"), e("plan", "pro")],
            &[],
        )
        .unwrap();
        assert_eq!(start.stored(), Some(r#"{"plan":"pro","tenant":"acme"}"#));
        let edited = apply(
            &start,
            &[e("plan", "team"), e("region", "eu")],
            &["tenant".into(), "absent".into()],
        )
        .unwrap();
        assert_eq!(edited.stored(), Some(r#"{"plan":"team","region":"eu"}"#));
        // Removing the last entry leaves no metadata at all.
        let none = apply(&edited, &[], &["plan".into(), "region".into()]).unwrap();
        assert_eq!(none, KeyMeta::default());
        assert_eq!(none.stored(), None);
        // Nothing asked: the stored text as it was, even damaged.
        let odd = KeyMeta::from_stored(Some("not json".into()));
        assert_eq!(apply(&odd, &[], &[]).unwrap(), odd);
        // The same entry twice is one entry.
        assert!(apply(&KeyMeta::default(), &[e("a", "1"), e("a", "1")], &[]).is_ok());
    }

    #[test]
    fn conflicting_edits_are_refused() {
        let both = apply(&KeyMeta::default(), &[e("plan", "pro")], &["plan".into()]).unwrap_err();
        assert!(both.contains("both set (--meta) and removed"), "{both}");
        let twice = apply(
            &KeyMeta::default(),
            &[e("plan", "pro"), e("plan", "team")],
            &[],
        )
        .unwrap_err();
        assert!(twice.contains("given twice"), "{twice}");
    }

    #[test]
    fn bounds_count_entries_and_the_bytes_of_keys_and_values() {
        let many: Vec<Entry> = (0..MAX_ENTRIES).map(|i| e(&format!("k{i}"), "v")).collect();
        let full = apply(&KeyMeta::default(), &many, &[]).unwrap();
        let why = apply(&full, &[e("one.more", "v")], &[]).unwrap_err();
        assert!(why.contains("33 entries, at most 32"), "{why}");
        // Replacing one keeps the count; removing one makes room in the same edit.
        assert!(apply(&full, &[e("k0", "w")], &[]).is_ok());
        assert!(apply(&full, &[e("one.more", "v")], &["k1".into()]).is_ok());

        // Two keys of 1 byte and values of 2047 bytes: 4096 exactly.
        let value = "é".repeat(1023) + "x"; // 2047 bytes, 1024 characters
        let at_limit = apply(&KeyMeta::default(), &[e("a", &value), e("b", &value)], &[]).unwrap();
        assert_eq!(at_limit.entries().len(), 2);
        let why = apply(&at_limit, &[e("c", "")], &[]).unwrap_err();
        assert!(why.contains("4097 bytes"), "{why}");
    }

    #[test]
    fn stored_text_is_read_without_failing() {
        assert_eq!(KeyMeta::from_stored(None), KeyMeta::default());
        assert_eq!(KeyMeta::from_stored(Some("{}".into())), KeyMeta::default());
        for damaged in ["not json", "[1]", r#"{"a": 1}"#, r#"{"a": "x""#, ""] {
            let m = KeyMeta::from_stored(Some(damaged.into()));
            assert!(m.entries().is_empty(), "{damaged}");
            assert_eq!(m.to_value(), serde_json::json!({}));
        }
        let good = KeyMeta::from_stored(Some(r#"{"b":"2","a":"1"}"#.into()));
        assert_eq!(
            good.entries().into_iter().collect::<Vec<_>>(),
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(good.to_value(), serde_json::json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn pairs_are_the_entries_whatever_the_stored_text() {
        let canonical = KeyMeta::from_entries(
            &[("plan", "pro"), ("tenant", "t-0001 é😀"), ("z.y-x_9", "")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let texts = [
            canonical.stored().unwrap(),
            r#"{"a":"1"}"#,
            r#"{"a":"x\"y","b":"\u001b"}"#,
            r#"{"b":"2","a":"1"}"#,
            r#"{"a":"1","a":"2"}"#,
            r#"{ "a" : "1" }"#,
            r#"{"a":1}"#,
            r#"{"a":"1",}"#,
            r#"{"a":"1"}x"#,
            r#"{"a":"1""#,
            r#"{"a""1"}"#,
            "{\"a\":\"tab\there\"}",
            "[]",
            "{",
            "damaged",
        ];
        for text in texts {
            let meta = KeyMeta::from_stored(Some(text.to_string()));
            let pairs: Vec<(String, String)> = meta
                .pairs()
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let entries: Vec<(String, String)> = meta.entries().into_iter().collect();
            assert_eq!(pairs, entries, "{text}");
        }
        assert!(matches!(
            canonical.pairs().first(),
            Some((Cow::Borrowed("plan"), Cow::Borrowed("pro")))
        ));
    }
}
