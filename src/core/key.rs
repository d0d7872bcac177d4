//! Key secrets (`<prefix>_<mode>_<body>`), their checksum, display prefixes and ids.

use std::fmt;

use sha2::{Digest, Sha256};

/// Base62 alphabet of SPEC §1: digits, upper case, lower case.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random base62 characters in a body.
pub const RANDOM_LEN: usize = 32;
/// Base62 characters of the CRC32 checksum (62^6 > 2^32).
pub const CHECKSUM_LEN: usize = 6;
pub const BODY_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;
/// Body characters that are part of the public display prefix.
pub const DISPLAY_BODY_CHARS: usize = 4;
/// The key id alphabet `[a-z2-7]` (RFC 4648 base32, lower case).
const ID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
pub const ID_LEN: usize = 12;
pub const DEFAULT_PREFIX: &str = "sk";

/// `live` keys are for production traffic, `test` keys are made with `--test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Test,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Test => "test",
        }
    }
}

/// A full key secret. Its `Debug` is redacted so it cannot leak through `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret text, for the one-time reveal only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the secret: the only form that is stored.
    pub fn hash(&self) -> [u8; 32] {
        hash_secret(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

pub fn hash_secret(text: &str) -> [u8; 32] {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest);
    out
}

/// Validates a store key prefix: 1–16 characters of `[a-z0-9]`.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 16
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid key prefix '{prefix}': use 1-16 characters of a-z and 0-9, like 'sk' or 'acme'"
        ))
    }
}

/// Encodes `value` as exactly `width` base62 digits, most significant first.
fn base62_fixed(mut value: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    // Every byte comes from BASE62, so this is valid ASCII.
    String::from_utf8_lossy(&digits).into_owned()
}

/// The 6-character checksum of everything that precedes it in a secret.
pub fn checksum(head: &str) -> String {
    base62_fixed(u64::from(crc32fast::hash(head.as_bytes())), CHECKSUM_LEN)
}

/// Turns OS random bytes into the 32 random body characters by rejection sampling
/// (bytes >= 248 are dropped so every character is equally likely). Returns `None`
/// when `random` held too few usable bytes; the caller draws more and tries again.
pub fn random_body(random: &[u8]) -> Option<String> {
    let body: String = random
        .iter()
        .filter(|&&b| b < 248)
        .take(RANDOM_LEN)
        .map(|&b| BASE62[(b % 62) as usize] as char)
        .collect();
    (body.len() == RANDOM_LEN).then_some(body)
}

/// Builds a complete secret from its parts and a 32-character random body.
pub fn assemble(prefix: &str, mode: Mode, random_body: &str) -> Secret {
    let head = format!("{prefix}_{}_{random_body}", mode.as_str());
    let sum = checksum(&head);
    Secret(head + &sum)
}

/// A syntactically valid secret, split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub prefix: &'a str,
    pub mode: Mode,
    pub body: &'a str,
}

/// Why a presented key was rejected before any database work.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyFormatError {
    Malformed,
    BadChecksum,
}

/// Parses and checksums a presented secret.
pub fn parse(text: &str) -> Result<ParsedKey<'_>, KeyFormatError> {
    let mut parts = text.splitn(3, '_');
    let (prefix, mode, body) = match (parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(m), Some(b)) => (p, m, b),
        _ => return Err(KeyFormatError::Malformed),
    };
    validate_prefix(prefix).map_err(|_| KeyFormatError::Malformed)?;
    let mode = match mode {
        "live" => Mode::Live,
        "test" => Mode::Test,
        _ => return Err(KeyFormatError::Malformed),
    };
    if body.len() != BODY_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyFormatError::Malformed);
    }
    let split = text.len() - CHECKSUM_LEN;
    if checksum(&text[..split]) != text[split..] {
        return Err(KeyFormatError::BadChecksum);
    }
    Ok(ParsedKey { prefix, mode, body })
}

/// How a presented string is checked before any database work (SPEC §8, import).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// keyctl's format with a good checksum: looked up by its hash.
    Checksum,
    /// Not keyctl's format but a possible secret of another system (an imported
    /// `sk-...`): looked up by its hash alone.
    HashOnly,
    /// keyctl's format with a bad checksum, or not a possible secret: never looked up.
    Refused,
}

/// Longest secret of another format that is looked up (the presented key's bound).
pub const MAX_FOREIGN_LEN: usize = 1024;

