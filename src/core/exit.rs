//! The exit codes of SPEC §2 and §3, in one table. `Kind::exit_code`,
//! `Outcome::exit_code`, the top-level `--help` and the man pages' EXIT STATUS sections
//! all read it, so a code is named and explained in one place.

/// One exit code: its number, a short name (verify's result code where it is one) and
/// what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub name: &'static str,
    pub meaning: &'static str,
}

const fn exit(code: i32, name: &'static str, meaning: &'static str) -> Exit {
    Exit {
        code,
        name,
        meaning,
    }
}

pub const SUCCESS: Exit = exit(
    0,
    "success",
    "success (also when a reader closes stdout early, except where the exit code is the answer)",
);
pub const RUNTIME: Exit = exit(
    1,
    "runtime failure",
    "the store is missing, unreadable, foreign, corrupt, newer or read-only; an I/O \
     error; a confirmation was declined",
);
pub const USAGE: Exit = exit(
    2,
    "usage",
    "a bad flag or value: a malformed time, IP address or number, a refused text value, \
     or --yes needed without a terminal",
);
pub const NOT_FOUND: Exit = exit(3, "not found", "a KEYREF or setting that matches nothing");
pub const CONFLICT: Exit = exit(
    4,
    "conflict",
    "an ambiguous KEYREF, a name taken, the key limit reached, or a refused transition \
     (enable a revoked key, delete a used key without --force, an existing target)",
);
pub const FINDINGS: Exit = exit(
    5,
    "findings",
    "report --fail-on: a finding it names is present",
);
pub const AUDIT_BROKEN: Exit = exit(
    8,
    "audit trail broken",
    "audit verify: the hash chain is broken, or the --expect-head hash is not in it",
);
pub const LIVE_KEY_FOUND: Exit = exit(
    9,
    "live key found",
    "scan: an active key of this store was found (also after --revoke revoked it)",
);
pub const INVALID: Exit = exit(
    10,
    "invalid",
    "no such key, or a malformed key or one with a bad checksum",
);
pub const INACTIVE: Exit = exit(11, "inactive", "the key is disabled");
pub const EXPIRED: Exit = exit(12, "expired", "the key's expiry has passed");
pub const REVOKED: Exit = exit(13, "revoked", "the key has been revoked");
pub const QUOTA_EXCEEDED: Exit = exit(
    14,
    "quota exceeded",
    "a total, daily, weekly or monthly quota is used up",
);
pub const CREDITS_EXHAUSTED: Exit = exit(
    15,
    "credits exhausted",
    "the request costs more credits than are left",
);
pub const IP_NOT_ALLOWED: Exit = exit(
    16,
    "IP not allowed",
    "the client IP is not in the key's allowlist (or no --ip was given)",
);
pub const IP_BLOCKED: Exit = exit(
    17,
    "IP blocked",
    "the client IP is blocked after repeated invalid keys",
);
pub const FORBIDDEN_DEPLOYMENT: Exit =
    exit(18, "deployment", "the key is bound to another deployment");
pub const FORBIDDEN_SCOPE: Exit = exit(19, "scope", "the key lacks the requested scope");
pub const FORBIDDEN_MODEL: Exit = exit(20, "model", "the key may not use the requested model");
pub const RATE_LIMITED: Exit = exit(21, "rate limited", "the key's rate limit is reached");
pub const UNAVAILABLE: Exit = exit(
    22,
    "unavailable",
    "the key store could not be reached (a PostgreSQL server down or dropped): nothing was recorded",
);
pub const INTERRUPTED: Exit = exit(
    130,
    "interrupted",
    "Ctrl-C in the create wizard: nothing was created",
);

/// The codes every command can return: success and the general failures.
pub const GENERAL: &[Exit] = &[SUCCESS, RUNTIME, USAGE, NOT_FOUND, CONFLICT];

/// The answers of `verify` besides 0 (valid).
pub const VERIFY_ANSWERS: &[Exit] = &[
    INVALID,
    INACTIVE,
    EXPIRED,
    REVOKED,
    QUOTA_EXCEEDED,
    CREDITS_EXHAUSTED,
    IP_NOT_ALLOWED,
    IP_BLOCKED,
    FORBIDDEN_DEPLOYMENT,
    FORBIDDEN_SCOPE,
    FORBIDDEN_MODEL,
    RATE_LIMITED,
    UNAVAILABLE,
];

/// Every code keyctl returns, in groups, in order.
pub const TABLE: &[&[Exit]] = &[
    GENERAL,
    &[FINDINGS],
    &[AUDIT_BROKEN, LIVE_KEY_FOUND],
    VERIFY_ANSWERS,
    &[INTERRUPTED],
];

/// Every code of [`TABLE`], in order.
pub fn all() -> impl Iterator<Item = Exit> {
    TABLE.iter().flat_map(|group| group.iter().copied())
}

/// The exit-code paragraph of the top-level `--help`.
pub fn help_text() -> String {
    let list = |codes: &[Exit]| {
        codes
            .iter()
            .map(|e| format!("{} {}", e.code, e.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let general = [GENERAL, &[FINDINGS], &[AUDIT_BROKEN, LIVE_KEY_FOUND]].concat();
    let valid = Exit {
        name: "valid",
        ..SUCCESS
    };
    let verify = [&[valid], VERIFY_ANSWERS].concat();
    format!("Exit codes: {}. verify: {}.", list(&general), list(&verify))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_in_order() {
        let codes: Vec<i32> = all().map(|e| e.code).collect();
        assert!(codes.windows(2).all(|p| p[0] < p[1]), "{codes:?}");
        assert_eq!(codes.len(), 22);
    }

    #[test]
    fn the_help_names_every_code_but_the_wizards() {
        let help = help_text();
        for e in all().filter(|e| *e != INTERRUPTED) {
            assert!(help.contains(&format!("{} {}", e.code, e.name)), "{e:?}");
        }
        assert!(help.starts_with("Exit codes: 0 success, 1 runtime failure"));
        assert!(help.contains("verify: 0 valid, 10 invalid, 11 inactive"));
        assert!(help.ends_with("21 rate limited, 22 unavailable."));
    }
}
