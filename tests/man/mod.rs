//! The man pages: one per command and subcommand (section 1) and keyctl(7) for the
//! concepts. Options come from the clap definitions, exit codes from `core::exit`,
//! environment variables from `cli::ENVIRONMENT`; the prose and the examples from
//! `pages.rs`, whose examples `tests/generated.rs` also runs.

pub mod pages;
pub mod roff;

use clap::{Arg, Command};
use keyctl::core::exit::Exit;
use keyctl::core::limits::{RateLimit, RateUnit};
use keyctl::core::policy::Outcome;

use pages::{Example, PageText, CONCEPTS, DATE, PAGES};
use roff::{bold, code, escape, italic, Page};

/// A command of the clap tree with its words (`["logs", "prune"]`).
pub struct Node {
    pub words: Vec<String>,
    pub cmd: Command,
}

impl Node {
    pub fn file_name(&self) -> String {
        format!("{}.1", self.title().to_lowercase())
    }
    fn title(&self) -> String {
        let mut parts = vec!["KEYCTL".to_string()];
        parts.extend(self.words.iter().map(|w| w.to_uppercase()));
        parts.join("-")
    }
    fn invocation(&self) -> String {
        let mut parts = vec!["keyctl".to_string()];
        parts.extend(self.words.iter().cloned());
        parts.join(" ")
    }
    fn key(&self) -> String {
        self.words.join(" ")
    }
}

/// Every visible command, parents before their subcommands.
pub fn nodes() -> Vec<Node> {
    fn walk(cmd: &Command, words: Vec<String>, out: &mut Vec<Node>) {
        out.push(Node {
            words: words.clone(),
            cmd: cmd.clone(),
        });
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut w = words.clone();
            w.push(sub.get_name().to_string());
            walk(sub, w, out);
        }
    }
    let mut cmd = keyctl::cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, Vec::new(), &mut out);
    out
}

/// The text of the page for `key` (`""` for keyctl itself, `"audit verify"`).
pub fn text_for(key: &str) -> Option<&'static PageText> {
    PAGES.iter().find(|p| p.command == key)
}

/// Every page as (file name, contents), sorted by name.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let nodes = nodes();
    let names: Vec<String> = nodes.iter().map(Node::file_name).collect();
    let mut out: Vec<(String, Vec<u8>)> = nodes
        .iter()
        .map(|n| {
            let text = text_for(&n.key())
                .unwrap_or_else(|| panic!("tests/man/pages.rs has no page for '{}'", n.key()));
            (n.file_name(), command_page(n, text, &names).into_bytes())
        })
        .collect();
    out.push(("keyctl.7".to_string(), concepts_page(&names).into_bytes()));
    out.sort();
    out
}

fn header(page: &mut Page, title: &str, section: &str, what: &str) {
    page.macro_line(
        "TH",
        &[
            title,
            section,
            DATE,
            &format!("keyctl {}", env!("CARGO_PKG_VERSION")),
            "keyctl manual",
        ],
    );
    page.section("Name");
    page.raw_text(what);
}

fn command_page(node: &Node, text: &PageText, names: &[String]) -> String {
    let mut page = Page::default();
    let about = node
        .cmd
        .get_about()
        .map(|a| a.to_string())
        .unwrap_or_default();
    header(
        &mut page,
        &node.title(),
        "1",
        &format!(
            "{} \\- {}",
            escape(&node.invocation().replace(' ', "-")),
            escape(&about)
        ),
    );
    synopsis(&mut page, node);
    page.section("Description");
    page.markup(text.description);
    let subs: Vec<&Command> = node
        .cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .collect();
    if !subs.is_empty() {
        page.section("Commands");
        for sub in subs {
            let page_name = format!("{}-{}", node.invocation().replace(' ', "-"), sub.get_name());
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            page.tagged(
                &bold(sub.get_name()),
                &[format!("{}. See {}(1).", escape(&about), code(&page_name))],
            );
        }
    }
    if node.key() == "verify" {
        results_table(&mut page);
    }
    for (title, body) in text.sections {
        page.section(title);
        page.markup(body);
    }
    let (own, global): (Vec<&Arg>, Vec<&Arg>) = node
        .cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .partition(|a| !is_global(a));
    if node.words.is_empty() {
        options(&mut page, "Options", &global);
    } else {
        if !own.is_empty() {
            options(&mut page, "Options", &own);
        }
        options(&mut page, "Global options", &global);
    }
    examples(&mut page, text.examples);
    exit_status(&mut page, text.exits);
    environment(&mut page);
    files(&mut page);
    see_also(&mut page, &node.file_name(), names, node.words.is_empty());
    page.finish()
}

