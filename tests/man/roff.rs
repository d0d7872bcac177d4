//! A small man(7) writer: escapes text, wraps it, and turns the pages' light markup
//! into macros. clap_mangen's own renderer is not used because its output cannot be
//! made lint-clean (a `.br` beside `.sp` in every long help) and has no room for prose.

/// Longest text line written; roff joins the lines again when it fills.
const WIDTH: usize = 78;

/// A man page being written.
#[derive(Default)]
pub struct Page {
    out: String,
}

impl Page {
    pub fn finish(self) -> String {
        self.out
    }

    /// A macro line: `.NAME arg arg`, each argument quoted when it holds a space.
    pub fn macro_line(&mut self, name: &str, args: &[&str]) {
        self.out.push('.');
        self.out.push_str(name);
        for arg in args {
            self.out.push(' ');
            if arg.contains(' ') || arg.is_empty() {
                self.out.push('"');
                self.out.push_str(arg);
                self.out.push('"');
            } else {
                self.out.push_str(arg);
            }
        }
        self.out.push('\n');
    }

    /// Roff text (already escaped), wrapped at spaces.
    pub fn raw_text(&mut self, text: &str) {
        let mut line = String::new();
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            if !line.is_empty() && line.len() + 1 + word.len() > WIDTH {
                self.text_line(&line);
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            self.text_line(&line);
        }
    }

    fn text_line(&mut self, line: &str) {
        // A line that begins with . or ' would be read as a macro.
        if line.starts_with(['.', '\'']) {
            self.out.push_str("\\&");
        }
        self.out.push_str(line);
        self.out.push('\n');
    }

    /// Prose with markup: `code` in bold, *placeholder* in italic.
    pub fn text(&mut self, text: &str) {
        self.raw_text(&inline(text));
    }

    pub fn section(&mut self, title: &str) {
        self.macro_line("SH", &[&title.to_uppercase()]);
    }

    pub fn paragraph(&mut self, text: &str) {
        self.new_paragraph();
        self.text(text);
    }

    /// `.PP`, unless a heading just began one.
    pub fn new_paragraph(&mut self) {
        let last = self.out.lines().last().unwrap_or("");
        if !last.starts_with(".SH ") && !last.starts_with(".SS ") {
            self.macro_line("PP", &[]);
        }
    }

    /// A tagged paragraph: `term` over an indented body of paragraphs (all roff,
    /// already escaped).
    pub fn tagged(&mut self, term: &str, body: &[String]) {
        self.macro_line("TP", &[]);
        self.raw_text(term);
        for (i, para) in body.iter().enumerate() {
            if i > 0 {
                self.macro_line("sp", &[]);
            }
            self.raw_text(para);
        }
    }

    /// Lines shown as they are (commands, json), indented.
    pub fn code(&mut self, lines: &str) {
        self.macro_line("RS", &["4"]);
        self.macro_line("EX", &[]);
        for line in lines.lines() {
            self.text_line(&escape(line));
        }
        self.macro_line("EE", &[]);
        self.macro_line("RE", &[]);
    }

    /// Blocks of the pages' light markup, separated by blank lines: a paragraph; `## T`
    /// a subsection; lines starting `- ` a bulleted list; `term :: text` lines a
    /// definition list; lines indented by four spaces a code block.
    pub fn markup(&mut self, source: &str) {
        for block in blocks(source) {
            let first = block[0];
            if let Some(title) = first.strip_prefix("## ") {
                self.macro_line("SS", &[title]);
            } else if first.starts_with("    ") {
                let code: Vec<&str> = block.iter().map(|l| &l[4.min(l.len())..]).collect();
                self.code(&code.join("\n"));
            } else if first.starts_with("- ") {
                for item in items(&block, |l| l.strip_prefix("- ")) {
                    self.macro_line("IP", &["\\(bu", "2"]);
                    self.text(&item);
                }
            } else if first.contains(" :: ") {
                for item in items(&block, |l| l.contains(" :: ").then_some(l)) {
                    let (term, text) = item.split_once(" :: ").unwrap_or((&item, ""));
                    self.tagged(&inline(term), &[inline(text)]);
                }
            } else {
                self.paragraph(&block.join(" "));
            }
        }
    }
}

/// Splits markup into blocks at blank lines.
fn blocks(source: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = vec![Vec::new()];
    for line in source.lines() {
        if line.trim().is_empty() {
            if out.last().is_some_and(|b| !b.is_empty()) {
                out.push(Vec::new());
            }
        } else if line.starts_with("## ") {
            // A subsection title is a block of its own, with or without blank lines.
            out.push(vec![line.trim_end()]);
            out.push(Vec::new());
        } else if let Some(block) = out.last_mut() {
            block.push(line.trim_end());
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

/// The items of a list block: a line that `start` accepts begins one, any other line
/// continues the one before.
fn items<'a>(block: &[&'a str], start: impl Fn(&'a str) -> Option<&'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in block {
        match (start(line), out.last_mut()) {
            (Some(head), _) => out.push(head.to_string()),
            (None, Some(last)) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            (None, None) => out.push(line.trim().to_string()),
        }
    }
    out
}

/// Escapes plain text for roff: backslashes, hyphens (so they are not broken or
/// turned into dashes) and any character beyond ASCII.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '\'' => out.push_str("\\(aq"),
            '"' => out.push_str("\\(dq"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("\\[u{:04X}]", c as u32)),
        }
    }
    out
}

/// Escapes `text` and turns `code` into bold and *word* into italic.
pub fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&code(piece));
            continue;
        }
        for (j, part) in piece.split('*').enumerate() {
            if j % 2 == 1 {
                out.push_str(&italic(part));
            } else {
                out.push_str(&escape(part));
            }
        }
    }
    out
}

/// Bold that is never hyphenated: commands, flags, values in prose.
pub fn code(text: &str) -> String {
    format!("\\%{}", bold(text))
}

pub fn bold(text: &str) -> String {
    format!("\\fB{}\\fR", escape(text))
}

pub fn italic(text: &str) -> String {
    format!("\\fI{}\\fR", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_marked_up() {
        assert_eq!(
            inline("use `--db` or *PATH* \\u{202e} → x"),
            "use \\%\\fB\\-\\-db\\fR or \\fIPATH\\fR \\eu{202e} \\[u2192] x"
        );
    }

    #[test]
    fn a_wrapped_line_never_starts_a_macro() {
        let mut page = Page::default();
        page.raw_text(&format!("{} ...and 'so", "word ".repeat(15)));
        let out = page.finish();
        assert!(out.lines().all(|l| !l.starts_with(['.', '\''])), "{out}");
        assert!(out.lines().all(|l| l.len() <= WIDTH), "{out}");
    }
}
