//! Shell completion: registration scripts (`keyctl completions SHELL`) and KEYREF
//! candidates read from the store the completed command would use. A candidate lookup
//! never fails loudly: no store, no candidates.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap_complete::env::Shells;
use clap_complete::CompletionCandidate;

use crate::context::start_clock;
use crate::core::audit::ACTIONS as AUDIT_ACTIONS;
use crate::core::key::looks_like_key_id;
use crate::core::model::{KeyRecord, State};
use crate::core::naming::meant_by_name;
use crate::core::settings::SETTINGS;
use crate::store::{self, Intent, Location, OpenOptions, Starting};

/// The environment variable the registration scripts set when they call keyctl back
/// (keyctl's own name, so a `COMPLETE` set for another tool cannot trigger it).
pub const COMPLETE_VAR: &str = "KEYCTL_COMPLETE";

/// `--db` from the command line being completed, when it names one.
static COMPLETION_DB: OnceLock<PathBuf> = OnceLock::new();

/// Handles a completion request (`KEYCTL_COMPLETE=bash keyctl -- ...`) for the command
/// tree `command` builds (`cli::command`, passed in so this module need not know the
/// parser that uses its candidates) and exits; returns when this is a normal run.
/// Called first thing in `main`.
pub fn handle_request(args: &[OsString], command: fn() -> clap::Command) {
    if std::env::var_os(COMPLETE_VAR).is_none_or(|v| v.is_empty() || v == "0") {
        return;
    }
    let mut words = args.iter().skip_while(|a| *a != "--");
    while let Some(w) = words.next() {
        let w = w.to_string_lossy();
        if w == "--db" {
            if let Some(v) = words.next() {
                let _ = COMPLETION_DB.set(PathBuf::from(v));
            }
        } else if let Some(v) = w.strip_prefix("--db=") {
            let _ = COMPLETION_DB.set(PathBuf::from(v));
        }
    }
    clap_complete::CompleteEnv::with_factory(command)
        .var(COMPLETE_VAR)
        .completer("keyctl")
        .complete();
}

/// The registration script for a shell (bash, zsh, fish, powershell, elvish); it calls
/// `keyctl` back for candidates, so KEYREFs complete with the store's key names.
pub fn registration_script(shell: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let shells = Shells::builtins();
    let Some(completer) = shells.completer(shell) else {
        return Err(std::io::Error::other(format!("unknown shell '{shell}'")));
    };
    if shell == "bash" {
        return out.write_all(BASH_SCRIPT.as_bytes());
    }
    completer.write_registration(COMPLETE_VAR, "keyctl", "keyctl", "keyctl", out)
}

/// keyctl's own bash script, speaking clap's protocol (the variables and `-- WORDS`
/// that clap_complete's bash script passes) but safe with any key name:
/// - candidates are split on \v by `read -a`, never by `$(...)` word splitting, so a
///   key named `*` is not globbed into the folder's files;
/// - bash splits words at `:` and `=` (COMP_WORDBREAKS); the script glues those pieces
///   back for keyctl (`team:ci`, `--db=PATH`) and strips the glued part from the replies,
///   as bash-completion's `__ltrim_colon_completions` does, without changing
///   COMP_WORDBREAKS and without needing bash-completion;
/// - words are dequoted (never `eval`ed) before keyctl sees them, and replies are
///   shell-quoted unless the word was opened with a quote.
const BASH_SCRIPT: &str = r#"# keyctl completion for bash: `source <(keyctl completions bash)`.
# Needs no bash-completion and leaves COMP_WORDBREAKS as it is.

