//! Json as keyctl prints it, with its member order (SPEC §2).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The key object of SPEC §2 "Key object (json)", in order.
pub const KEY_FIELDS: [&str; 27] = [
    "id",
    "name",
    "description",
    "owner",
    "key_prefix",
    "status",
    "is_active",
    "livemode",
    "category",
    "group",
    "scopes",
    "deployment",
    "allowed_models",
    "allowed_ips",
    "quotas",
    "rate_limit",
    "credit_limit",
    "credits_used",
    "refill",
    "next_refill_at",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "rotated_from",
    "rotated_to",
    "meta",
];

pub const QUOTA_FIELDS: [&str; 4] = ["total", "daily", "weekly", "monthly"];

/// A json value that remembers the order of object members (serde_json's `Value`
/// sorts them unless its `preserve_order` feature is on, which would change keyctl).
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar,
}

impl Ordered {
    pub fn parse(text: &str) -> Ordered {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not json ({e}): {text}"))
    }

    /// Member names of an object, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(members) => members.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    pub fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Object(members) => {
                &members
                    .iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("no member {key}"))
                    .1
            }
            other => panic!("not an object: {other:?}"),
        }
    }

    pub fn items(&self) -> &[Ordered] {
        match self {
            Ordered::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }
}

/// Asserts an object has exactly the key-object members, in the spec's order
/// (and the quotas object its four members in order).
pub fn assert_key_field_order(obj: &Ordered) {
    assert_eq!(obj.keys(), KEY_FIELDS, "key object members");
    assert_eq!(obj.get("quotas").keys(), QUOTA_FIELDS, "quotas members");
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any json value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_none<E: de::Error>(self) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Ordered, D::Error> {
        Ordered::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Ordered>()? {
            items.push(item);
        }
        Ok(Ordered::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            members.push((key, map.next_value::<Ordered>()?));
        }
        Ok(Ordered::Object(members))
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}