/// The lookup path of a presented string. keyctl's format (`[a-z0-9]{1,16}_(live|test)_`
/// and 38 base62 characters) is decided by [`parse`] exactly as before, so its keys
/// cost nothing more; only a string [`parse`] calls malformed is tested for another
/// format.
pub fn lookup(text: &str) -> Lookup {
    match parse(text) {
        Ok(_) => Lookup::Checksum,
        Err(KeyFormatError::Malformed) if is_foreign_secret(text) => Lookup::HashOnly,
        Err(_) => Lookup::Refused,
    }
}

/// A possible secret of another format: 1 to [`MAX_FOREIGN_LEN`] printable ASCII
/// characters, no spaces. (Not keyctl's format: that is [`parse`]'s to say.)
pub fn is_foreign_secret(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_FOREIGN_LEN && text.bytes().all(|b| b.is_ascii_graphic())
}

/// Most characters of a foreign secret shown as its display prefix.
pub const FOREIGN_PREFIX_MAX: usize = 12;

/// The display prefix of a secret of another format: its first 12 characters, but
/// never more than a third of it (`sk-` + 9 of New-API's 48 random characters;
/// Stripe's `sk_live_` + 4).
pub fn foreign_display_prefix(text: &str) -> String {
    let n = FOREIGN_PREFIX_MAX.min(text.chars().count() / 3);
    text.chars().take(n).collect()
}

/// The public display prefix: `<prefix>_<mode>_` and the first 4 body characters.
pub fn display_prefix(prefix: &str, mode: Mode, body: &str) -> String {
    let shown = body.get(..DISPLAY_BODY_CHARS).unwrap_or(body);
    format!("{prefix}_{}_{shown}", mode.as_str())
}

/// Display prefix of a complete secret.
pub fn display_prefix_of(secret: &Secret) -> String {
    match parse(secret.expose()) {
        Ok(p) => display_prefix(p.prefix, p.mode, p.body),
        Err(_) => String::new(),
    }
}

/// A key id (`key_` + 12 characters of `[a-z2-7]`) from 12 random bytes.
pub fn key_id(random: &[u8; ID_LEN]) -> String {
    let mut id = String::with_capacity(4 + ID_LEN);
    id.push_str("key_");
    for &b in random {
        // 256 is a multiple of 32, so masking keeps every character equally likely.
        id.push(ID_ALPHABET[(b & 31) as usize] as char);
    }
    id
}

/// True when `text` has the shape of a key id.
pub fn looks_like_key_id(text: &str) -> bool {
    text.strip_prefix("key_")
        .is_some_and(|rest| rest.len() == ID_LEN && rest.bytes().all(|b| ID_ALPHABET.contains(&b)))
}

/// The key in a presented credential: a bare secret, `Bearer <secret>`, or a whole
/// `Authorization: Bearer <secret>` header line (names matched in any case).
pub fn strip_bearer(text: &str) -> &str {
    fn strip_word<'a>(t: &'a str, word: &str) -> Option<&'a str> {
        let head = t.get(..word.len())?;
        head.eq_ignore_ascii_case(word).then(|| &t[word.len()..])
    }
    let mut t = text.trim();
    if let Some(rest) = strip_word(t, "authorization:") {
        t = rest.trim_start();
    }
    if let Some(rest) = strip_word(t, "bearer") {
        if rest.starts_with([' ', '\t']) {
            t = rest.trim_start();
        }
    }
    t.trim_end()
}

