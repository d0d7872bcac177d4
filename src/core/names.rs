//! Validation of free-text fields: names, tags, scopes, models.

use super::key::looks_like_key_id;
use super::text::looks_like_display_prefix;

const MAX_NAME: usize = 200;

/// A key name: non-empty, no surrounding spaces, free text (see [`validate_text`]), and
/// not shaped like a key id or a display prefix, so that no name can pose as another
/// key in a KEYREF.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the key name is empty: give a name like 'ci-deploy'".into());
    }
    // First: the messages below quote the name, which must hold no secret and no
    // hidden characters.
    validate_text("name", name)?;
    if name.trim() != name {
        return Err(format!(
            "invalid name '{name}': remove the leading or trailing spaces"
        ));
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("invalid name: longer than {MAX_NAME} characters"));
    }
    if looks_like_key_id(name) {
        return Err(format!(
            "invalid name '{name}': names shaped like key ids (key_ and 12 characters) are reserved"
        ));
    }
    if looks_like_display_prefix(name) {
        return Err(format!(
            "invalid name '{name}': names shaped like a key's display prefix (sk_live_ and 4 characters) are reserved, so a name cannot pose as another key"
        ));
    }
    Ok(())
}

/// A free-text field (description, owner, category, group, deployment, reason, actor,
/// endpoint, scope, model): one line of plain text with no invisible characters and no
/// pasted secret (SPEC §5). The one check every input path calls; `field` names the
/// value in the message (`--owner`, `line 3: owner`).
pub fn validate_text(field: &str, value: &str) -> Result<(), String> {
    super::text::validate_text(field, value)
}

/// Optional text: empty means absent.
pub fn optional_text(flag: &str, value: Option<&str>) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => validate_text(flag, v).map(|_| Some(v.trim().to_string())),
    }
}

/// A set of tokens (scopes, models): each non-empty, without spaces or commas;
/// duplicates removed, sorted so sets compare and print the same way every time.
pub fn token_set<S: AsRef<str>>(flag: &str, values: &[S]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        validate_text(flag, v.as_ref())?;
        let v = v.as_ref().trim();
        if v.is_empty()
            || v.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',')
        {
            return Err(format!(
                "invalid {flag} '{v}': use a word without spaces or commas, like 'read' or 'billing:write'"
            ));
        }
        out.push(v.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("ci-deploy").is_ok());
        assert!(validate_name("Production key #2").is_ok());
        for bad in [
            "",
            "   ",
            " x",
            "x ",
            "a\tb",
            "key_abcdefghijkl",
            "prod\u{200b}",
            "a\u{202e}b",
            "sk_live_C2PH",
            "sk_live_C2PH...",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_sets() {
        assert_eq!(
            token_set("--scope", &["write", "read", "read"]).unwrap(),
            ["read", "write"]
        );
        assert!(token_set("--scope", &["a b"]).is_err());
        assert!(token_set("--scope", &[""]).is_err());
        assert_eq!(optional_text("--owner", Some("  ")).unwrap(), None);
    }
}
