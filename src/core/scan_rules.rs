//! Rules for other secret scanners (`keyctl scan --rules`): one regex for every
//! keyctl-format string of a store's key prefixes, written in each scanner's own
//! format. The regex is RE2 syntax (gitleaks, TruffleHog and GitHub share it; Python's
//! `re`, which detect-secrets uses, reads it the same way). A regex cannot compute a
//! CRC32, so it cannot check the key's checksum: each rule says so, and points at
//! `keyctl scan`, which does.

use super::key::{Mode, BODY_LEN};

/// The scanners `--rules` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanner {
    Gitleaks,
    Trufflehog,
    Github,
    DetectSecrets,
}

/// What a rule tells its reader about the checksum.
const NO_CHECKSUM: &str = "A regex cannot check the key's CRC32 checksum: \
run 'keyctl scan' on a match to confirm it and name the key.";

/// A secret's characters may not continue on either side: the boundaries of
/// [`bounded_regex`] (GitHub's defaults for "before" and "after" a secret).
const NOT_BASE62: &str = "[^0-9A-Za-z]";

/// The prefixes sorted and without repeats, so the same store always gets the same
/// rule.
fn sorted<S: AsRef<str>>(prefixes: &[S]) -> Vec<&str> {
    let mut p: Vec<&str> = prefixes.iter().map(AsRef::as_ref).collect();
    p.sort_unstable();
    p.dedup();
    p
}

/// The secret alone: `sk_(?:live|test)_[0-9A-Za-z]{38}` (prefixes are `[a-z0-9]`, so
/// they need no escaping).
pub fn secret_regex<S: AsRef<str>>(prefixes: &[S]) -> String {
    let p = sorted(prefixes);
    let prefix = match p.as_slice() {
        [one] => (*one).to_string(),
        many => format!("(?:{})", many.join("|")),
    };
    format!(
        "{prefix}_(?:{}|{})_[0-9A-Za-z]{{{BODY_LEN}}}",
        Mode::Live.as_str(),
        Mode::Test.as_str()
    )
}

/// The secret as group 1, with a character that is not base62 (or the start or end
/// of the text) on each side, so a longer run of letters and digits is no match.
pub fn bounded_regex<S: AsRef<str>>(prefixes: &[S]) -> String {
    format!(
        "(?:^|{NOT_BASE62})({})(?:{NOT_BASE62}|$)",
        secret_regex(prefixes)
    )
}

/// The literal heads a secret starts with (`sk_live_`, `sk_test_`): the scanners'
/// keywords, which gate their regex.
pub fn keywords<S: AsRef<str>>(prefixes: &[S]) -> Vec<String> {
    sorted(prefixes)
        .iter()
        .flat_map(|p| [Mode::Live, Mode::Test].map(|m| format!("{p}_{}_", m.as_str())))
        .collect()
}

fn prefix_list<S: AsRef<str>>(prefixes: &[S]) -> String {
    sorted(prefixes).join(", ")
}

/// The rule for `scanner`, as a whole file's text.
pub fn rule<S: AsRef<str>>(scanner: Scanner, prefixes: &[S]) -> String {
    match scanner {
        Scanner::Gitleaks => gitleaks(prefixes),
        Scanner::Trufflehog => trufflehog(prefixes),
        Scanner::Github => github(prefixes),
        Scanner::DetectSecrets => detect_secrets(prefixes),
    }
}

/// A gitleaks config (`gitleaks detect --config FILE`) that keeps gitleaks' own rules
/// and adds this one.
fn gitleaks<S: AsRef<str>>(prefixes: &[S]) -> String {
    let keywords = keywords(prefixes)
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "# gitleaks rule for keyctl API keys, from 'keyctl scan --rules gitleaks'.\n\
         # Use: gitleaks detect --config THIS_FILE (gitleaks' default rules stay on).\n\
         [extend]\n\
         useDefault = true\n\
         \n\
         [[rules]]\n\
         id = \"keyctl-api-key\"\n\
         description = \"keyctl API key (prefixes: {list}; live and test). {NO_CHECKSUM}\"\n\
         regex = '''{regex}'''\n\
         secretGroup = 1\n\
         keywords = [{keywords}]\n",
        list = prefix_list(prefixes),
        regex = bounded_regex(prefixes),
    )
}

