//! The interactive `create` wizard (dialoguer on stderr): name, description, expiry
//! preset, scopes. Only run when stdin and stderr are terminals.

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Input, Select};

use crate::error::{Error, Result};

/// What the wizard collected, in the shape of create flags.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    pub name: String,
    pub description: Option<String>,
    /// `1d`, `30d`, `90d` or `never`.
    pub expires: String,
    pub scopes: Vec<String>,
}

const PRESETS: [(&str, &str); 4] = [
    ("1 day", "1d"),
    ("30 days", "30d"),
    ("90 days", "90d"),
    ("Never", "never"),
];

extern "C" fn restore_and_exit(_: libc::c_int) {
    // Only async-signal-safe calls: show the cursor again (Select hides it), end the
    // line, and leave. Nothing has been written to the store yet.
    const SHOW_CURSOR: &[u8] = b"\x1b[?25h\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, SHOW_CURSOR.as_ptr().cast(), SHOW_CURSOR.len());
        libc::_exit(130);
    }
}

fn prompt_error(e: dialoguer::Error) -> Error {
    Error::runtime(format!("could not read the answer: {e}"))
}

/// Runs the wizard. `check_name` validates a name (syntax and that no key holds it);
/// Ctrl-C restores the terminal and exits 130, Esc cancels (exit 1); nothing is created.
pub fn run(check_name: &dyn Fn(&str) -> std::result::Result<(), String>) -> Result<Answers> {
    // SAFETY: installing a handler that only calls async-signal-safe functions.
    unsafe {
        libc::signal(
            libc::SIGINT,
            restore_and_exit as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    let theme = ColorfulTheme::default();
    let name: String = Input::with_theme(&theme)
        .with_prompt("Key name")
        .validate_with(|input: &String| check_name(input))
        .interact_text()
        .map_err(prompt_error)?;
    let description: String = Input::with_theme(&theme)
        .with_prompt("Description (optional)")
        .allow_empty(true)
        .interact_text()
        .map_err(prompt_error)?;
    let labels: Vec<&str> = PRESETS.iter().map(|(l, _)| *l).collect();
    let Some(choice) = Select::with_theme(&theme)
        .with_prompt("Expires")
        .items(&labels)
        .default(2)
        .interact_opt()
        .map_err(prompt_error)?
    else {
        return Err(Error::runtime("create cancelled: nothing changed"));
    };
    let scopes: String = Input::with_theme(&theme)
        .with_prompt("Scopes (comma-separated, empty = unrestricted)")
        .allow_empty(true)
        .validate_with(|input: &String| {
            crate::core::names::token_set("scope", &split_scopes(input)).map(|_| ())
        })
        .interact_text()
        .map_err(prompt_error)?;
    Ok(Answers {
        name,
        description: Some(description).filter(|d| !d.trim().is_empty()),
        expires: PRESETS[choice.min(PRESETS.len() - 1)].1.to_string(),
        scopes: split_scopes(&scopes),
    })
}

fn split_scopes(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
