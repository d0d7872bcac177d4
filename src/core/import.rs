//! `keyctl import` (SPEC §8): what one line says about the key's secret — its hash,
//! the display prefix it gets, the mode a keyctl-format secret carries — and the
//! times it brings along. Pure: the secret is hashed here and never kept.

use chrono::{DateTime, Utc};

use crate::core::key::{self, KeyFormatError, Mode};
use crate::core::time::{parse_datetime, rfc3339};

/// Fewest characters of a secret given in clear: a shorter one is too easily guessed
/// to be worth verifying by its hash alone.
pub const MIN_SECRET_LEN: usize = 16;

/// The key a line imports, as far as its secret goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedSecret {
    /// sha256 of the secret: the only form stored.
    pub hash: [u8; 32],
    /// The display prefix: keyctl's for a keyctl-format secret, the first characters
    /// of another format's (at most a third of it), none for a hash alone.
    pub key_prefix: Option<String>,
    /// The mode a keyctl-format secret carries (`sk_test_...`); None otherwise.
    pub mode: Option<Mode>,
    /// How messages name this key without its secret: `sk-abcdefghi...`, or
    /// `sha256 0123456789ab...`.
    pub shown: String,
    /// `secret` or `sha256`: the field it came from (the audit event says which).
    pub given_as: &'static str,
}

/// The `secret` field: hashed at once. keyctl's own format must pass its checksum
/// (it could never verify otherwise); any other format is a printable ASCII string of
/// at least [`MIN_SECRET_LEN`] characters, verified by its hash alone. Messages show
/// the secret as its display prefix only (SPEC §5).
pub fn from_secret(text: &str) -> Result<ImportedSecret, String> {
    let (key_prefix, mode) = match key::parse(text) {
        Ok(p) => (key::display_prefix(p.prefix, p.mode, p.body), Some(p.mode)),
        Err(KeyFormatError::BadChecksum) => {
            let shown = key::foreign_display_prefix(text);
            return Err(format!(
                "field `secret` ({shown}...) has keyctl's key format but its checksum is wrong, so it could never verify; check that it was copied whole"
            ));
        }
        Err(KeyFormatError::Malformed) => {
            if !key::is_foreign_secret(text) {
                return Err(format!(
                    "field `secret` must be printable ASCII without spaces, at most {} characters, as a client sends it",
                    key::MAX_FOREIGN_LEN
                ));
            }
            if text.len() < MIN_SECRET_LEN {
                return Err(format!(
                    "field `secret` has {} characters; a secret has at least {MIN_SECRET_LEN} (give `sha256` to import a shorter one's hash)",
                    text.len()
                ));
            }
            (key::foreign_display_prefix(text), None)
        }
    };
    Ok(ImportedSecret {
        hash: key::hash_secret(text),
        shown: format!("{key_prefix}..."),
        key_prefix: Some(key_prefix),
        mode,
        given_as: "secret",
    })
}

/// The `sha256` field: 64 hex digits (either case), the hash of the secret.
pub fn from_sha256(text: &str) -> Result<ImportedSecret, String> {
    let digits = text.as_bytes();
    let nibble = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut hash = [0u8; 32];
    let well_formed = digits.len() == 64
        && hash.iter_mut().zip(digits.chunks(2)).all(|(slot, pair)| {
            match (nibble(pair[0]), nibble(pair[1])) {
                (Some(hi), Some(lo)) => {
                    *slot = hi << 4 | lo;
                    true
                }
                _ => false,
            }
        });
    if !well_formed {
        return Err(format!(
            "field `sha256` must be 64 hexadecimal digits (the sha256 of the secret), got {} characters{}",
            text.chars().count(),
            if text.is_ascii() { "" } else { " with non-ASCII ones" }
        ));
    }
    let hex = key::hex(&hash);
    Ok(ImportedSecret {
        hash,
        key_prefix: None,
        mode: None,
        shown: format!("sha256 {}...", &hex[..12]),
        given_as: "sha256",
    })
}

