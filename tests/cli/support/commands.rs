//! Typed wrappers of keyctl commands whose output a test reads as data.

use serde_json::Value;

use super::{Outcome, TestEnv, NOW};

/// What `create --json` returned.
pub struct Created {
    pub secret: String,
    pub details: Value,
}

impl Created {
    pub fn id(&self) -> &str {
        self.details["id"].as_str().expect("id is a string")
    }

    pub fn prefix(&self) -> &str {
        self.details["key_prefix"]
            .as_str()
            .expect("key_prefix is a string")
    }
}

pub fn names(keys: &[Value]) -> Vec<String> {
    keys.iter()
        .map(|k| k["name"].as_str().expect("name is a string").to_string())
        .collect()
}

/// `FIRST... ARGS...` as one argument list.
fn joined<'a>(first: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    first.iter().chain(args).copied().collect()
}

/// The json array a successful command printed.
fn json_array(out: &Outcome) -> Vec<Value> {
    out.ok();
    match out.json() {
        Value::Array(items) => items,
        other => panic!("printed {other}, not an array\n{out}"),
    }
}

impl TestEnv {
    /// `keyctl create --json --name NAME EXTRA...` (at `NOW`); returns the secret and
    /// the key object.
    pub fn create(&self, name: &str, extra: &[&str]) -> Created {
        self.create_at(NOW, name, extra)
    }

    pub fn create_at(&self, now: &str, name: &str, extra: &[&str]) -> Created {
        let out = self.run_at(now, &joined(&["create", "--json", "--name", name], extra));
        out.ok();
        let v = out.json();
        let secret = v["key"].as_str().expect("key is a string").to_string();
        Created {
            secret,
            details: v["key_details"].clone(),
        }
    }

    /// `keyctl disable KEYREF`, which must succeed.
    pub fn disable(&self, keyref: &str) {
        self.run(&["disable", keyref]).ok();
    }

    /// `keyctl revoke --yes KEYREF`, which must succeed.
    pub fn revoke(&self, keyref: &str) {
        self.run(&["revoke", "--yes", keyref]).ok();
    }

    /// `keyctl list --json ARGS` parsed.
    pub fn list_json(&self, args: &[&str]) -> Vec<Value> {
        self.list_json_at(NOW, args)
    }

    pub fn list_json_at(&self, now: &str, args: &[&str]) -> Vec<Value> {
        json_array(&self.run_at(now, &joined(&["list", "--json"], args)))
    }

    /// Names of the keys `list --json ARGS` prints, in order.
    pub fn list_names(&self, args: &[&str]) -> Vec<String> {
        names(&self.list_json(args))
    }

    /// `keyctl show --json KEYREF` without its `usage` member: the key object alone.
    pub fn key_json(&self, keyref: &str) -> Value {
        self.key_json_at(NOW, keyref)
    }

    pub fn key_json_at(&self, now: &str, keyref: &str) -> Value {
        let out = self.run_at(now, &["show", "--json", keyref]);
        out.ok();
        let mut v = out.json();
        v.as_object_mut()
            .expect("show --json prints an object")
            .remove("usage");
        v
    }

    /// `keyctl show --json KEYREF` at `now`: its `usage` member.
    pub fn usage_of(&self, now: &str, keyref: &str) -> Value {
        let out = self.run_at(now, &["show", "--json", keyref]);
        out.ok();
        out.json()["usage"].clone()
    }

    /// `keyctl audit --json ARGS`: the events, newest first.
    pub fn audit_json(&self, args: &[&str]) -> Vec<Value> {
        json_array(&self.run(&joined(&["audit", "--json"], args)))
    }

    /// `keyctl audit verify` on an intact chain: its event count and head hash.
    pub fn audit_head(&self) -> (u64, String) {
        let out = self.run(&["audit", "verify"]);
        out.ok();
        parse_verify_line(&out.stdout)
    }

    /// `keyctl logs --json ARGS` (at `NOW`): the rows, newest first.
    pub fn logs_json(&self, args: &[&str]) -> Vec<Value> {
        json_array(&self.run(&joined(&["logs", "--json"], args)))
    }
}

/// Parses `audit trail intact: N events, head HEX` (`1 event`) into (N, HEX).
pub fn parse_verify_line(stdout: &str) -> (u64, String) {
    let line = stdout
        .strip_prefix("audit trail intact: ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("not an 'audit trail intact' line: {stdout:?}"));
    let (count, head) = line
        .split_once(" events, head ")
        .or_else(|| line.split_once(" event, head ").filter(|(n, _)| *n == "1"))
        .unwrap_or_else(|| panic!("no count and head in {stdout:?}"));
    let head = head.to_string();
    assert!(
        head.len() == 64
            && head
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "head {head:?} is not 64 lowercase hex digits"
    );
    (count.parse().expect("event count"), head)
}
