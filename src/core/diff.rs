//! Field-by-field differences between two sets of key settings, for the audit trail
//! (`edited` events record each changed field as old → new).

use serde_json::{json, Value};

use super::model::KeySettings;
use super::time::rfc3339;

/// One changed field: its name, the old value and the new value (json).
pub type Change = (&'static str, Value, Value);

fn opt(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| json!(s))
}

/// The changes from `old` to `new`, in the key object's field order.
pub fn settings_diff(old: &KeySettings, new: &KeySettings) -> Vec<Change> {
    let fields: Vec<(&'static str, Value, Value)> = vec![
        ("name", json!(old.name), json!(new.name)),
        ("description", opt(&old.description), opt(&new.description)),
        ("owner", json!(old.owner), json!(new.owner)),
        ("category", opt(&old.category), opt(&new.category)),
        ("group", opt(&old.group), opt(&new.group)),
        ("scopes", json!(old.scopes), json!(new.scopes)),
        ("deployment", opt(&old.deployment), opt(&new.deployment)),
        (
            "allowed_models",
            json!(old.allowed_models),
            json!(new.allowed_models),
        ),
        (
            "allowed_ips",
            json!(old.allowed_ips),
            json!(new.allowed_ips),
        ),
        (
            "quota_total",
            json!(old.quotas.total),
            json!(new.quotas.total),
        ),
        (
            "quota_daily",
            json!(old.quotas.daily),
            json!(new.quotas.daily),
        ),
        (
            "quota_weekly",
            json!(old.quotas.weekly),
            json!(new.quotas.weekly),
        ),
        (
            "quota_monthly",
            json!(old.quotas.monthly),
            json!(new.quotas.monthly),
        ),
        (
            "rate_limit",
            json!(old.rate_limit.map(|r| r.to_string())),
            json!(new.rate_limit.map(|r| r.to_string())),
        ),
        (
            "credit_limit",
            json!(old.credit_limit),
            json!(new.credit_limit),
        ),
        (
            "expires_at",
            json!(old.expires_at.map(rfc3339)),
            json!(new.expires_at.map(rfc3339)),
        ),
        ("meta", old.meta.to_value(), new.meta.to_value()),
        (
            "refill",
            json!(old.refill.map(|r| r.to_string())),
            json!(new.refill.map(|r| r.to_string())),
        ),
    ];
    fields.into_iter().filter(|(_, a, b)| a != b).collect()
}

/// The `details` object of an `edited` event: `{"changes": {field: {"old", "new"}}}`.
pub fn changes_json(changes: &[Change]) -> Value {
    let mut map = serde_json::Map::new();
    for (field, old, new) in changes {
        map.insert((*field).to_string(), json!({ "old": old, "new": new }));
    }
    json!({ "changes": map })
}

/// `name: a → b, scopes: [] → ["read"]`, for people.
pub fn changes_text(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|(f, old, new)| format!("{f}: {} → {}", short(old), short(new)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn short(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_fields_in_order() {
        let old = KeySettings {
            name: "a".into(),
            owner: "o".into(),
            ..KeySettings::default()
        };
        let mut new = old.clone();
        assert!(settings_diff(&old, &new).is_empty());
        new.name = "b".into();
        new.scopes = vec!["read".into()];
        new.quotas.daily = Some(5);
        let d = settings_diff(&old, &new);
        let names: Vec<&str> = d.iter().map(|c| c.0).collect();
        assert_eq!(names, ["name", "scopes", "quota_daily"]);
        assert_eq!(
            changes_text(&d),
            "name: a → b, scopes: [] → [\"read\"], quota_daily: none → 5"
        );
        assert_eq!(
            changes_json(&d)["changes"]["name"],
            json!({"old": "a", "new": "b"})
        );
    }
}
