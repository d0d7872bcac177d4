//! Confirmation prompts (dialoguer, on stderr). Callers only prompt when stdin and
//! stderr are terminals; scripts pass `--yes`.

use dialoguer::theme::ColorfulTheme;
use dialoguer::Confirm;

use crate::error::{Error, Result};

/// Asks a yes/no question, defaulting to no. An interrupted prompt counts as no.
pub fn confirm(question: &str) -> Result<bool> {
    Confirm::with_theme(&ColorfulTheme::default())
        // The question quotes stored names: never raw (SPEC §5).
        .with_prompt(crate::core::text::for_terminal(question))
        .default(false)
        .interact_opt()
        .map(|answer| answer.unwrap_or(false))
        .map_err(|e| Error::runtime(format!("could not read the answer: {e}")))
}