fn concepts_page(names: &[String]) -> String {
    let mut page = Page::default();
    header(
        &mut page,
        "KEYCTL",
        "7",
        "keyctl \\- API keys, references, times and text in the keyctl key manager",
    );
    page.section("Description");
    page.markup(CONCEPTS.description);
    for (title, body) in CONCEPTS.sections {
        page.section(title);
        page.markup(body);
    }
    examples(&mut page, CONCEPTS.examples);
    environment(&mut page);
    files(&mut page);
    see_also(&mut page, "keyctl.7", names, true);
    page.finish()
}

/// Help and version are clap's own and global in effect.
fn is_global(arg: &Arg) -> bool {
    arg.is_global_set() || matches!(arg.get_id().as_str(), "help" | "version")
}

/// An option that takes a value (not a flag; `--explain` is an option of no values).
fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values() && arg.get_num_args().is_none_or(|n| n.max_values() > 0)
}

fn value_names(arg: &Arg) -> Vec<String> {
    match arg.get_value_names() {
        Some(names) => names.iter().map(|n| n.to_string()).collect(),
        None => vec![arg.get_id().as_str().to_uppercase()],
    }
}

/// `--name VALUE`, `-q, --quiet` or `KEYREF...`, in roff.
fn option_term(arg: &Arg) -> String {
    if arg.is_positional() {
        let many = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        let names = value_names(arg).join(" ");
        return italic(&if many { format!("{names}...") } else { names });
    }
    let mut flags = Vec::new();
    if let Some(s) = arg.get_short() {
        flags.push(bold(&format!("-{s}")));
    }
    if let Some(l) = arg.get_long() {
        flags.push(bold(&format!("--{l}")));
    }
    let mut term = flags.join(", ");
    if takes_value(arg) {
        term.push(' ');
        term.push_str(&italic(&value_names(arg).join(" ")));
    }
    term
}

/// The synopsis form of one argument: `[--since WHEN]` is left to [OPTIONS]; a required
/// option and every positional are spelled out.
fn synopsis_words(cmd: &Command) -> String {
    let mut words = Vec::new();
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
    {
        if arg.is_required_set() {
            words.push(option_term(arg));
        }
    }
    let has_options = cmd
        .get_arguments()
        .any(|a| !a.is_hide_set() && !a.is_positional() && !a.is_required_set());
    if has_options {
        words.push(format!("[{}]", italic("OPTIONS")));
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let term = option_term(arg);
        words.push(if arg.is_required_set() {
            term
        } else {
            format!("[{term}]")
        });
    }
    words.join(" ")
}

fn synopsis(page: &mut Page, node: &Node) {
    page.section("Synopsis");
    let mut forms = Vec::new();
    let subs: Vec<&Command> = node
        .cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .collect();
    if node.words.is_empty() {
        forms.push((
            node.invocation(),
            format!("[{}] {}", italic("OPTIONS"), italic("COMMAND")),
        ));
    } else {
        if !node.cmd.is_subcommand_required_set() {
            forms.push((node.invocation(), synopsis_words(&node.cmd)));
        }
        for sub in subs {
            forms.push((
                format!("{} {}", node.invocation(), sub.get_name()),
                synopsis_words(sub),
            ));
        }
    }
    for (i, (name, words)) in forms.iter().enumerate() {
        if i > 0 {
            page.macro_line("br", &[]);
        }
        page.raw_text(&format!("{} {}", bold(name), words));
    }
}

fn options(page: &mut Page, title: &str, args: &[&Arg]) {
    page.section(title);
    for arg in args {
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        // Paragraphs of a long help stay paragraphs; lines inside one are joined.
        let mut body: Vec<String> = help
            .split("\n\n")
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty())
            .map(|p| escape(&p))
            .collect();
        let mut notes = Vec::new();
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| bold(v.get_name()))
            .collect();
        if takes_value(arg) && !values.is_empty() && !arg.is_hide_possible_values_set() {
            notes.push(format!("One of {}.", values.join(", ")));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if takes_value(arg) && !defaults.is_empty() && !arg.is_hide_default_value_set() {
            notes.push(format!("Default: {}.", bold(&defaults.join(","))));
        }
        if let Some(var) = arg.get_env() {
            if !arg.is_hide_env_set() {
                notes.push(format!(
                    "Also read from the environment variable {}.",
                    bold(&var.to_string_lossy())
                ));
            }
        }
        if !notes.is_empty() {
            body.push(notes.join(" "));
        }
        page.tagged(&option_term(arg), &body);
    }
}

