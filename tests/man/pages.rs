//! What the man pages say beyond the clap definitions: each command's description,
//! extra sections, examples and exit codes, and keyctl(7). The examples are run by
//! `tests/generated.rs` (`every_man_page_example_runs`), so every one of them works.
//!
//! Markup (see `roff::Page::markup`): blocks separated by blank lines; `## Title` a
//! subsection; `- ` bullets; `term :: text` definitions; four-space indent for code;
//! `code` in bold and *placeholder* in italic.

use keyctl::core::exit::{self, Exit};

/// The date of the release these pages describe (`.TH`); change it with the version.
/// Not the build clock: the generated pages must be the same on every run.
pub const DATE: &str = "2026-12-02";

pub struct Example {
    /// What the example does, one or two sentences.
    pub what: &'static str,
    /// The shell commands, run by bash with `set -e -o pipefail`.
    pub run: &'static str,
    /// The exit status the last command ends with (said on the page when not 0).
    pub exit: i32,
}

pub struct PageText {
    /// The command's words after `keyctl` (`""` for keyctl itself).
    pub command: &'static str,
    pub description: &'static str,
    /// Further sections after DESCRIPTION: (title, markup).
    pub sections: &'static [(&'static str, &'static str)],
    /// Shell run (not shown) in the fresh store before the examples: the keys they
    /// name. Variables it sets (`KEY`) are exported to the examples.
    pub setup: &'static str,
    pub examples: &'static [Example],
    /// The exit codes the command can return, in groups of `core::exit`'s table.
    pub exits: &'static [&'static [Exit]],
}

const fn ex(what: &'static str, run: &'static str) -> Example {
    Example { what, run, exit: 0 }
}

const fn fails(exit: Exit, what: &'static str, run: &'static str) -> Example {
    Example {
        what,
        run,
        exit: exit.code,
    }
}

const ADMIN: &[&[Exit]] = &[exit::GENERAL];
const BASIC: &[Exit] = &[exit::SUCCESS, exit::RUNTIME, exit::USAGE];
const READ: &[&[Exit]] = &[BASIC];

pub const FILES: &str = r#"
`~/.local/share/keyctl/keys.db` :: The default key store on Linux (`$XDG_DATA_HOME/keyctl/keys.db` when that is set; `~/Library/Application Support/keyctl/keys.db` on macOS). `--db` or `KEYCTL_DB` names another. It is one SQLite file, created mode 0600 in a folder keyctl creates 0700; only the default folder is ever created.
*store*`-wal`, *store*`-shm` :: SQLite's write-ahead log and its index, beside the store while keyctl uses it, also mode 0600. They are part of the store: copy a store with `keyctl backup`, never by copying the file alone.
"#;

pub const KEYUTILS_NOTE: &str = "Linux's keyutils package ships another `keyctl`(1), the kernel key-retention tool, in /usr/bin. `keyctl --version` says which one runs; `man -l` on these files, or `man 1 keyctl-create`, shows this one's pages.";

pub const RESULTS_INTRO: &str = "Each answer has a code, an HTTP status a service can pass on, a message (printed alone without `--json`) and an exit status:";

pub const RESULTS_ORDER: &str = "The checks run in the order above and the first that fails decides, except `bad_request`, which only a stream gives (for a line that is not a request), and `unavailable`, the answer when a PostgreSQL store cannot be reached (nothing is decided or recorded; on an SQLite store such a failure is an error, exit 1). A valid key still fails on its rate limit, quotas and credits, in that order.";

/// keyctl(7): the concepts every command shares.
pub const CONCEPTS: PageText = PageText {
    command: "(concepts)",
    description: r#"
keyctl administers API keys kept in one local SQLite file: it creates keys and shows each secret once, lists, edits, disables, revokes, deletes and rotates them, and answers services that ask whether a presented key is good for a request. This page describes what the commands share: the key format, how a command names a key, and the rules for times, text and numbers. Each command has its own page, `keyctl-create`(1) and so on; `keyctl`(1) lists them.
"#,
    sections: &[
        (
            "Keys",
            r#"
## Secret
A secret looks like `sk_live_4eC39HqLyjWDarjtT1zdp7dcABCDEFGH0Xy1Zq`: *prefix*`_`*mode*`_`*body*.

*prefix* :: The store's key prefix, `sk` unless `keyctl init --prefix` or `keyctl config set key-prefix` chose another: 1 to 16 of a-z and 0-9.
*mode* :: `live`, or `test` for keys made with `create --test`.
*body* :: 32 base62 characters (0-9, A-Z, a-z) from the operating system's random source, about 190 bits, then 6 base62 characters holding the CRC32 (IEEE) of everything before them, as a base62 number, most significant digit first, zero-padded.

The checksum lets `keyctl verify` refuse a mistyped or cut-off key without a database lookup, and lets secret scanners tell a real key from a look-alike. Only the SHA-256 hash of a secret is stored: the secret is shown once, by `create` or `rotate`, and never written to the store, a log, the audit trail or an error message.

## Display prefix
*prefix*`_`*mode*`_` and the first 4 characters of the body: for the default prefix the first 12 characters of the secret (`sk_live_4eC3`). It is stored in clear and shown as `sk_live_4eC3...`, so a person can tell keys apart without the secret. An argument or stream field that holds a secret is shown in errors as its display prefix, never whole.

## Key id
A stable public id, `key_` and 12 characters of a-z and 2-7 (`key_k3v7q2m4x5ab`), given at creation and never reused. The request log and the audit trail keep a deleted key's id.

## Status
`active`; `disabled` (reversible with `keyctl enable`); `revoked` (permanent); `expired` (its expiry has passed). A key replaced by `keyctl rotate` is marked `(grace)` while it still works and `(rotated)` after; it cannot be enabled or rotated again.
"#,
        ),
        (
            "Key references",
            r#"
Every command that takes a key takes a *KEYREF*: the key's id, its exact name, or its display prefix, with or without `...` at the end. The reference is matched as all three at once:

- When the matches are one key, that key is meant.
- When they are several keys, even by different kinds (one key's name is another key's display prefix), the reference is ambiguous: the command lists the candidates with how each matched, exits 4 and changes nothing. Use the id.
- A name means the key that holds it now (not revoked, not expired, not replaced by a rotation). When none does, keys that form one rotation chain mean its newest key; otherwise the name is ambiguous.
- `NAME...` is read as a display prefix only.
- A reference that matches nothing exits 3. `logs`, `usage` and `audit` also accept the id of a deleted key.

A name is unique among the keys that hold one. Names must not look like a key id or like a display prefix of any store, so no name can pose as another key.
"#,
        ),
        (
            "Times",
            r#"
Time options (`--expires`, `--grace`, `--since`, `--until`, `--before`, and the `failed-auth-window`, `block-duration` and `log-retention` settings) take:

- a duration: a whole number and one unit, `s`, `m`, `h`, `d` or `w` (`90m`, `12h`, `30d`, `2w`), at most 1000 years; counted forward from now for `--expires` and `--grace`, back from now for `--since`, `--until` and `--before`;
- an RFC 3339 date (`2027-01-31`, midnight UTC) or date-time (`2027-01-31T12:00:00Z`, `2027-01-31T13:00:00+01:00`);
- `never`, where no time makes sense (`--expires never`, `log-retention never`).

An expiry in the past is refused. Output times are RFC 3339 UTC with whole seconds in json and csv; tables show local time and relative phrases (`3 hours ago`, `in 30 days`, `Never`).
"#,
        ),
        (
            "Text and numbers",
            r#"
Every free-text value (name, description, owner, category, group, scope, deployment, model, reason, actor, endpoint, and the same fields of batch and stream lines) refuses control characters, Unicode format characters (bidi overrides U+202A to U+202E and U+2066 to U+2069, zero-width characters, the byte order mark) and the line and paragraph separators U+2028 and U+2029, and any value that holds a secret of keyctl's format; the error names the character's code point, never the value (exit 2). Names are at most 200 characters and have no surrounding spaces. Scopes and models are words without spaces or commas; they are kept as sorted sets.

Values stored before these rules, or by another writer, are kept and shown escaped: `\u{202e}` in tables, messages and csv, `\u202e` in json, so a hidden character never reaches a terminal raw.

Counts, costs and credits are whole numbers from 0 to 2^53-1 (9007199254740991, the largest whole number every JSON reader holds exactly); caps (quotas, rate limits, credit limits, `--limit`) start at 1. Larger is exit 2, or `bad_request` in a stream. Counters stop at 2^53-1 rather than overflow, and a stored figure outside the range reads as its nearest end.
"#,
        ),
        (
            "Output",
            r#"
Data (secrets, tables, json, csv) goes to standard output; messages go to standard error, and `--quiet` keeps only errors and warnings there. Every error is one line starting `error:` and changes nothing. `--format json` (or `--json`) and `--format csv` serve scripts; csv lists are joined with `;` in one cell.

In csv, a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is written with a leading `'`, so a spreadsheet shows it as text instead of running it as a formula (OWASP CSV injection).

A reader that closes standard output early (`keyctl list | head -1`) ends a command quietly with exit 0, except `create` and `rotate` (exit 1, nothing created: a secret is never lost) and the commands whose exit status is their answer (`verify`, `audit verify`), which keep it.
"#,
        ),
        (
            "Store",
            r#"
By default the store is one SQLite file (see FILES) carrying an application id and a schema version: a foreign SQLite file, a file that is not a database, an empty file and a store from a newer keyctl are refused by name and left untouched; an older store is migrated forward in place in one transaction. Write commands create a missing store file and say `created key store at` *PATH* on standard error (a PostgreSQL store is created only by `keyctl init` and `keyctl copy`); read commands on a missing store fail (exit 1). Every command is one transaction (WAL mode, a 30 second busy timeout, immediate write transactions), so many keyctl processes can use one store at once.

## PostgreSQL
For several API hosts sharing one store, `--db`/`KEYCTL_DB` takes a PostgreSQL URL instead of a path: `postgres://`*user*`@`*host*`:5432/`*db*`?sslmode=require` (or `postgresql://`). Every command behaves the same there, and quotas, rate limits, credits, unique names and the audit chain hold across any number of keyctl processes on any number of hosts. The store's tables live in a schema of their own, `keyctl` unless `?options=-csearch_path%3D`*name* says otherwise; `keyctl init` creates them, and a database without them is refused.

The password comes from the URL in `KEYCTL_DB`, from `PGPASSWORD`, or from `~/.pgpass`; a URL given on the command line (`--db`, `copy --to`) must not hold one (exit 2), and messages show a URL's password as `***`. `sslmode` is `disable`, `prefer`, `require`, `verify-ca` or `verify-full`. "Now" is the database's clock. Only `keyctl migrate` changes an existing schema there, so the hosts of a fleet never race to upgrade it; a keyctl too old or too new for a schema says so. `keyctl copy` moves a whole store between a file and a database, either way.
"#,
        ),
    ],
    setup: "",
    examples: &[
        ex(
            "Create a key that expires in two weeks, then name it by its name and as json.",
            "keyctl create --name nightly-export --expires 2w --quiet >/dev/null\nkeyctl show nightly-export --json",
        ),
        ex(
            "Name a key by its id, taken from the csv of `list`.",
            "id=$(keyctl list --format csv | awk -F, 'NR == 2 { print $1 }')\nkeyctl show \"$id\"",
        ),
        ex(
            "Request-log rows since a date-time, as csv for a spreadsheet.",
            "keyctl logs --since 2026-01-01T00:00:00Z --format csv",
        ),
    ],
    exits: &[],
};