/// A TruffleHog config with one custom regex detector (`trufflehog filesystem PATH
/// --config FILE`). Its detectors have no description field: the note is a comment.
fn trufflehog<S: AsRef<str>>(prefixes: &[S]) -> String {
    let keywords: String = keywords(prefixes)
        .iter()
        .map(|k| format!("      - {k}\n"))
        .collect();
    format!(
        "# TruffleHog custom detector for keyctl API keys (prefixes: {list}; live and\n\
         # test), from 'keyctl scan --rules trufflehog'.\n\
         # Use: trufflehog filesystem PATH --config THIS_FILE\n\
         # {NO_CHECKSUM}\n\
         detectors:\n\
         \x20 - name: keyctl-api-key\n\
         \x20   keywords:\n\
         {keywords}\
         \x20   regex:\n\
         \x20     key: '{regex}'\n",
        list = prefix_list(prefixes),
        regex = bounded_regex(prefixes),
    )
}

/// The fields of GitHub's custom secret scanning pattern form (repository, organization
/// or enterprise settings: Code security, Secret scanning, Custom patterns; "More
/// options" shows Before and After secret).
fn github<S: AsRef<str>>(prefixes: &[S]) -> String {
    format!(
        "# GitHub custom secret scanning pattern for keyctl API keys, from\n\
         # 'keyctl scan --rules github'. Settings > Code security > Secret scanning >\n\
         # Custom patterns > New pattern; paste each field (Before and After secret are\n\
         # under \"More options\").\n\
         # {NO_CHECKSUM}\n\
         Pattern name: keyctl API key ({list})\n\
         Secret format: {secret}\n\
         Before secret: \\A|{NOT_BASE62}\n\
         After secret: \\z|{NOT_BASE62}\n",
        list = prefix_list(prefixes),
        secret = secret_regex(prefixes),
    )
}

/// A detect-secrets plugin file (`detect-secrets scan --plugin THIS_FILE`).
fn detect_secrets<S: AsRef<str>>(prefixes: &[S]) -> String {
    format!(
        "\"\"\"detect-secrets plugin for keyctl API keys (prefixes: {list}; live and test).\n\
         \n\
         Made by 'keyctl scan --rules detect-secrets'. Use:\n\
         \x20   detect-secrets scan --plugin THIS_FILE PATH\n\
         \n\
         {NO_CHECKSUM}\n\
         \"\"\"\n\
         import re\n\
         \n\
         from detect_secrets.plugins.base import RegexBasedDetector\n\
         \n\
         \n\
         class KeyctlDetector(RegexBasedDetector):\n\
         \x20   \"\"\"keyctl API key.\"\"\"\n\
         \n\
         \x20   secret_type = \"keyctl API key\"\n\
         \n\
         \x20   denylist = [\n\
         \x20       re.compile(r\"{regex}\"),\n\
         \x20   ]\n",
        list = prefix_list(prefixes),
        regex = bounded_regex(prefixes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_prefix_needs_no_group() {
        assert_eq!(secret_regex(&["sk"]), "sk_(?:live|test)_[0-9A-Za-z]{38}");
        assert_eq!(
            secret_regex(&["sk", "acme", "sk"]),
            "(?:acme|sk)_(?:live|test)_[0-9A-Za-z]{38}"
        );
        assert_eq!(
            keywords(&["sk", "acme"]),
            ["acme_live_", "acme_test_", "sk_live_", "sk_test_"]
        );
    }

    #[test]
    fn every_rule_says_a_regex_cannot_check_the_checksum() {
        for s in [
            Scanner::Gitleaks,
            Scanner::Trufflehog,
            Scanner::Github,
            Scanner::DetectSecrets,
        ] {
            let text = rule(s, &["sk"]);
            assert!(text.contains(NO_CHECKSUM), "{s:?}: {text}");
        }
    }
}
