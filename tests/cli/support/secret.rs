//! The secret format (SPEC §2) and its checksum, recomputed independently of keyctl's
//! code, and digests for comparing stored values.

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), bit by bit.
pub fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` in base62 (`0-9A-Za-z`), most significant digit first, zero-padded to 6.
pub fn base62_6(n: u32) -> String {
    let mut n = u64::from(n);
    let mut digits = [b'0'; 6];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    assert_eq!(n, 0, "62^6 > 2^32, so six digits always suffice");
    String::from_utf8(digits.to_vec()).unwrap()
}

/// Asserts `secret` is `<prefix>_<mode>_<32 base62><6-char base62 CRC32>`.
pub fn assert_secret(secret: &str, prefix: &str, mode: &str) {
    let head = format!("{prefix}_{mode}_");
    let body = secret
        .strip_prefix(&head)
        .unwrap_or_else(|| panic!("{secret:?} does not start with {head:?}"));
    assert_eq!(body.len(), 38, "body of {secret:?} is not 38 characters");
    assert!(
        body.bytes().all(|b| BASE62.contains(&b)),
        "body of {secret:?} is not base62"
    );
    let (before, sum) = secret.split_at(secret.len() - 6);
    assert_eq!(
        sum,
        base62_6(crc32_ieee(before.as_bytes())),
        "checksum of {secret:?}"
    );
}

/// True when `text` holds something shaped like a full secret (a prefix, a mode and
/// more than the 4 body characters of a display prefix).
pub fn has_secret_shape(text: &str) -> bool {
    for mode in ["_live_", "_test_"] {
        let mut rest = text;
        while let Some(i) = rest.find(mode) {
            let after = &rest[i + mode.len()..];
            let run = after.bytes().take_while(u8::is_ascii_alphanumeric).count();
            if run > 4 {
                return true;
            }
            rest = after;
        }
    }
    false
}

/// A well-formed secret (right shape, right checksum) that no store holds: `body32`
/// is its 32 random characters.
pub fn forge_secret(prefix: &str, mode: &str, body32: &str) -> String {
    assert_eq!(body32.len(), 32, "the random part is 32 characters");
    let before = format!("{prefix}_{mode}_{body32}");
    let secret = format!("{before}{}", base62_6(crc32_ieee(before.as_bytes())));
    assert_secret(&secret, prefix, mode);
    secret
}

/// SHA-256 of `bytes`, computed here (not by keyctl's code).
pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn checksum_helpers_match_known_values() {
    // The CRC-32/ISO-HDLC check value, and base62 edges.
    assert_eq!(crc32_ieee(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32_ieee(b""), 0);
    assert_eq!(base62_6(0), "000000");
    assert_eq!(base62_6(61), "00000z");
    assert_eq!(base62_6(62), "000010");
    assert_eq!(base62_6(u32::MAX), "4gfFC3");
    assert!(has_secret_shape("x sk_live_abcde y"));
    assert!(!has_secret_shape("created key (sk_live_abcd...)"));
}