/// A key's creation and last use, when a line gives them.
pub type Times = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The `created_at` and `last_used_at` fields (RFC 3339): neither in the future, and a
/// last use not before the creation (which is `now`, the import, when not given).
pub fn times(
    created_at: Option<&str>,
    last_used_at: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Times, String> {
    let read = |field: &str, text: Option<&str>| -> Result<Option<DateTime<Utc>>, String> {
        let Some(text) = text else { return Ok(None) };
        let at = parse_datetime(text).map_err(|e| format!("field `{field}`: {e}"))?;
        if at > now {
            return Err(format!(
                "field `{field}` is {}, in the future; use the time it happened",
                rfc3339(at)
            ));
        }
        Ok(Some(at))
    };
    let created = read("created_at", created_at)?;
    let last_used = read("last_used_at", last_used_at)?;
    if let Some(used) = last_used {
        let born = created.unwrap_or(now);
        if used < born {
            return Err(format!(
                "field `last_used_at` ({}) is before the key was created ({}{}); a key is used after it exists",
                rfc3339(used),
                rfc3339(born),
                if created.is_none() { ", the import time: give `created_at`" } else { "" }
            ));
        }
    }
    Ok((created, last_used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        parse_datetime("2027-01-31T12:00:00Z").unwrap()
    }

    #[test]
    fn secrets_of_every_format_are_hashed_and_never_shown_whole() {
        let newapi = format!("sk-{}", "Ab3".repeat(16));
        let s = from_secret(&newapi).unwrap();
        assert_eq!(s.hash, key::hash_secret(&newapi));
        assert_eq!(s.key_prefix.as_deref(), Some(&newapi[..12]));
        assert_eq!((s.mode, s.shown.as_str()), (None, "sk-Ab3Ab3Ab3..."));

        let own = key::assemble("acme", Mode::Test, "abcdefghijABCDEFGHIJ0123456789xy");
        let s = from_secret(own.expose()).unwrap();
        assert_eq!(s.key_prefix.as_deref(), Some("acme_test_abcd"));
        assert_eq!(s.mode, Some(Mode::Test));

        let mut bad = own.expose().to_string();
        bad.pop();
        bad.push(if own.expose().ends_with('0') {
            '1'
        } else {
            '0'
        });
        let e = from_secret(&bad).unwrap_err();
        assert!(
            e.contains("checksum is wrong") && !e.contains(&bad[..20]),
            "{e}"
        );

        for refused in [
            "short-secret",
            "has a space in it ok",
            "",
            "é-é-é-é-é-é-é-é-é",
        ] {
            let e = from_secret(refused).unwrap_err();
            assert!(refused.is_empty() || !e.contains(refused), "{e}");
        }
    }

    #[test]
    fn hashes_are_64_hex_digits_in_either_case() {
        let hex = key::hex(&key::hash_secret("x"));
        assert_eq!(from_sha256(&hex).unwrap().hash, key::hash_secret("x"));
        let upper = from_sha256(&hex.to_uppercase()).unwrap();
        assert_eq!(upper.hash, key::hash_secret("x"));
        assert_eq!(upper.key_prefix, None);
        assert_eq!(upper.shown, format!("sha256 {}...", &hex[..12]));
        for bad in [&hex[..63], "zz", &format!("{}g", &hex[..63])] {
            assert!(from_sha256(bad)
                .unwrap_err()
                .contains("64 hexadecimal digits"));
        }
    }

    #[test]
    fn times_lie_in_the_past_in_order() {
        let t = |s: &str| Some(parse_datetime(s).unwrap());
        assert_eq!(
            times(Some("2026-01-01T00:00:00Z"), Some("2026-06-01"), now()),
            Ok((t("2026-01-01T00:00:00Z"), t("2026-06-01")))
        );
        assert!(times(Some("2028-01-01"), None, now())
            .unwrap_err()
            .contains("in the future"));
        assert!(times(Some("2026-06-01"), Some("2026-01-01"), now())
            .unwrap_err()
            .contains("before the key was created"));
        assert!(times(None, Some("2026-01-01"), now())
            .unwrap_err()
            .contains("give `created_at`"));
        assert!(times(Some("yesterday"), None, now())
            .unwrap_err()
            .starts_with("field `created_at`: "));
    }
}
