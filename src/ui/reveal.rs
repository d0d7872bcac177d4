//! The one-time reveal of a new secret (`create`, later `rotate`).

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::keys::KeyJson;
use crate::core::key::Secret;
use crate::core::model::KeyRecord;

pub const WARNING: &str = "This key will not be shown again. Store it securely now.";

/// How the secret is shown: a framed block for a person at a terminal, the bare
/// secret for a pipe (`KEY=$(keyctl create --name ci)`), or a json object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevealStyle {
    Terminal,
    Plain,
    Json,
}

#[derive(Serialize)]
struct RevealJson<'a> {
    key: &'a str,
    key_details: KeyJson<'a>,
}

/// Writes the reveal. The caller flushes (and syncs) before committing the key; the
/// terminal frame is then closed by [`end_reveal`].
pub fn write_reveal(
    out: &mut dyn Write,
    style: RevealStyle,
    secret: &Secret,
    key: &KeyRecord,
    now: DateTime<Utc>,
) -> io::Result<()> {
    match style {
        RevealStyle::Plain => writeln!(out, "{}", secret.expose()),
        RevealStyle::Json => {
            let value = RevealJson {
                key: secret.expose(),
                key_details: KeyJson::new(key, now),
            };
            // Serialise into one buffer and write it whole: far fewer dynamic writes.
            let mut line = super::json::to_vec(&value)?;
            line.push(b'\n');
            out.write_all(&line)
        }
        RevealStyle::Terminal => {
            let text = secret.expose();
            let width = text.chars().count() + 2;
            let bar = "─".repeat(width);
            writeln!(out)?;
            let name = crate::core::text::escape(&key.settings.name);
            writeln!(out, "  API key \"{name}\" {} ({})", made(key), key.id)?;
            writeln!(out)?;
            writeln!(out, "  ╭{bar}╮")?;
            writeln!(out, "  │ {text} │")?;
            writeln!(out, "  ╰{bar}╯")?;
            writeln!(out, "  {WARNING}")
        }
    }
}

/// The terminal frame's end, after the commit: the clipboard line, if the secret was
/// copied, and a blank line.
pub fn end_reveal(out: &mut dyn Write, clipboard_line: Option<&str>) -> io::Result<()> {
    if let Some(line) = clipboard_line {
        writeln!(out, "  {line}")?;
    }
    writeln!(out)
}

/// What made the key: a key with a predecessor was born by `rotate`.
fn made(key: &KeyRecord) -> &'static str {
    if key.rotated_from.is_some() {
        "rotated"
    } else {
        "created"
    }
}

/// The key details that follow a plain reveal on stderr: `created key "ci" (…)`, or
/// `rotated key "ci" (…)` with the new key's id after a rotation.
pub fn details(key: &KeyRecord) -> String {
    let expires = key
        .settings
        .expires_at
        .map_or_else(|| "never".to_string(), crate::core::time::rfc3339);
    format!(
        "{} key \"{}\" ({}, {}, {} mode, expires {expires})",
        made(key),
        key.settings.name,
        key.id,
        key.prefix_shown(),
        key.mode.as_str()
    )
}