# Quote removal without expansion (never eval): a\ b, 'a b' and "a b" all give `a b`.
_keyctl_dequote() {
    local in=$1 c q=''
    REPLY=
    while [[ -n $in ]]; do
        c=${in:0:1}
        in=${in:1}
        if [[ $q == "'" ]]; then
            if [[ $c == "'" ]]; then q=; else REPLY+=$c; fi
        elif [[ $c == \\ && ( -z $q || $in == [\"\\\$\`]* ) ]]; then
            REPLY+=${in:0:1}
            in=${in:1}
        elif [[ $c == '"' ]]; then
            if [[ -n $q ]]; then q=; else q='"'; fi
        elif [[ $c == "'" && -z $q ]]; then
            q="'"
        else
            REPLY+=$c
        fi
    done
}

_clap_complete_keyctl() {
    local rest=$COMP_LINE piece blank i j=-1 cword=0 head='' typed quoted=''
    local -a words=()
    # Bash splits `team:ci` into team, :, ci (and a URL at its ':' and '@'). Glue
    # pieces that meet at ':', '=' or '@' with no blank between them back into one
    # word; drop what follows the cursor in the word being completed.
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        piece=${COMP_WORDS[i]}
        blank=
        [[ $rest == [[:blank:]]* ]] && blank=1
        rest=${rest#"${rest%%[![:blank:]]*}"}
        rest=${rest#"$piece"}
        if ((j >= 1)) && [[ -z $blank ]] && [[ $piece == [:=@]* || ${words[j]} == *[:=@] ]]; then
            ((i > COMP_CWORD && j == cword)) && continue
        else
            ((j++))
            words[j]=
        fi
        if ((i == COMP_CWORD)); then
            cword=$j
            # Right after `team:` the cursor's piece is the `:` itself: bash completes
            # the empty text after it, so the colon is glued text too.
            if [[ -n $piece && -z ${piece//[:=@]/} ]]; then
                words[j]+=$piece
                piece=''
            fi
            head=${words[j]}
            typed=$piece
            # Bash 4+ passes the word up to the cursor as $2, an opening quote removed.
            if ((BASH_VERSINFO[0] >= 4)); then
                typed=$2
                [[ $piece == [\"\']* ]] && quoted=1
            fi
            piece=$typed
        fi
        words[j]+=$piece
    done
    for i in "${!words[@]}"; do
        if ((i != cword)); then
            _keyctl_dequote "${words[i]}"
            words[i]=$REPLY
        fi
    done
    # The glued text before the cursor's piece: keyctl's candidates start with it, but
    # bash replaces only the piece, so it is cut from the replies.
    _keyctl_dequote "$head"
    head=$REPLY
    if [[ -n $quoted ]]; then
        words[cword]=$head$typed
    else
        _keyctl_dequote "$typed"
        words[cword]=$head$REPLY
    fi

    local space=true out status candidate
    compopt +o nospace 2>/dev/null && space=false
    out=$(
        _CLAP_IFS=$'\v' \
        _CLAP_COMPLETE_INDEX=$cword \
        _CLAP_COMPLETE_COMP_TYPE=${COMP_TYPE-} \
        _CLAP_COMPLETE_SPACE=$space \
        KEYCTL_COMPLETE=bash \
        keyctl -- "${words[@]}"
    )
    status=$?
    COMPREPLY=()
    if ((status != 0)); then
        unset COMPREPLY
        return
    fi
    # One candidate per \v-separated field, taken as is: read -a neither splits at
    # blanks nor globs (unlike COMPREPLY=( $(...) ), which made `*` the folder's files).
    IFS=$'\v' read -r -d '' -a COMPREPLY < <(printf '%s' "$out") || :
    for i in "${!COMPREPLY[@]}"; do
        candidate=${COMPREPLY[i]#"$head"}
        # Quoted for the command line; a listing (Tab Tab) shows the names as they are.
        if [[ -z $quoted && -n $candidate && ${COMP_TYPE-} != 63 ]]; then
            printf -v candidate %q "$candidate"
        fi
        COMPREPLY[i]=$candidate
    done
    if [[ $space == false && ${COMPREPLY[0]-} =~ [=/:]$ ]]; then
        compopt -o nospace
    fi
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -o nospace -o bashdefault -o nosort -F _clap_complete_keyctl keyctl
else
    complete -o nospace -o bashdefault -F _clap_complete_keyctl keyctl
fi
"#;

/// The store the completed command would use: its `--db`, else `KEYCTL_DB`, else the
/// default (resolved as the commands resolve it).
fn store_location() -> Option<Location> {
    let (given, flag, from_argv) = match COMPLETION_DB.get() {
        Some(p) => (Some(p.clone()), "--db", true),
        None => (
            std::env::var_os("KEYCTL_DB").map(PathBuf::from),
            "KEYCTL_DB",
            false,
        ),
    };
    crate::context::locate(given.as_deref(), flag, from_argv)
        .ok()
        .flatten()
        .map(|(location, _)| location)
}

/// How many names (and ids) a completion reads at most: enough to pick from, few
/// enough to read through the indexes in milliseconds on a store of any size.
pub const CANDIDATE_CAP: u32 = 200;

/// The candidate offered after a list that was cut at [`CANDIDATE_CAP`]: it shares no
/// start with the keys, so no shell inserts a common start that unread keys may lack.
pub const MORE_HINT: &str = "…and more";

/// The store's keys for which `wanted` holds whose name or id starts with `typed`, as
/// KEYREF candidates: each name that resolves (as the command would resolve it) to one
/// of those keys, with its id and status as help, then every such key's id, hidden
/// (offered once a word starts like one, so a key that shares its name is still
/// reachable). Read through the indexes, at most [`CANDIDATE_CAP`] names and ids; a
/// cut list ends with [`MORE_HINT`].
fn keys_where(typed: &OsStr, wanted: fn(&KeyRecord) -> bool) -> Vec<CompletionCandidate> {
    // A word that is not UTF-8 names no key.
    let Some(typed) = typed.to_str() else {
        return Vec::new();
    };
    // Only a regular file is opened: reading a FIFO's header would block the shell.
    let Some(location) = store_location().filter(|l| l.sqlite_path().is_none_or(Path::is_file))
    else {
        return Vec::new();
    };
    let Ok((mut store, _)) = store::open(&location, &OpenOptions::default()) else {
        return Vec::new();
    };
    let Ok(tx) = store.begin(Intent::Read) else {
        return Vec::new();
    };
    // The commands' clock (`KEYCTL_NOW` included); a clock they would refuse offers
    // nothing, as they would run nothing.
    let Ok((now, _)) = start_clock() else {
        return Vec::new();
    };
    let Ok((mut named, more_names)) = tx.keys_starting(Starting::Name, typed, CANDIDATE_CAP) else {
        return Vec::new();
    };
    // `list --sort name` order (ASCII case folded), as completion offered before it
    // read through the index; a name's keys stay in creation order.
    named.sort_by(|a, b| {
        let fold = |k: &KeyRecord| k.settings.name.to_ascii_lowercase();
        fold(a).cmp(&fold(b))
    });
    let mut groups: HashMap<&str, Vec<KeyRecord>> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for k in &named {
        let group = groups.entry(k.settings.name.as_str()).or_default();
        if group.is_empty() {
            order.push(&k.settings.name);
        }
        group.push(k.clone());
    }
    let mut names: Vec<CompletionCandidate> = Vec::new();
    for name in order {
        let group = groups.remove(name).unwrap_or_default();
        let [meant] = &meant_by_name(group, now)[..] else {
            continue; // ambiguous: the command would refuse the name
        };
        // A name shaped like another key's id or prefix is ambiguous too (looked up
        // only when it has that shape: one query per name would dominate).
        let bare = name.strip_suffix("...").unwrap_or(name);
        let other = shaped_like_id_or_prefix(bare) && {
            let by_id = tx.key_by_id(bare).ok().flatten().into_iter();
            let by_prefix = tx.keys_by_prefix(bare).unwrap_or_default().into_iter();
            by_id.chain(by_prefix).any(|k| k.id != meant.id)
        };
        if wanted(meant) && !other {
            let help = format!("{} {}", meant.id, meant.status(now).as_str());
            names.push(CompletionCandidate::new(name).help(Some(help.into())));
        }
    }
    // Ids are read only when no name is offered: the completion engine drops hidden
    // candidates beside visible ones.
    let (by_id, more_ids) = if names.is_empty() {
        tx.keys_starting(Starting::Id, typed, CANDIDATE_CAP)
            .unwrap_or_default()
    } else {
        (Vec::new(), false)
    };
    let ids: Vec<CompletionCandidate> = by_id
        .iter()
        .filter(|k| wanted(k))
        .map(|k| {
            CompletionCandidate::new(&k.id)
                .help(Some(k.settings.name.clone().into()))
                .hide(true)
        })
        .collect();
    // The hint follows whichever list is shown, and hides with the ids so that it
    // does not push them out.
    let (more, hint_hidden) = if names.is_empty() {
        (more_ids || more_names, !ids.is_empty())
    } else {
        (more_names, false)
    };
    names.extend(ids);
    if more {
        names.push(
            CompletionCandidate::new(MORE_HINT)
                .help(Some("more keys match: type more of the name".into()))
                .hide(hint_hidden),
        );
    }
    names
}

/// Whether `text` could be a key's id (`key_...`) or display prefix
/// (`PREFIX_live_XXXX`, `PREFIX_test_XXXX`): only such a name can be shadowed by another
/// key's id or prefix.
fn shaped_like_id_or_prefix(text: &str) -> bool {
    looks_like_key_id(text) || ["_live_", "_test_"].iter().any(|mode| text.contains(mode))
}

/// A key that a rotation replaced (it cannot be enabled or rotated again).
fn superseded(k: &KeyRecord) -> bool {
    k.rotated_to.is_some()
}

/// Every key, revoked ones too: show, logs, usage, audit and delete take any key.
pub fn any_key(typed: &OsStr) -> Vec<CompletionCandidate> {
    keys_where(typed, |_| true)
}

/// Keys not revoked: what revoke and edit change.
pub fn unrevoked_keys(typed: &OsStr) -> Vec<CompletionCandidate> {
    keys_where(typed, |k| k.state != State::Revoked)
}

/// Keys disable changes: active ones (expired too: disabling one keeps an edit of
/// its expiry from reviving it).
pub fn keys_to_disable(typed: &OsStr) -> Vec<CompletionCandidate> {
    keys_where(typed, |k| k.state == State::Active)
}

/// Keys enable changes: disabled ones, except a key a rotation replaced.
pub fn keys_to_enable(typed: &OsStr) -> Vec<CompletionCandidate> {
    keys_where(typed, |k| k.state == State::Disabled && !superseded(k))
}

/// Keys rotate accepts: not revoked and not already replaced by a rotation.
pub fn keys_to_rotate(typed: &OsStr) -> Vec<CompletionCandidate> {
    keys_where(typed, |k| k.state != State::Revoked && !superseded(k))
}

/// The store settings `config get|set` take, with their descriptions.
pub fn setting_names() -> Vec<CompletionCandidate> {
    let multiplier = crate::core::settings::MULTIPLIER_SETTING;
    SETTINGS
        .iter()
        .map(|(name, _, about)| CompletionCandidate::new(name).help(Some((*about).into())))
        // A group's multiplier: the prefix, then the group's name as typed.
        .chain([
            CompletionCandidate::new(crate::core::store_limits::MULTIPLIER_PREFIX)
                .help(Some(multiplier.2.into())),
        ])
        .collect()
}

/// The actions `audit --action` filters by.
pub fn audit_actions() -> Vec<CompletionCandidate> {
    AUDIT_ACTIONS.iter().map(CompletionCandidate::new).collect()
}