pub const PAGES: &[PageText] = &[
    PageText {
        command: "",
        description: r#"
keyctl administers API keys kept in one local SQLite file: the "API Keys" page of a hosted platform as one scriptable, offline command. It creates a key and shows its secret exactly once; lists keys with their display prefixes, status and last use; edits, disables, enables, revokes, deletes and rotates them; sets quotas, rate and credit limits, IP allowlists, scopes, deployments and models; checks presented keys for a service (`keyctl verify`, one process per check or a long-running stream); and reads the request log, daily usage and a hash-chained audit trail of every admin action. Only SHA-256 hashes of secrets are stored.

Each command is described on its own page (see COMMANDS); keyctl(7) describes the key format, how a *KEYREF* names a key, and the rules for times, text and numbers that every command shares.

Without a terminal keyctl never prompts: `revoke`, `delete` and `rotate` then need `--yes`, and `create` needs `--name`. Data goes to standard output and messages to standard error; every error is one line starting `error:`, with the exit status below, and changes nothing.
"#,
        sections: &[],
        setup: "",
        examples: &[
            ex(
                "Create the store with the secrets' prefix `acme`.",
                "keyctl init --prefix acme",
            ),
            ex(
                "Create a key for a CI pipeline, keep its secret in a variable, and check it as a service would.",
                "KEY=$(keyctl create --name ci-deploy --scope deploy --expires 90d --quiet)\nprintf '%s\\n' \"$KEY\" | keyctl verify --scope deploy",
            ),
            ex("List the keys, then the same as json.", "keyctl list\nkeyctl list --json"),
            ex(
                "Work on another store for one command.",
                "keyctl --db ./staging.db create --name smoke-test --quiet",
            ),
        ],
        exits: exit::TABLE,
    },
    PageText {
        command: "init",
        description: r#"
Creates the key store: at `--db`, else at `KEYCTL_DB`, else at the default path (see FILES). It refuses to overwrite a store (exit 4), and names what it found when the path holds anything else. Other write commands create a missing store too; `init` is how to choose the secrets' prefix first.

`--prefix` sets the first part of every new secret (`acme_live_...`): 1 to 16 of a-z and 0-9, default `sk`. It can be changed later with `keyctl config set key-prefix`; existing keys keep theirs.
"#,
        sections: &[],
        setup: "",
        examples: &[
            ex(
                "Create the store with the prefix `acme`.",
                "keyctl init --prefix acme",
            ),
            fails(
                exit::CONFLICT,
                "A second `init` on the same store is refused.",
                "keyctl init",
            ),
        ],
        exits: &[&[exit::SUCCESS, exit::RUNTIME, exit::USAGE, exit::CONFLICT]],
    },
    PageText {
        command: "create",
        description: r#"
Creates a key and prints its secret once. The secret is drawn from the operating system's random source; only its SHA-256 hash and display prefix are stored (see keyctl(7)). The key records its name, owner (default: the actor), optional description, category and group tags, and the limits it is checked against by `keyctl verify`: scopes, one deployment, allowed models, allowed IP addresses and CIDR ranges, expiry, quotas over its lifetime and the last 24 hours, 7 days and 30 days, a rate limit per second or minute, and a credit limit.

A name must be free: no other key that is active or disabled, unexpired and not replaced by a rotation holds it (exit 4). A store's `max-keys` setting limits the active and disabled keys; at the limit `create` fails with exit 4.

At a terminal (standard input and standard error), `create` without `--name` asks for a name, a description, an expiry (1 day, 30 days, 90 days or never) and scopes; Ctrl-C there exits 130 and creates nothing. Without a terminal `--name` is required.
"#,
        sections: &[
            (
                "One-time reveal",
                r#"
- At a terminal: a framed block with the secret and the warning `This key will not be shown again. Store it securely now.` The secret is also copied to the clipboard (`--no-copy` prevents it) and cleared from it after 45 seconds (`KEYCTL_CLIP_TIME`) if it still holds it. A clipboard that cannot be reached is a warning, never a failure.
- Not a terminal: the secret alone on one line of standard output, so `KEY=$(keyctl create --name ci)` works; the key's details go to standard error unless `--quiet`. `--copy` copies it anyway.
- `--json`: one line, `{"key": "`*secret*`", "key_details": {`*key object*`}}`. `--format csv` is refused: a reveal has no csv form.

The secret is written and flushed before the key is committed: when standard output cannot take it (a closed pipe, a full disk) nothing is created and the exit status is 1.
"#,
            ),
            (
                "Metadata",
                r#"
`--meta KEY=VALUE` (repeatable) gives the key free-form entries that `keyctl verify --json`, `verify --stream` and `keyctl serve` hand back with every verdict, so a service learns the caller's tenant, plan or customer id from verification alone. A key is 1 to 64 of a-z, 0-9, `_`, `.` and `-`; a value is one line of free text (no control or formatting characters, no pasted secret), kept as given; an empty value is a value. At most 32 entries and 4096 bytes of keys and values together (UTF-8). They show in `keyctl show` and as the `meta` object of the key's json (`{}` when none); `keyctl rotate` keeps them, `keyctl edit` changes them.
"#,
            ),
            (
                "Credit refill",
                r#"
`--refill N/day` refills the key's credits at every midnight UTC, `--refill N/month` at 00:00 UTC on the 1st of every month; it needs `--credits`. `--refill-mode set` (the default) makes the remaining credits N, never more than the credit limit; `--refill-mode add` adds N for every refill time passed, never above the credit limit. The first refill comes at the next refill time. There is no background job: every command that reads the credits computes them as of now, and a recorded verification stores them. A rotated key shares its predecessor's credits and refill, so the pair refills once. The key object shows `refill` (`{"amount", "interval", "mode"}` or null) and `next_refill_at`.
"#,
            ),
            (
                "Batch",
                r#"
`--batch FILE` (or `-` for standard input) creates many keys in one transaction. Each line is one json object with the create options' names: `name` (required), `description`, `owner`, `category`, `group`, `scopes`, `deployment`, `allowed_models`, `allowed_ips` (lists, or comma-separated strings), `expires`, `quota_total`, `quota_daily`, `quota_weekly`, `quota_monthly`, `rate_limit`, `credits` (numbers or strings), `refill`, `refill_mode`, `test` (true or false) and `meta` (an object of strings, `{"tenant": "acme"}`). Blank lines are skipped. An unknown field, a field of the wrong type, a field given twice, a repeated name or any other bad line fails the whole batch with its line number and field named, and creates nothing. Otherwise one line `{"key", "key_details"}` per key is printed, in input order, after every key is in.
"#,
            ),
        ],
        setup: "",
        examples: &[
            ex(
                "A key for a deploy pipeline, limited to one scope, expiring in 90 days; the secret goes into a variable.",
                "KEY=$(keyctl create --name ci-deploy --scope deploy --expires 90d --quiet)",
            ),
            ex(
                "A production key with a daily quota, a rate limit, a credit limit and an IP allowlist.",
                "keyctl create --name billing-worker --owner payments --category production \\\n  --quota-daily 10000 --rate-limit 50/s --credits 100000 \\\n  --allow-ip 10.0.0.0/8,2001:db8::/32 --quiet",
            ),
            ex(
                "A key with 1000 credits that come back every midnight UTC.",
                "keyctl create --name tenant-42 --credits 1000 --refill 1000/day --quiet",
            ),
            ex(
                "A test-mode key, printed as json.",
                "keyctl create --name sandbox --test --json",
            ),
            ex(
                "A key whose verifications tell the service its tenant and plan.",
                "keyctl create --name acme-api --meta tenant=acme --meta plan=pro --quiet",
            ),
            ex(
                "Two keys from json lines in one transaction; their secrets go to a file.",
                "printf '%s\\n' '{\"name\": \"tenant-a\", \"scopes\": [\"read\"]}' \\\n  '{\"name\": \"tenant-b\", \"expires\": \"30d\", \"quota_monthly\": 5000}' |\n  keyctl create --batch - > new-keys.jsonl",
            ),
            fails(
                exit::CONFLICT,
                "A name another key holds is refused.",
                "keyctl create --name ci-deploy",
            ),
        ],
        exits: &[&[
            exit::SUCCESS,
            exit::RUNTIME,
            exit::USAGE,
            exit::CONFLICT,
            exit::INTERRUPTED,
        ]],
    },
    PageText {
        command: "list",
        description: r#"
Lists keys, newest first: name, display prefix, status (a coloured dot at a terminal), created, expires and last used. Below the table a summary line counts the listed keys by status and gives the store's key limit (`max-keys`). Revoked keys are left out unless `--all` is given or `--status` names `revoked`.

Filters combine: `--status` (repeatable or comma-separated), `--category`, `--owner`, `--deployment`, `--group`, and `--search`, a case-insensitive part of the name, description, id or display prefix. `--sort` orders by name (A to Z), created (newest first), last-used (most recent first, never used last) or expires (soonest first, no expiry last).

`--json` prints an array with one key object per line; `--format csv` one row per key.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --scope deploy --quiet >/dev/null\nkeyctl create --name old-export --quiet >/dev/null\nkeyctl revoke old-export --yes --quiet",
        examples: &[
            ex("The keys that are not revoked.", "keyctl list"),
            ex(
                "Active and disabled keys, most recently used first.",
                "keyctl list --status active,disabled --sort last-used",
            ),
            ex(
                "Every key, revoked ones included, as csv for a spreadsheet.",
                "keyctl list --all --format csv > keys.csv",
            ),
            ex(
                "Keys whose name, description, id or prefix contains `deploy`, as json.",
                "keyctl list --search deploy --json",
            ),
        ],
        exits: READ,
    },
    PageText {
        command: "show",
        description: r#"
Shows every field of one key: id, name, description, owner, display prefix, status, mode, category, group, scopes, deployment, allowed models and IPs, quotas, rate limit, credits, the times it was created, expires and was last used (and from which IP), its rotation links and its metadata (one `KEY=VALUE` line per entry). Below them, its requests and credits over the last 24 hours, 7 days and 30 days, and at a terminal a 30-day sparkline of requests.

`--json` prints the key object with a `usage` member. The usage figures are the key's own requests; limits shared along a rotation chain are what `keyctl verify` reports.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --scope deploy --expires 90d --quiet >/dev/null",
        examples: &[
            ex("One key, by name.", "keyctl show ci-deploy"),
            ex("The same as json.", "keyctl show ci-deploy --json"),
            fails(
                exit::NOT_FOUND,
                "A reference that matches no key.",
                "keyctl show no-such-key",
            ),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "edit",
        description: r#"
Changes a key's settings; the secret never changes (use `keyctl rotate` for a new one). Only the options given change. Text fields are cleared with an empty value (`--description ""`; `--deployment ""` makes the key project-wide); list options replace the whole list and are cleared with `--clear-scopes`, `--clear-models` and `--clear-ips`; quotas, the rate limit and the credit refill take `none`, and `--unlimited` removes the credit limit (and its refill). A changed refill or credit limit applies from the next refill time on; `--refill` keeps the refill's mode, `--refill-mode` alone changes it. The refill belongs to the key's credits, which a rotated pair shares: editing it on either key changes it for both.

`--meta KEY=VALUE` sets or overwrites metadata entries and keeps the others (as `kubectl label` does); `--unset-meta KEY` removes one (a key the metadata does not have is no error). Setting and removing the same key in one edit is exit 2; the limits (32 entries, 4096 bytes) apply to the result, so an edit may remove one entry to make room for another.

Each change is recorded in the audit trail with its old and new value; an edit that changes nothing records nothing. `edit` without any change option is exit 2. A revoked key cannot be edited (exit 4); a key replaced by a rotation cannot be given `--expires never`, but its grace can be moved to another finite time. `--json` prints the key afterwards.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --scope deploy --quiet >/dev/null",
        examples: &[
            ex(
                "Describe the key and make it expire in 30 days.",
                "keyctl edit ci-deploy --description \"deploys from CI\" --expires 30d",
            ),
            ex(
                "Replace its scopes, drop its daily quota and set a rate limit.",
                "keyctl edit ci-deploy --scope deploy --scope read --quota-daily none --rate-limit 10/s",
            ),
            ex(
                "Tag the key with its tenant, then move it to another plan and drop the tag.",
                "keyctl edit ci-deploy --meta tenant=acme --meta plan=free\nkeyctl edit ci-deploy --meta plan=pro --unset-meta tenant",
            ),
            ex(
                "Give it 500 credits that grow by 100 every month, up to the 500.",
                "keyctl edit ci-deploy --credits 500 --refill 100/month --refill-mode add",
            ),
            fails(
                exit::USAGE,
                "Nothing to change.",
                "keyctl edit ci-deploy",
            ),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "disable",
        description: r#"
Deactivates keys: `keyctl verify` answers `inactive` for them until `keyctl enable`. All the named keys change in one transaction, each recorded in the audit trail; a key that is already disabled is a note, not an error. A revoked key cannot be disabled (exit 4).

With `--with-predecessor`, every key the named keys replaced in rotations (the whole chain back) that is not revoked is disabled too. Disabling a key whose predecessor still works inside its grace period says so on standard error.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --quiet >/dev/null\nkeyctl create --name nightly-export --quiet >/dev/null",
        examples: &[
            ex("Disable one key.", "keyctl disable ci-deploy"),
            ex(
                "Disable a key and every older key of its rotation chain.",
                "keyctl disable nightly-export --with-predecessor",
            ),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "enable",
        description: r#"
Reactivates disabled keys, in one transaction, each recorded in the audit trail; an active key is a note. A revoked key cannot be enabled (`revoked keys cannot be reactivated; create a new key`, exit 4), nor can a key that a rotation replaced (exit 4, naming its successor).

With `--with-predecessor` the keys' rotation predecessors are taken along; being replaced, a disabled one stays disabled, with a warning naming its successor.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --quiet >/dev/null\nkeyctl disable ci-deploy --quiet\nkeyctl create --name old-export --quiet >/dev/null\nkeyctl revoke old-export --yes --quiet",
        examples: &[
            ex("Enable a disabled key.", "keyctl enable ci-deploy"),
            fails(
                exit::CONFLICT,
                "A revoked key stays revoked.",
                "keyctl enable old-export",
            ),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "revoke",
        description: r#"
Revokes keys permanently: `keyctl verify` answers `revoked` for them from then on, and nothing brings them back. They stay visible with `keyctl list --all` and keep their request log and audit events. `--reason` is kept in the audit trail. All the named keys change in one transaction.

At a terminal `revoke` lists the keys and asks first; without one it needs `--yes` (exit 2 otherwise). `--with-predecessor` revokes every unrevoked key of the named keys' rotation chains too; revoking a key whose predecessor still works in its grace period warns and names it.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --quiet >/dev/null",
        examples: &[
            fails(
                exit::USAGE,
                "Without a terminal, the confirmation must be given as `--yes`.",
                "keyctl revoke ci-deploy",
            ),
            ex(
                "Revoke a leaked key and say why.",
                "keyctl revoke ci-deploy --reason \"leaked in a build log\" --yes",
            ),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "delete",
        description: r#"
Removes keys from the store. An active or disabled key is revoked first (both recorded in the audit trail, in one transaction). A key with request history is refused (exit 4) unless `--force`: its request-log rows and audit events keep its id, and `logs`, `usage` and `audit` still accept that id.

At a terminal `delete` asks first; without one it needs `--yes`.
"#,
        sections: &[],
        setup: "keyctl create --name unused-key --quiet >/dev/null\nKEY=$(keyctl create --name used-key --quiet)\nprintf '%s\\n' \"$KEY\" | keyctl verify >/dev/null",
        examples: &[
            ex("Delete a key that was never used.", "keyctl delete unused-key --yes"),
            fails(
                exit::CONFLICT,
                "A key with request history needs `--force`.",
                "keyctl delete used-key --yes",
            ),
            ex("Delete it anyway.", "keyctl delete used-key --force --yes"),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "rotate",
        description: r#"
Replaces a key with a new one that has a new secret and every setting of the old one, its name included; the new secret is revealed once, as by `keyctl create`. A set lifetime is kept as the same length counted from now, unless `--expires` gives another. The old key is disabled at once, or with `--grace` keeps working until then and expires. Old and new share one credit balance, one set of quota windows and one rate limit: a rotation neither resets nor doubles them.

A key can be rotated once: its successor is rotated next (exit 4 otherwise). A revoked key cannot be rotated. At a terminal `rotate` asks first; without one it needs `--yes`.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --expires 90d --quiet >/dev/null",
        examples: &[
            ex(
                "Rotate a key and keep the old secret working for a day while clients move over.",
                "NEW=$(keyctl rotate ci-deploy --grace 24h --yes --quiet)",
            ),
            ex(
                "Rotate it again, now that the name means the new key; the old one stops at once.",
                "keyctl rotate ci-deploy --yes --json",
            ),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "verify",
        description: r#"
Checks a presented key for one request, as a service does before it serves the request, and records the request. The key is read from standard input (the first line, at most 1 KiB; `Bearer `*secret* or a whole `Authorization: Bearer` line is accepted) or from the environment variable `--key-env` names. It is never an argument: arguments are visible to every user of the machine.

The request's context is given by `--ip`, `--scope`, `--deployment`, `--model`, `--endpoint`, `--cost` (credits, default 1) and `--duration-ms`. A key with an IP allowlist refuses a request without `--ip`, and a key bound to a deployment refuses one for another deployment or none. `--ip` is taken as given, so the service must pass the address of the connection it accepted (or, behind a proxy it runs, the address that proxy reports), never a header the client wrote.

A recorded check writes one request-log row, refused requests included, and for an accepted one updates the key's last use, counters and credits, all in one transaction. `--no-record` only checks: nothing is counted or logged. Quotas are rolling windows counted exactly from accepted requests (total: all time; daily: the last 24 hours; weekly: 7 days; monthly: 30 days); rate limits count accepted requests in the last second or minute. `failed-auth-limit` invalid keys from one IP within `failed-auth-window` block that IP for `block-duration` (IPv6 addresses by network, see `keyctl-config-set`(1)).

The answer is one line on standard output (the message below), or with `--json` one object: `{"valid": `*bool*`, "code": `*code*`, "status": `*http*`, "message": `*text*`, "key_id": `*id or null*`, "key_name": `*name or null*`, "credits_remaining": `*n or null*`, "quota_remaining": {"total", "daily", "weekly", "monthly"} `*or null*`, "meta": {`*the key's metadata*`} `*or null*`}`. The remaining figures are what is left after this request (null for a limit that is not set, and `quota_remaining` null when no key matched). `meta` is the key's metadata (`keyctl create --meta`; `{}` when it has none) whenever the answer names a key, and null when it names none. The exit status is the answer too: 0 when valid, 10 to 21 naming the reason.
"#,
        sections: &[(
            "Stream mode",
            r#"
`keyctl verify --stream` serves many requests from one process, for a service that keeps keyctl as a coprocess. It reads requests from standard input and writes results to standard output until standard input ends.

## Requests
Each line is one json object (a line of at most 64 KiB, ending in a newline or the end of input):

`key` :: The presented key, a string; required. `Bearer `*secret* is accepted.
`ip` :: The client's IP address, a string (`"203.0.113.7"`, `"2001:db8::1"`).
`scope`, `deployment`, `model` :: Strings: what the request needs, as `--scope`, `--deployment` and `--model`.
`endpoint` :: A string recorded in the log, like `"POST /v1/chat"`.
`cost` :: Credits the request costs: a whole number from 0 to 2^53-1, as a json number (`5`, `1e3`) or a string of digits (`"5"`); default: `--cost`.
`duration_ms` :: How long the request took, recorded: a whole number as for `cost`.

Only `key` is required. A member that is `null` counts as absent; members not listed here are ignored, so a service can send its own. Text fields follow the text rules of keyctl(7).

## Result lines
Each request line gets exactly one result line, in the order of the requests, written and flushed before the next request is read: the object `--json` prints for one check. A service can therefore write one line and read one line, forever.

A line that is not a request gets a result with `"code": "bad_request"` and `"status": 400`, whose message names the field and its problem in plain words (for example "field `cost` must be a whole number from 0 to 9007199254740991, got -1"); the stream goes on. This covers a blank line (answered too, so a client never waits), a line that is not one json object or not UTF-8, a missing or mistyped field, a field given twice, a value out of range, and a line longer than 64 KiB. A secret pasted into a field is never echoed back.

## Transactions
Each request is its own transaction, recorded before its result is written, and uses the clock at the moment it is read. Other keyctl processes can use the store meanwhile. `--no-record` applies to every request of the stream; `--cost` is the default cost; the options that describe a single request (`--key-env`, `--ip`, `--scope`, `--deployment`, `--model`, `--endpoint`, `--duration-ms`) cannot be combined with `--stream`.

## Exit status of a stream
The stream's own exit status does not depend on the answers: 0 when standard input ends, or when the reader closes standard output (the stream then ends quietly); 1 when the store cannot be opened at the start because what `--db` names is not a usable store (a missing, foreign or damaged store), before any line is read; 2 for a bad option, before any line is read. A store that fails later (a PostgreSQL server restarted or unreachable, a transaction that fails) never ends the stream: each request it cannot record is answered `unavailable` (nothing was recorded), the failure is said once on standard error, and the next request reaches the store again; a PostgreSQL server that is down at the start is waited for the same way.
"#,
        )],
        setup: "export KEY\nKEY=$(keyctl create --name web --scope read --allow-ip 203.0.113.0/24 --quiet)",
        examples: &[
            ex(
                "Check the key in `$KEY` for a read request from 203.0.113.7, and record it.",
                "printf '%s\\n' \"$KEY\" | keyctl verify --ip 203.0.113.7 --scope read --endpoint \"GET /v1/items\"",
            ),
            ex(
                "The same from an environment variable, with the answer as json.",
                "keyctl verify --key-env KEY --ip 203.0.113.7 --scope read --json",
            ),
            fails(
                exit::FORBIDDEN_SCOPE,
                "A scope the key lacks; `--no-record` leaves no trace.",
                "printf '%s\\n' \"$KEY\" | keyctl verify --ip 203.0.113.7 --scope write --no-record",
            ),
            fails(
                exit::INVALID,
                "A string that is not a key of this store.",
                "echo sk_live_notakey | keyctl verify --ip 203.0.113.7",
            ),
            ex(
                "Two requests in one stream; the second line is not json and gets a `bad_request` result.",
                "printf '{\"key\": \"%s\", \"ip\": \"203.0.113.7\", \"scope\": \"read\"}\\n{key}\\n' \"$KEY\" |\n  keyctl verify --stream",
            ),
            ex(
                "keyctl as a coprocess of a bash service: write a request line, read its result line.",
                "coproc VERIFY { keyctl verify --stream; }\nprintf '{\"key\": \"%s\", \"ip\": \"203.0.113.7\"}\\n' \"$KEY\" >&\"${VERIFY[1]}\"\nread -r result <&\"${VERIFY[0]}\"\necho \"$result\"",
            ),
        ],
        exits: &[BASIC, exit::VERIFY_ANSWERS],
    },
    PageText {
        command: "serve",
        description: r#"
Answers verifications over HTTP from one process, for reverse proxies (nginx `auth_request`, Traefik ForwardAuth, Caddy `forward_auth`) and for services that would rather send an HTTP request than keep a `keyctl verify --stream` coprocess. It listens on `--listen` (default 127.0.0.1:8787; port 0 picks a free port) or on the Unix socket `--socket` (created mode 0660), and its first line on standard error says where: `listening on http://`*address*`:`*port* or `listening on unix:`*path*.

An address beyond loopback needs `--caller-token-env` *VAR*, the environment variable holding the token callers must send as `Authorization: Bearer` on `/v1/verify` and `/v2/keys.verifyKey`; without it keyctl refuses to start (exit 2). The token is compared in constant time and never printed.

Requests that are waiting at the same moment are decided and recorded in one transaction (group commit), with exactly the verdicts, counters and log rows of one transaction per request in the order the requests were fully read; an answer is sent only after the commit holding its record returned. SIGTERM or SIGINT stops accepting connections, answers every request already received, and exits 0.
"#,
        sections: &[(
            "Routes",
            r#"
`POST /v1/verify` :: The body is one stream request (see `keyctl-verify`(1), Stream mode), at most 16 KiB; the answer is the `--json` verdict with the verdict's HTTP status. A body that is not a request is a 400 whose json has `"code": "bad_request"`; a body over 16 KiB is a 413.
`GET /auth` :: Forward auth. The key comes from `Authorization: Bearer` or `X-API-Key`; the client IP from `X-Real-IP`, else `X-Forwarded-For` (its rightmost address outside `--trust-proxy`), only when the peer is in `--trust-proxy` or on the Unix socket, else the peer's address; the endpoint from `X-Original-Method` and `X-Original-URI` (or `X-Forwarded-Method` and `X-Forwarded-Uri`), recorded without its query; `X-Keyctl-Scope`, `X-Keyctl-Deployment`, `X-Keyctl-Model` and `X-Keyctl-Cost` describe the request. The answer is 204 when valid, 401 for an invalid or missing key (with `WWW-Authenticate: Bearer`), 403 for every other refusal, a store outage included; always with `X-Keyctl-Code`, with `X-Keyctl-Key-Id`, `X-Keyctl-Key-Name` and `X-RateLimit-Remaining` where known, and `Retry-After` when rate limited. Only loopback peers, Unix socket peers and peers in `--trust-proxy` are answered; others get 403 `untrusted_peer`.
`POST /v2/keys.verifyKey` :: Unkey's verify API, so code written against Unkey (its `@unkey/api` SDK pointed at keyctl) works unchanged. The body is `{"key", "credits": {"cost"}, "permissions", "tags"}` (only `key` required; `permissions` names one scope; `tags` are ignored); every verification outcome is a 200 with `{"meta": {"requestId"}, "data": {"valid", "code", "keyId", "name", "meta", "credits", "expires", "enabled", "permissions", "keyctlCode", "keyctlMessage"}}`, Unkey's codes standing for keyctl's: `NOT_FOUND` (invalid, revoked), `DISABLED`, `EXPIRED`, `FORBIDDEN` (ip_blocked, ip_not_allowed, forbidden_deployment, forbidden_model), `INSUFFICIENT_PERMISSIONS`, `RATE_LIMITED`, `USAGE_EXCEEDED` (quota_exceeded, credits_exhausted), `VALID`. A malformed request is a 400, a missing or wrong caller token a 401, a store that cannot answer a 503, each as Unkey's error `{"meta", "error": {"title", "detail", "status", "type"}}`. The client IP is found as for `/auth`.
`GET /healthz` :: 200 while the store answers, 503 while it does not.
`GET /metrics` :: Prometheus text: requests by route, status and code, a latency histogram per route, and group-commit sizes.
`GET /openapi.json` :: An OpenAPI 3.0 description of every route: request and response schemas and every status.

Unknown routes are 404 and wrong methods 405, with json bodies `{"code", "message"}`.

## Limits
A request's head must arrive within 10 seconds and hold at most 64 headers and 16 KiB; its body must arrive within 10 seconds more (else 408). At most 1024 connections are served at once; more wait in the kernel's queue.
"#,
        )],
        setup: "export KEY\nKEY=$(keyctl create --name web --quiet)",
        examples: &[ex(
            "Serve on a free loopback port, verify a key with curl, then stop the server.",
            "keyctl serve --listen 127.0.0.1:0 2>serve.log &\nuntil grep -q '^listening on' serve.log; do sleep 0.1; done\nURL=$(sed -n 's/^listening on //p' serve.log)\ncurl -s -X POST \"$URL/v1/verify\" -d \"{\\\"key\\\": \\\"$KEY\\\"}\"\nkill -TERM %1 && wait %1",
        )],
        exits: READ,
    },
    PageText {
        command: "logs",
        description: r#"
Shows the request log, newest first: time, key (id and name), endpoint, HTTP status and result code, IP, duration and credits of every recorded `keyctl verify`. A deleted key's id still selects its rows. Filters: `--since`, `--until`, `--status` (an HTTP status such as `401` or a result code such as `quota_exceeded`), `--ip`, and at most `--limit` rows (default 100).

`--follow` prints the newest rows oldest first, then new rows as they are recorded until interrupted or until its reader goes away; with `--json` it prints one object per line. `keyctl logs prune` deletes old rows.
"#,
        sections: &[],
        setup: "KEY=$(keyctl create --name web --scope read --quiet)\nprintf '%s\\n' \"$KEY\" | keyctl verify --scope read >/dev/null\nprintf '%s\\n' \"$KEY\" | keyctl verify --scope write >/dev/null || true",
        examples: &[
            ex("The latest requests.", "keyctl logs"),
            ex(
                "One key's refused requests of the last hour.",
                "keyctl logs web --since 1h --status forbidden_scope",
            ),
            ex(
                "The last 1000 rows as json.",
                "keyctl logs --limit 1000 --json",
            ),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "logs prune",
        description: r#"
Deletes request-log rows older than `--before`. Quota counts, credits, usage figures, last use and IP blocks are kept: they never depend on the log. The `log-retention` setting prunes the same way on every recorded verification.
"#,
        sections: &[],
        setup: "",
        examples: &[
            ex("Keep 90 days of request log.", "keyctl logs prune --before 90d"),
            ex(
                "Delete the rows before a date.",
                "keyctl logs prune --before 2026-01-01",
            ),
        ],
        exits: READ,
    },
    PageText {
        command: "usage",
        description: r#"
Requests per day, accepted and rejected, and the credits they used, for one key or (without *KEYREF*) for every request, including those whose key matched nothing. Days are UTC days, ending today; `--days` is 1 to 3660, default 30. At a terminal it draws bars; otherwise a table with every day, days without requests included, or json or csv.
"#,
        sections: &[],
        setup: "KEY=$(keyctl create --name web --quiet)\nprintf '%s\\n' \"$KEY\" | keyctl verify >/dev/null",
        examples: &[
            ex("The last 30 days of every key.", "keyctl usage"),
            ex(
                "One key's last week, as csv.",
                "keyctl usage web --days 7 --format csv",
            ),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "report",
        description: r#"
Key hygiene: finds keys that are never used, unused, soon expiring, never expiring, unrestricted, near a limit, or still in the grace period of a rotation. Each finding names the key (id, name, owner, status) and the figures behind it.

`never-used` :: No request was ever accepted with the key, however young it is (the detail says when it was created).
`unused` :: The key was used, but not within `--unused` (default 30d). A never-used key is `never-used`, not `unused`.
`expiring` :: The key expires within `--expiring` (default 14d).
`no-expiry` :: The key never expires.
`unrestricted` :: The key has no scope, no IP allowlist, no deployment and no model restriction.
`near-limit` :: A quota window (total, daily, weekly, monthly: the rolling windows `keyctl verify` counts, shared by a rotation's old and new keys) or the credit limit is used to `--near` percent (default 80%) or more: one finding per limit, with its count, its cap and the percentage. Rate limits are not reported: their windows last a second or a minute.
`in-grace` :: The key was replaced by a rotation and still verifies until its grace period ends.

Active and disabled keys are checked (a disabled key comes back with one `keyctl enable`); revoked and expired keys, and disabled keys replaced by a rotation, cannot verify again and are left out. `--only` *LIST* reports only the findings named (comma-separated, repeatable).

At a terminal, and by default, a table grouped by finding in the order above, keys in creation order within a group, and a summary line. `--json` prints an array with one object per finding (`finding`, `key_id`, `name`, `owner`, `status`, `detail`, then `limit`, `used`, `cap` and `percent` for `near-limit`, and the key's `created_at`, `last_used_at`, `expires_at` and `rotated_to`), keys in creation order, each key's findings together; `--format csv` the same columns.

The report reads the store a page of keys at a time from one snapshot, so its memory stays bounded however many keys there are; the table takes one pass to measure its columns and one more per group when it has more than 1000 rows.

`--fail-on` *LIST* exits 5 when any finding it names is present, after printing the whole report, so a CI job can gate on it; the exit status is kept when standard output is closed.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --scope deploy --expires 90d --quiet >/dev/null\nkeyctl create --name scratch --quiet >/dev/null",
        examples: &[
            ex("Every finding, grouped.", "keyctl report"),
            ex(
                "Keys unused for 90 days or never used, as json.",
                "keyctl report --only never-used,unused --unused 90d --json",
            ),
            fails(
                exit::FINDINGS,
                "Fail a CI job while any key never expires.",
                "keyctl report --fail-on no-expiry --quiet",
            ),
        ],
        exits: &[BASIC, &[exit::FINDINGS]],
    },
    PageText {
        command: "audit",
        description: r#"
Shows the audit trail, newest first: every admin action (created, edited, disabled, enabled, revoked, rotated, deleted, config) with its time, actor, key and details; an edit lists each field as old and new value. With a *KEYREF*, the events of that key's whole rotation chain; a deleted key's id still selects its events. Filters: `--since`, `--action`, and at most `--limit` events (default 100).

Each event is recorded in the same transaction as its action and carries a hash over the event before it: `keyctl audit verify` checks that chain.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --quiet >/dev/null\nkeyctl edit ci-deploy --description \"deploys from CI\" --quiet",
        examples: &[
            ex("The latest admin events.", "keyctl audit"),
            ex(
                "The edits of one key, as json.",
                "keyctl audit ci-deploy --action edited --json",
            ),
            ex("Last week's events.", "keyctl audit --since 7d --limit 20"),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "audit verify",
        description: r#"
Checks the audit trail's hash chain and prints the number of events and the head hash, the hash of the newest event. Any event edited, inserted or deleted breaks the chain: the first broken event is named and the exit status is 8. An empty trail has 0 events and a head of 64 zeros.

Keep the head it prints somewhere else. `--expect-head` *HASH* then also fails when that hash is no longer in the chain, which detects newest events cut off; a trail that has grown since still passes. `--json` prints `{"intact", "events", "head", "broken_at", "problem"}`. The exit status is kept when standard output is closed: it is the answer.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --quiet >/dev/null",
        examples: &[
            ex("Check the chain.", "keyctl audit verify"),
            ex(
                "Record the head, change something, and check that the old head is still in the chain.",
                "head=$(keyctl audit verify | awk '{ print $NF }')\nkeyctl disable ci-deploy --quiet\nkeyctl audit verify --expect-head \"$head\"",
            ),
            fails(
                exit::AUDIT_BROKEN,
                "A head that is not in the chain.",
                "keyctl audit verify --expect-head 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ),
        ],
        exits: &[BASIC, &[exit::AUDIT_BROKEN]],
    },
    PageText {
        command: "scan",
        description: r#"
Finds this store's secrets in files and says whose keys they are. Each *PATH* (default: the current folder; `-` for standard input) is walked as ripgrep walks it, in parallel: files and folders that `.gitignore` or `.ignore` exclude (also outside a git repository) and hidden ones are skipped unless `--all`; a file named on the command line is always read. Binary files (a NUL byte) are skipped.

A string is a finding when it starts with this store's `<prefix>_live_` or `<prefix>_test_` (the `key-prefix` setting, and every prefix the stored keys were made with), has the 38 body characters of the format, and its checksum is right; its SHA-256 is then looked up in the store. Each finding is one row: *file*`:`*line*`:`*column* (from 1; the column counts bytes), the secret as its display prefix (never the whole secret, anywhere), the key's status (`active`, `disabled`, `expired`, `revoked`, or `unknown`: a valid secret that is not this store's), its id and name. `--json` prints `{"path", "line", "column", "key_prefix", "status", "key_id", "name"}` objects, `--format csv` the same columns. A line on standard error counts the files searched and the findings.

The exit status is 9 when an active key was found, also after `--revoke`, and 0 otherwise; it is kept when standard output is closed. A *PATH* that does not exist is exit 2 before anything is read. A file or folder that cannot be read is a warning; the scan goes on and ends with exit 1 unless an active key decided 9.

`--revoke` revokes the active keys found, in one transaction, each audited with where it was found as the reason (`found by keyctl scan at app/settings.env:2`). At a terminal it asks first (no: nothing changes); without one it needs `--yes` and otherwise refuses (exit 2) before reading anything.

`--rules` *SCANNER* prints, instead of scanning, a rule that finds this store's keys for another scanner: `gitleaks` (a config with one `[[rules]]` entry and gitleaks' default rules kept), `trufflehog` (a custom regex detector), `github` (the fields of a custom secret scanning pattern) or `detect-secrets` (a plugin file for `--plugin`). The regex is in RE2 syntax and matches every string of the key format for the store's prefixes, between characters that are not letters or digits; a regex cannot check the CRC32 checksum, which the rules say, so a near miss with a wrong checksum matches too: `keyctl scan` tells them apart.
"#,
        sections: &[],
        setup: "mkdir app\nKEY=$(keyctl create --name ci-deploy --quiet)\nprintf 'region = eu-west-1\\nAPI_KEY=%s\\n' \"$KEY\" > app/settings.env",
        examples: &[
            fails(
                exit::LIVE_KEY_FOUND,
                "Scan a folder: an active key is in it, so the exit status is 9.",
                "keyctl scan app",
            ),
            fails(
                exit::LIVE_KEY_FOUND,
                "The same from standard input, as json.",
                "cat app/settings.env | keyctl scan - --json",
            ),
            fails(
                exit::LIVE_KEY_FOUND,
                "Revoke the active keys found without asking (a script's way); the exit status is still 9.",
                "keyctl scan app --revoke --yes",
            ),
            ex("Nothing active is exposed any more.", "keyctl scan app"),
            ex(
                "A gitleaks config that finds this store's keys.",
                "keyctl scan --rules gitleaks > keyctl-gitleaks.toml",
            ),
        ],
        exits: &[BASIC, &[exit::LIVE_KEY_FOUND]],
    },
    PageText {
        command: "import",
        description: r#"
Brings keys from another system into the store: one json object per line of *FILE* (`-` for standard input). Each line gives the key's secret, or only its hash, and any field of `keyctl create --batch` (`name` is required):

`secret` :: The key as clients send it. It is hashed with SHA-256 on the way in and never kept: not in the store, its log, the audit trail or a message (errors show it as its display prefix and `...`). A secret of keyctl's format (*prefix*`_live_` or *prefix*`_test_` and 38 characters, from any store) must pass its checksum and brings its mode; any other is 16 to 1024 printable ASCII characters without spaces.
`sha256` :: Instead of `secret`: the SHA-256 of the secret, 64 hexadecimal digits (as New-API, One-API and most gateways store it). Give exactly one of the two.
`created_at`, `last_used_at` :: Optional RFC 3339 times kept from the old system, neither in the future, the last use not before the creation (the import's time when `created_at` is not given). An imported last use counts no request.

Keys of another format (`sk-...`, `sk_live_...` without keyctl's checksum) verify by their hash alone, in `keyctl verify`, `--stream` and `keyctl serve`; a presented string of keyctl's format still fails its checksum without a lookup. A key's display prefix is keyctl's for a keyctl-format secret, the first 12 characters (never more than a third) of another, and none for a key given by `sha256` alone: tables show `(hash only)`, json `"key_prefix": null`, and such a key is referred to by its id or name.

The import is one transaction: a line that is not valid, a key given twice or already in the store, a name another key holds, or the `max-keys` limit fails the whole import with the line's number, and nothing is written (exit 2 for a bad line or a duplicate within the input, 4 for a conflict with the store). `--dry-run` checks all of it, against the store too, prints what would be imported and writes nothing (it never creates a store).

The imported keys are printed as `keyctl list` prints keys (`--json`: an array of key objects; never a secret), and a line on standard error counts them. Each gets a `created` audit event whose details say `imported` (`secret` or `sha256`) and its `import_line`.
"#,
        sections: &[],
        setup: "printf '%s\\n' '{\"name\": \"gateway\", \"secret\": \"sk-Zq81bLkT0mWc5yPrAe3NuXg7HsJd2VfQo9tCiE4KaR6hUw1B\", \"created_at\": \"2026-01-15T09:00:00Z\"}' '{\"name\": \"legacy\", \"sha256\": \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\", \"scopes\": \"read\"}' > old-keys.jsonl",
        examples: &[
            ex(
                "Check a file against the store without writing anything.",
                "keyctl import old-keys.jsonl --dry-run",
            ),
            ex(
                "Import it, then verify one of its keys by its hash.",
                "keyctl import old-keys.jsonl\nprintf '%s\\n' sk-Zq81bLkT0mWc5yPrAe3NuXg7HsJd2VfQo9tCiE4KaR6hUw1B | keyctl verify",
            ),
            fails(
                exit::CONFLICT,
                "A key the store already has fails the whole import, naming the line.",
                "keyctl import old-keys.jsonl",
            ),
        ],
        exits: &[&[exit::SUCCESS, exit::RUNTIME, exit::USAGE, exit::CONFLICT]],
    },
    PageText {
        command: "backup",
        description: r#"
Writes a consistent copy of the store to *PATH* with SQLite's online backup, in one read transaction, so it is one snapshot even while other keyctl processes write. The copy is written under a temporary name beside the target (mode 0600) and renamed over it, so no half-written backup is ever visible.

On a PostgreSQL store (see `keyctl`(7)) the backup is an SQLite file with what `keyctl copy` would copy, from one snapshot; `keyctl --db` *PATH* then reads it like any store.

Only a new or regular file is written: an existing file needs `--force`, and a directory, a device, a FIFO, a socket, the store itself and its `-wal`, `-shm` and `-journal` files are refused (exit 4). A symbolic link is written through to its target, with `--force` when the target exists; a dangling one is refused.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --quiet >/dev/null",
        examples: &[
            ex("Copy the store.", "keyctl backup keys-backup.db"),
            fails(
                exit::CONFLICT,
                "An existing file is not replaced without `--force`.",
                "keyctl backup keys-backup.db",
            ),
            ex("Replace it.", "keyctl backup keys-backup.db --force"),
        ],
        exits: &[&[exit::SUCCESS, exit::RUNTIME, exit::USAGE, exit::CONFLICT]],
    },
    PageText {
        command: "copy",
        description: r#"
Copies the whole store into a new store at `--to`: an SQLite file path, or a PostgreSQL URL (see `keyctl`(7)). Keys, settings, the request log, the counters and usage figures, and the audit trail are copied verbatim from one consistent snapshot, while other keyctl processes go on writing to the source; no audit event is added, so `keyctl audit verify` prints the same head on both stores. The head is printed on standard output (with `--json`: the target, the number of audit events and the head).

The target must hold no keyctl store yet: a missing file, or a database or schema without keyctl's tables. Any store there, even an empty one, is refused (exit 4) and nothing is written. A password inside the `--to` URL is refused (exit 2): put it in `PGPASSWORD` or `~/.pgpass`.
"#,
        sections: &[],
        setup: "keyctl create --name ci-deploy --quiet >/dev/null",
        examples: &[
            ex(
                "Copy the store into a new file and check that the copy's audit trail ends at the same head.",
                "head=$(keyctl copy --to moved.db)\nkeyctl --db moved.db audit verify --expect-head \"$head\"",
            ),
            fails(
                exit::CONFLICT,
                "A target that already holds a store is refused.",
                "keyctl copy --to moved.db",
            ),
        ],
        exits: &[&[exit::SUCCESS, exit::RUNTIME, exit::USAGE, exit::CONFLICT]],
    },
    PageText {
        command: "migrate",
        description: r#"
Brings the store's schema up to the one this keyctl uses, in one transaction, and says from which version to which (or that there was nothing to do). On PostgreSQL this is the only way an existing schema changes: other commands refuse a schema older than theirs instead of upgrading it, so the hosts of a fleet never race to upgrade; run `keyctl migrate` once, from one host, after installing the new keyctl everywhere it is needed. Each schema records the oldest keyctl that can use it. On SQLite every command migrates its file when it opens it; `migrate` does the same explicitly.
"#,
        sections: &[],
        setup: "keyctl init --quiet",
        examples: &[ex("Bring the store up to date.", "keyctl migrate")],
        exits: READ,
    },
    PageText {
        command: "config",
        description: r#"
Reads and changes the store's settings. Each is kept in the store, so every user and process of the store shares it; a change is recorded in the audit trail as a `config` event.

`key-prefix` :: The prefix of new secrets: 1 to 16 of a-z and 0-9; default `sk`.
`max-keys` :: The most active and disabled keys the store holds: a whole number, or `none` (the default). `create` fails at the limit.
`failed-auth-limit` :: Invalid keys from one IP, within `failed-auth-window`, that block it; default 10.
`failed-auth-ipv6-prefix` :: IPv6 addresses are counted and blocked by network of this many bits, 1 to 128; default 64.
`failed-auth-window` :: A duration: the window in which invalid keys are counted; default `10m`.
`block-duration` :: A duration: how long a blocked IP stays blocked; default `15m`.
`log-retention` :: A duration, or `never` (the default): request-log rows older than this are pruned on every recorded verification.
`rate-limit` :: `N/s`, `N/m` or `none` (the default): accepted requests of all keys together per second or minute; over it `verify` answers `rate_limited` (429, exit 21) with `exceeded the N per second rate limit on your subscription`, after the key's own rate limit and before its quotas.
`credit-limit` :: A whole number or `none` (the default): credits all keys together may ever spend, counting those spent before it was set; over it `verify` answers `credits_exhausted` (exit 15), after the key's own credit limit.
`group-multiplier.GROUP` :: A decimal from 0.0001 to 10000 with at most 4 decimal places, or `none`; default 1: a request of a key of group GROUP is charged its cost times this, rounded up to a whole credit (50 × 1.1 = 55), against the key's and the store's credit limits, in the request log and usage. `config list` shows the groups that have one.
"#,
        sections: &[],
        setup: "keyctl init --quiet",
        examples: &[
            ex("Every setting with its value and default.", "keyctl config list"),
            ex("Allow at most 50 keys.", "keyctl config set max-keys 50"),
        ],
        exits: ADMIN,
    },
    PageText {
        command: "config get",
        description: r#"
Prints one setting's value (the settings are listed in `keyctl-config`(1)). A name that is not a setting is exit 3.
"#,
        sections: &[],
        setup: "keyctl init --quiet",
        examples: &[
            ex("How many invalid keys block an IP.", "keyctl config get failed-auth-limit"),
            fails(
                exit::NOT_FOUND,
                "A name that is not a setting.",
                "keyctl config get no-such-setting",
            ),
        ],
        exits: &[BASIC, &[exit::NOT_FOUND]],
    },
    PageText {
        command: "config set",
        description: r#"
Changes one setting, recorded in the audit trail; the settings, their forms and defaults are listed in `keyctl-config`(1). A name that is not a setting is exit 3; a value of the wrong form is exit 2. Setting `max-keys` below the number of keys there are is allowed: `create` then fails until keys are revoked or deleted.
"#,
        sections: &[],
        setup: "keyctl init --quiet",
        examples: &[
            ex(
                "Keep 90 days of request log.",
                "keyctl config set log-retention 90d",
            ),
            ex("Block an IP for an hour.", "keyctl config set block-duration 1h"),
            ex(
                "At most 100 requests a second across all keys.",
                "keyctl config set rate-limit 100/s",
            ),
            ex(
                "Charge keys of group pro one and a half times their cost.",
                "keyctl config set group-multiplier.pro 1.5",
            ),
            fails(
                exit::USAGE,
                "A value of the wrong form.",
                "keyctl config set failed-auth-limit many",
            ),
        ],
        exits: &[BASIC, &[exit::NOT_FOUND]],
    },
    PageText {
        command: "config list",
        description: r#"
Lists every setting with its value, whether it was set or is the default, and what it does; `--json` and `--format csv` for scripts.
"#,
        sections: &[],
        setup: "keyctl init --quiet",
        examples: &[
            ex("The settings.", "keyctl config list"),
            ex("As json.", "keyctl config list --json"),
        ],
        exits: READ,
    },
    PageText {
        command: "completions",
        description: r#"
Prints the completion script for bash, zsh, fish, PowerShell or elvish. In bash, zsh and fish, key arguments (`keyctl revoke` Tab) complete with the names of the keys the command can act on, read from the store the command line would use (`--db`, else `KEYCTL_DB`, else the default); without a store there are no candidates, never an error. The script calls `keyctl` back from PATH, so this keyctl must come before keyutils' `keyctl` there.
"#,
        sections: &[],
        setup: "",
        examples: &[
            ex(
                "Load bash completion in the current shell (put it in ~/.bashrc to keep it).",
                "source <(keyctl completions bash)",
            ),
            ex(
                "Install fish completion for the current user.",
                "mkdir -p ~/.config/fish/completions\nkeyctl completions fish > ~/.config/fish/completions/keyctl.fish",
            ),
            ex(
                "zsh: load it after compinit, in ~/.zshrc.",
                "keyctl completions zsh > _keyctl",
            ),
        ],
        exits: READ,
    },
];