fn examples(page: &mut Page, examples: &[Example]) {
    if examples.is_empty() {
        return;
    }
    page.section("Examples");
    for ex in examples {
        let mut what = ex.what.to_string();
        if ex.exit != 0 {
            what.push_str(&format!(" The exit status is {}.", ex.exit));
        }
        page.paragraph(&what);
        page.code(ex.run);
    }
}

fn exit_status(page: &mut Page, exits: &[&[Exit]]) {
    page.section("Exit status");
    for e in exits.iter().flat_map(|group| group.iter()) {
        let text = if e.meaning.starts_with(e.name) {
            e.meaning.to_string()
        } else {
            format!("{}: {}", e.name, e.meaning)
        };
        page.tagged(&bold(&e.code.to_string()), &[escape(&text)]);
    }
}

fn environment(page: &mut Page) {
    page.section("Environment");
    for var in keyctl::cli::ENVIRONMENT {
        page.tagged(&bold(var.name), &[escape(var.long)]);
    }
}

fn files(page: &mut Page) {
    page.section("Files");
    page.markup(pages::FILES);
}

fn see_also(page: &mut Page, this: &str, names: &[String], note_keyutils: bool) {
    page.section("See also");
    let mut refs: Vec<(String, &str)> = names
        .iter()
        .map(String::as_str)
        .chain(["keyctl.7"])
        .filter(|n| *n != this)
        .filter_map(|n| n.rsplit_once('.'))
        .map(|(stem, section)| (stem.to_string(), section))
        .collect();
    // keyctl(1) and keyctl(7) first, then the commands in the order of their words.
    refs.sort_by_key(|(stem, section)| {
        (
            stem.split('-').map(String::from).collect::<Vec<_>>(),
            *section,
        )
    });
    // \% keeps a page name from being hyphenated across lines.
    let refs: Vec<String> = refs
        .iter()
        .map(|(stem, section)| format!("{}({section})", code(stem)))
        .collect();
    page.raw_text(&refs.join(", "));
    if note_keyutils {
        page.paragraph(pages::KEYUTILS_NOTE);
    }
}

/// verify's answers, from the policy itself: code, HTTP status, message, exit code.
fn results_table(page: &mut Page) {
    let minute = RateLimit {
        count: 60,
        unit: RateUnit::Minute,
    };
    let outcomes = [
        Outcome::IpBlocked,
        Outcome::Invalid,
        Outcome::Revoked,
        Outcome::Inactive,
        Outcome::Expired,
        Outcome::IpNotAllowed,
        Outcome::ForbiddenDeployment,
        Outcome::ForbiddenScope("S".into()),
        Outcome::ForbiddenModel,
        Outcome::RateLimited(minute),
        Outcome::QuotaExceeded("daily"),
        Outcome::CreditsExhausted,
        Outcome::Valid,
        Outcome::BadRequest("the field and its problem".into()),
        Outcome::Unavailable,
    ];
    page.section("Results");
    page.paragraph(pages::RESULTS_INTRO);
    for o in outcomes {
        let term = format!(
            "{} ({}, exit {})",
            bold(o.code()),
            o.http_status(),
            o.exit_code()
        );
        page.tagged(&term, &[escape(&o.message())]);
    }
    page.paragraph(pages::RESULTS_ORDER);
}

/// The page texts' own checks: every page has prose and a tested example.
pub fn check_texts() -> Vec<String> {
    let keys: Vec<String> = nodes().iter().map(Node::key).collect();
    let mut problems = Vec::new();
    for text in PAGES {
        if !keys.iter().any(|k| k == text.command) {
            problems.push(format!("page text for '{}' has no command", text.command));
        }
        if text.examples.is_empty() {
            problems.push(format!("page '{}' has no example", text.command));
        }
        if text.exits.is_empty() {
            problems.push(format!("page '{}' lists no exit status", text.command));
        }
        for ex in text.examples {
            if !text
                .exits
                .iter()
                .flat_map(|g| g.iter())
                .any(|e| e.code == ex.exit)
            {
                problems.push(format!(
                    "page '{}': an example exits {}, which its EXIT STATUS does not list",
                    text.command, ex.exit
                ));
            }
        }
    }
    problems
}

/// The file name of the page a text belongs to (`keyctl-logs-prune.1`).
pub fn text_name(text: &PageText) -> String {
    if text.command.is_empty() {
        "keyctl.1".to_string()
    } else {
        format!("keyctl-{}.1", text.command.replace(' ', "-"))
    }
}
