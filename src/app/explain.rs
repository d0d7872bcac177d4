//! `verify --explain`: one request, every check of SPEC §3 evaluated, in a read-only
//! transaction. Nothing is recorded or counted (no log row, no counter, no failed
//! attempt against the IP). The rules are `core::checks`, the ones `verify` decides
//! by: the verdict is `policy::decide` on the same view.

use chrono::{DateTime, Utc};

use crate::app::verify::Verdict;
use crate::core::checks::Evaluated;
use crate::core::key::{self, hash_secret, KeyFormatError};
use crate::core::policy::{decide, explain, Request, VerifyView};
use crate::core::settings::Settings;
use crate::store::{Clock, Intent, Result, Store};

/// What the presented key is, as far as can be said without echoing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// Not of keyctl's format (nothing of it is shown).
    Malformed,
    /// Of keyctl's format with a wrong checksum (a typo or a cut-off copy).
    BadChecksum { display: String },
    /// Well-formed with a good checksum.
    WellFormed { display: String },
    /// Not keyctl's format but a possible secret of another system: looked up by its
    /// hash alone (an imported key; nothing of it is shown).
    HashOnly,
}

impl Presented {
    fn of(presented: &str) -> Presented {
        match key::parse(presented) {
            Ok(p) => Presented::WellFormed {
                display: key::display_prefix(p.prefix, p.mode, p.body),
            },
            Err(KeyFormatError::BadChecksum) => Presented::BadChecksum {
                display: format_prefix(presented),
            },
            Err(KeyFormatError::Malformed) if key::is_foreign_secret(presented) => {
                Presented::HashOnly
            }
            Err(KeyFormatError::Malformed) => Presented::Malformed,
        }
    }

    pub fn parsed(&self) -> bool {
        matches!(self, Presented::WellFormed { .. } | Presented::HashOnly)
    }

    /// `ok`, `malformed`, `bad_checksum` or `hash_only` (another format, looked up by
    /// its hash alone).
    pub fn format(&self) -> &'static str {
        match self {
            Presented::HashOnly => "hash_only",
            Presented::Malformed => "malformed",
            Presented::BadChecksum { .. } => "bad_checksum",
            Presented::WellFormed { .. } => "ok",
        }
    }

    /// The display prefix (`sk_live_4eC3`), for a key of keyctl's format.
    pub fn display(&self) -> Option<&str> {
        match self {
            Presented::Malformed | Presented::HashOnly => None,
            Presented::BadChecksum { display } | Presented::WellFormed { display } => Some(display),
        }
    }
}

/// The display prefix of a secret of keyctl's shape (`key::parse` got past the
/// shape): `<prefix>_<mode>_` and 4 body characters.
fn format_prefix(shaped: &str) -> String {
    // The prefix has no `_`; the mode is 4 characters and its `_`.
    let body = shaped.find('_').map_or(0, |i| i + 6);
    shaped
        .get(..body + key::DISPLAY_BODY_CHARS)
        .unwrap_or_default()
        .to_string()
}

/// One request explained: what was loaded for it, and the verdict `verify
/// --no-record` gives on it.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub presented: Presented,
    pub view: VerifyView,
    /// Invalid attempts from the request's IP within `failed-auth-window`.
    pub failed_attempts: Option<u64>,
    pub verdict: Verdict,
}

impl Explanation {
    /// Every check in order, each with its result and figure.
    pub fn checks<'a>(&'a self, req: &'a Request) -> Vec<Evaluated<'a>> {
        explain(&self.view, self.presented.parsed(), req)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.view.now
    }

    /// The settings in force (the explain view always loads them).
    pub fn settings(&self) -> Settings {
        self.view
            .settings
            .clone()
            .unwrap_or_else(Settings::defaults)
    }
}

/// Explains one request in one `Read` transaction; never writes.
pub fn explain_one(
    store: &mut dyn Store,
    presented: &str,
    req: &Request,
    clock: Clock,
) -> Result<Explanation> {
    let shown = Presented::of(presented);
    // As verify: a mistyped key is never hashed nor looked up.
    let hash = shown.parsed().then(|| hash_secret(presented));
    let (view, failed_attempts) =
        store
            .begin(Intent::Read)?
            .load_for_explain(hash.as_ref(), req.ip, clock)?;
    let verdict = Verdict::from(decide(view.clone(), shown.parsed(), req, view.now));
    Ok(Explanation {
        presented: shown,
        view,
        failed_attempts,
        verdict,
    })
}
