//! Key metadata as output: the `meta` object of the key json and of verdicts, and the
//! lines of `show`. Read from the stored text only here, when it is printed (keyctl's
//! own form borrowed as it is, [`KeyMeta::pairs`]); a key without metadata is `{}`
//! with nothing read.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::core::meta::KeyMeta;
use crate::core::text::escape;

/// Serialises as the metadata's json object (`{}` when none).
pub struct MetaJson<'a>(pub &'a KeyMeta);

impl Serialize for MetaJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            return serializer.serialize_map(Some(0))?.end();
        }
        let pairs = self.0.pairs();
        let mut map = serializer.serialize_map(Some(pairs.len()))?;
        for (k, v) in &pairs {
            map.serialize_entry(k.as_ref(), v.as_ref())?;
        }
        map.end()
    }
}

/// Appends the metadata's json object, byte for byte what [`MetaJson`] gives through
/// `ui::json` (hidden characters escaped as everywhere in output).
pub fn push_meta(out: &mut Vec<u8>, meta: &KeyMeta) {
    if meta.is_empty() {
        out.extend_from_slice(b"{}");
        return;
    }
    out.push(b'{');
    for (i, (k, v)) in meta.pairs().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        super::json::push_str(out, k);
        out.push(b':');
        super::json::push_str(out, v);
    }
    out.push(b'}');
}

/// `show`'s lines: `key=value` per entry, sorted by key, hidden characters escaped
/// (so one entry is always one line); `none` when none.
pub fn meta_lines(meta: &KeyMeta) -> String {
    let entries = meta.entries();
    if entries.is_empty() {
        return "none".to_string();
    }
    entries
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_object_is_the_serde_one() {
        for stored in [
            None,
            Some(r#"{"a":"x\u001b\"\\\u202eé😀","b.c":""}"#),
            Some("damaged"),
        ] {
            let meta = KeyMeta::from_stored(stored.map(str::to_string));
            let mut by_hand = Vec::new();
            push_meta(&mut by_hand, &meta);
            let via_serde = crate::ui::json::to_vec(&MetaJson(&meta)).unwrap();
            assert_eq!(
                String::from_utf8(by_hand).unwrap(),
                String::from_utf8(via_serde).unwrap()
            );
        }
    }

    #[test]
    fn show_lines_are_one_per_entry_and_escaped() {
        let meta = KeyMeta::from_stored(Some(r#"{"tenant":"acme","note":"a\nb\u202e"}"#.into()));
        assert_eq!(meta_lines(&meta), "note=a\\u{a}b\\u{202e}\ntenant=acme");
        assert_eq!(meta_lines(&KeyMeta::default()), "none");
    }
}
