//! Validation of free-text fields: names, tags, scopes, models.

use super::key::looks_like_key_id;

const MAX_TEXT: usize = 200;

/// A key name: non-empty, no surrounding spaces, no control characters, and not
/// shaped like a key id (ids are matched first, so such a name could not be used).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the key name is empty: give a name like 'ci-deploy'".into());
    }
    if name.trim() != name {
        return Err(format!(
            "invalid name '{name}': remove the leading or trailing spaces"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("invalid name: it contains control characters; use printable text".into());
    }
    if name.chars().count() > MAX_TEXT {
        return Err(format!("invalid name: longer than {MAX_TEXT} characters"));
    }
    if looks_like_key_id(name) {
        return Err(format!(
            "invalid name '{name}': names shaped like key ids (key_ and 12 characters) are reserved"
        ));
    }
    Ok(())
}

/// A free-text field (description, owner, category, group, deployment): one line of
/// printable text, so tables stay aligned and csv rows stay one line each.
pub fn validate_text(flag: &str, value: &str) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err(format!(
            "invalid {flag}: it contains control characters; use one line of printable text"
        ));
    }
    if value.chars().count() > 10 * MAX_TEXT {
        return Err(format!(
            "invalid {flag}: longer than {} characters",
            10 * MAX_TEXT
        ));
    }
    Ok(())
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
        for bad in ["", "   ", " x", "x ", "a\tb", "key_abcdefghijkl"] {
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