/// Lower-case hex of a hash, for diagnostics and the audit trail.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Secret {
        assemble("sk", Mode::Live, "4eC39HqLyjWDarjtT1zdp7dcABCDEFGH")
    }

    #[test]
    fn base62_of_known_values() {
        assert_eq!(base62_fixed(0, 6), "000000");
        assert_eq!(base62_fixed(61, 6), "00000z");
        assert_eq!(base62_fixed(62, 6), "000010");
        assert_eq!(base62_fixed(u64::from(u32::MAX), 6), "4gfFC3");
    }

    #[test]
    fn assembled_secret_parses_back() {
        let s = sample();
        assert_eq!(s.expose().len(), "sk_live_".len() + BODY_LEN);
        let p = parse(s.expose()).unwrap();
        assert_eq!(p.prefix, "sk");
        assert_eq!(p.mode, Mode::Live);
        assert_eq!(display_prefix(p.prefix, p.mode, p.body), "sk_live_4eC3");
        assert_eq!(display_prefix_of(&s), &s.expose()[..12]);
    }

    #[test]
    fn checksum_is_crc32_in_base62() {
        let s = sample();
        let text = s.expose();
        let head = &text[..text.len() - 6];
        let crc = crc32fast::hash(head.as_bytes());
        let mut n = u64::from(crc);
        let mut expect = Vec::new();
        for _ in 0..6 {
            expect.push(BASE62[(n % 62) as usize]);
            n /= 62;
        }
        expect.reverse();
        assert_eq!(
            &text[text.len() - 6..],
            std::str::from_utf8(&expect).unwrap()
        );
    }

    #[test]
    fn any_changed_character_is_rejected() {
        let s = sample();
        let text = s.expose();
        for i in 0..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(parse(&changed).is_err(), "accepted change at {i}");
        }
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for bad in [
            "",
            "sk",
            "sk_live_",
            "sk_prod_4eC39HqLyjWDarjtT1zdp7dcABCDEFGH000000",
            "SK_live_4eC39HqLyjWDarjtT1zdp7dcABCDEFGH000000",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dcABCDEFGH00000",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dcABCDEFGH00000!",
        ] {
            assert_eq!(parse(bad), Err(KeyFormatError::Malformed), "{bad:?}");
        }
        let mut text = sample().expose().to_string();
        text.truncate(text.len() - 1);
        text.push('0');
        if text != sample().expose() {
            assert!(parse(&text).is_err());
        }
    }

    #[test]
    fn test_mode_and_custom_prefix() {
        let s = assemble("acme9", Mode::Test, "abcdefghijABCDEFGHIJ0123456789xy");
        let p = parse(s.expose()).unwrap();
        assert_eq!((p.prefix, p.mode), ("acme9", Mode::Test));
        assert_eq!(display_prefix_of(&s), "acme9_test_abcd");
    }

    #[test]
    fn random_body_uses_only_unbiased_bytes() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let body = random_body(&bytes).unwrap();
        assert_eq!(body.len(), RANDOM_LEN);
        assert!(random_body(&[250u8; 100]).is_none());
        assert!(random_body(&[1u8; 31]).is_none());
    }

    #[test]
    fn prefix_rules() {
        assert!(validate_prefix("sk").is_ok());
        assert!(validate_prefix("a1234567890bcdef").is_ok());
        for bad in ["", "Sk", "a_b", "a12345678901234567", "é"] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_ids_have_the_documented_shape() {
        let id = key_id(&[0, 1, 2, 3, 31, 32, 63, 64, 200, 255, 26, 27]);
        assert!(looks_like_key_id(&id), "{id}");
        assert_eq!(id, "key_abcd7a7ai723");
        assert!(!looks_like_key_id("key_ABCDEFGHIJKL"));
        assert!(!looks_like_key_id("key_abc"));
    }

    #[test]
    fn bearer_forms() {
        assert_eq!(strip_bearer("sk_live_x"), "sk_live_x");
        assert_eq!(strip_bearer("Bearer sk_live_x\r\n"), "sk_live_x");
        assert_eq!(strip_bearer("bearer   sk_live_x"), "sk_live_x");
        assert_eq!(strip_bearer("Authorization: Bearer sk_live_x"), "sk_live_x");
        assert_eq!(strip_bearer("authorization:bearer sk_live_x"), "sk_live_x");
        assert_eq!(strip_bearer("Bearersk_live_x"), "Bearersk_live_x");
        assert_eq!(strip_bearer(""), "");
        assert_eq!(strip_bearer("é"), "é");
    }

    #[test]
    fn lookup_paths() {
        let good = sample();
        assert_eq!(lookup(good.expose()), Lookup::Checksum);
        // keyctl's shape with a wrong checksum is never looked up, whatever its prefix.
        let mut bad = good.expose().to_string();
        bad.replace_range(10..11, if &bad[10..11] == "a" { "b" } else { "a" });
        assert_eq!(lookup(&bad), Lookup::Refused);
        let other = bad.replacen("sk_", "zz9_", 1);
        assert_eq!(lookup(&other), Lookup::Refused);
        for foreign in [
            "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL",
            "sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dcABCDEFGH00000", // 37: not keyctl's shape
            "x",
        ] {
            assert_eq!(lookup(foreign), Lookup::HashOnly, "{foreign}");
        }
        let long = "a".repeat(MAX_FOREIGN_LEN + 1);
        for refused in ["", "a b", "tab\there", "é-secret", long.as_str()] {
            assert_eq!(lookup(refused), Lookup::Refused, "{refused:?}");
        }
    }

    #[test]
    fn foreign_prefixes_show_at_most_a_third() {
        let newapi = format!("sk-{}", "a".repeat(48));
        assert_eq!(foreign_display_prefix(&newapi), &newapi[..12]);
        assert_eq!(foreign_display_prefix("0123456789abcdef"), "01234");
        assert_eq!(foreign_display_prefix("ab"), "");
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", sample()), "Secret(<redacted>)");
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
