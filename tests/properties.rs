//! Property tests for the pure core: key format, time parsing, IP ranges, and the
//! verification policy. Failing cases are shrunk and reported by proptest.

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Duration, Utc};
use keyctl::core::allowlist::{allows, parse_rule};
use keyctl::core::key::{self, Mode, BASE62};
use keyctl::core::limits::{Quotas, RateLimit, RateUnit};
use keyctl::core::model::{KeyRecord, KeySettings, NewKey};
use keyctl::core::policy::{check_key, check_limits, Counts, Outcome, Request};
use keyctl::core::time::{format_duration, parse_duration, parse_time_spec, rfc3339};
use proptest::prelude::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn body() -> impl Strategy<Value = String> {
    proptest::collection::vec(0usize..62, key::RANDOM_LEN)
        .prop_map(|v| v.into_iter().map(|i| BASE62[i] as char).collect())
}

fn prefix() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,16}"
}

proptest! {
    #[test]
    fn secrets_round_trip(p in prefix(), test in any::<bool>(), b in body()) {
        let mode = if test { Mode::Test } else { Mode::Live };
        let secret = key::assemble(&p, mode, &b);
        let parsed = key::parse(secret.expose()).unwrap();
        prop_assert_eq!(parsed.prefix, p.as_str());
        prop_assert_eq!(parsed.mode, mode);
        prop_assert_eq!(&parsed.body[..key::RANDOM_LEN], b.as_str());
    }

    #[test]
    fn any_single_character_change_is_rejected(
        p in prefix(), b in body(), pos in any::<prop::sample::Index>(), c in any::<char>()
    ) {
        let secret = key::assemble(&p, Mode::Live, &b);
        let text = secret.expose();
        let chars: Vec<char> = text.chars().collect();
        let i = pos.index(chars.len());
        prop_assume!(chars[i] != c);
        let mut changed = chars.clone();
        changed[i] = c;
        let changed: String = changed.into_iter().collect();
        prop_assert!(key::parse(&changed).is_err(), "accepted {changed:?}");
    }

    #[test]
    fn key_parsing_never_panics(s in any::<String>()) {
        let _ = key::parse(&s);
        let _ = key::strip_bearer(&s);
    }

    #[test]
    fn time_parsing_never_panics(s in any::<String>()) {
        let _ = parse_time_spec(&s, true);
        let _ = parse_duration(&s);
    }

    #[test]
    fn durations_round_trip(n in 1i64..50_000, unit in prop::sample::select(vec!["s", "m", "h", "d", "w"])) {
        let text = format!("{n}{unit}");
        let d = parse_duration(&text).unwrap();
        let again = parse_duration(&format_duration(d)).unwrap();
        prop_assert_eq!(d, again);
    }

    #[test]
    fn dates_round_trip(secs in 0i64..4_000_000_000) {
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        let spec = parse_time_spec(&rfc3339(t), true).unwrap();
        prop_assert_eq!(spec.after(now()), Some(t));
    }

    #[test]
    fn ipv4_ranges_agree_with_a_reference(net in any::<u32>(), len in 0u8..=32, addr in any::<u32>()) {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
        let network = net & mask;
        let rule = parse_rule(&format!("{}/{len}", Ipv4Addr::from(network))).unwrap();
        let ip = IpAddr::V4(Ipv4Addr::from(addr));
        prop_assert_eq!(allows(&[rule], &ip), addr & mask == network);
    }
}

/// A key whose every restriction can be toggled.
#[derive(Debug, Clone)]
struct Restrictions {
    scopes: Vec<String>,
    models: Vec<String>,
    deployment: Option<String>,
    ips: Vec<String>,
    quota: Option<u64>,
    rate: Option<u64>,
    credits: Option<u64>,
    expired: bool,
}

fn restrictions() -> impl Strategy<Value = Restrictions> {
    (
        proptest::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..3),
        proptest::collection::vec(prop::sample::select(vec!["m1", "m2"]), 0..2),
        proptest::option::of(prop::sample::select(vec!["prod", "dev"])),
        proptest::collection::vec(prop::sample::select(vec!["10.0.0.0/8", "192.0.2.1"]), 0..2),
        proptest::option::of(0u64..5),
        proptest::option::of(1u64..5),
        proptest::option::of(0u64..5),
        any::<bool>(),
    )
        .prop_map(|(s, m, d, i, q, r, c, e)| Restrictions {
            scopes: s.into_iter().map(String::from).collect(),
            models: m.into_iter().map(String::from).collect(),
            deployment: d.map(String::from),
            ips: i.into_iter().map(String::from).collect(),
            quota: q,
            rate: r,
            credits: c,
            expired: e,
        })
}

fn key_with(r: &Restrictions) -> KeyRecord {
    let new = NewKey {
        id: "key_aaaaaaaaaaaa".into(),
        hash: [0; 32],
        key_prefix: Some("sk_live_abcd".into()),
        mode: Mode::Live,
        created_at: now() - Duration::days(1),
        settings: KeySettings {
            name: "k".into(),
            owner: "o".into(),
            scopes: r.scopes.clone(),
            allowed_models: r.models.clone(),
            deployment: r.deployment.clone(),
            allowed_ips: r.ips.clone(),
            quotas: Quotas {
                daily: r.quota,
                ..Quotas::default()
            },
            rate_limit: r.rate.map(|count| RateLimit {
                count,
                unit: RateUnit::Second,
            }),
            credit_limit: r.credits,
            expires_at: r.expired.then(|| now() - Duration::seconds(1)),
            ..KeySettings::default()
        },
        rotated_from: None,
    };
    KeyRecord::from_new(&new, 1)
}

/// A request of the given context (absent parts None).
fn request(
    ip: Option<&str>,
    scope: Option<&str>,
    deployment: Option<&str>,
    model: Option<&str>,
    cost: u64,
) -> Request {
    Request {
        ip: ip.map(|i| i.parse().unwrap()),
        scope: scope.map(String::from),
        deployment: deployment.map(String::from),
        model: model.map(String::from),
        cost,
    }
}

fn decide(k: &KeyRecord, req: &Request, counts: &Counts) -> Outcome {
    match check_key(k, req, now()) {
        Outcome::Valid => check_limits(k, counts, req.cost),
        other => other,
    }
}

/// An allow-set made stricter: an empty set (everything allowed) gains one entry; a
/// larger set loses one; a single entry cannot shrink (empty would mean "any").
fn shrink(set: &mut Vec<String>, new: &str) {
    match set.len() {
        0 => set.push(new.into()),
        1 => {}
        _ => {
            set.pop();
        }
    }
}

/// Makes one restriction stricter (or adds it).
fn tighten(mut r: Restrictions, which: u8) -> Restrictions {
    match which % 8 {
        0 => shrink(&mut r.scopes, "z"),
        1 => shrink(&mut r.models, "mz"),
        2 => {
            if r.deployment.is_none() {
                r.deployment = Some("elsewhere".into());
            }
        }
        3 => shrink(&mut r.ips, "198.51.100.0/24"),
        4 => r.quota = Some(r.quota.map_or(0, |q| q.saturating_sub(1))),
        5 => r.rate = Some(r.rate.map_or(1, |q| q.saturating_sub(1).max(1))),
        6 => r.credits = Some(r.credits.map_or(0, |c| c.saturating_sub(1))),
        _ => r.expired = true,
    }
    r
}

proptest! {
    /// A stricter setting never accepts a request the looser one refuses.
    #[test]
    fn stricter_settings_never_accept_more(
        r in restrictions(),
        which in any::<u8>(),
        scope in proptest::option::of(prop::sample::select(vec!["a", "b", "z"])),
        model in proptest::option::of(prop::sample::select(vec!["m1", "m2", "mz"])),
        deployment in proptest::option::of(prop::sample::select(vec!["prod", "dev", "elsewhere"])),
        ip in proptest::option::of(prop::sample::select(vec!["10.1.2.3", "192.0.2.1", "198.51.100.7"])),
        used in 0u64..5,
        cost in 0u64..3,
    ) {
        let loose = key_with(&r);
        let strict = key_with(&tighten(r, which));
        let req = request(ip, scope, deployment, model, cost);
        let counts = Counts { rate_window: used, total: used, daily: used, weekly: used, monthly: used };
        if decide(&strict, &req, &counts) == Outcome::Valid {
            prop_assert_eq!(decide(&loose, &req, &counts), Outcome::Valid);
        }
    }
}

// ---- SPEC §5: text in and out ----

proptest! {
    /// Escaped text holds no hidden character, and escaping twice changes nothing.
    #[test]
    fn escaped_text_shows_nothing_hidden(t in any::<String>()) {
        use keyctl::core::text::{escape, is_hidden};
        let once = escape(&t).into_owned();
        prop_assert!(!once.chars().any(is_hidden));
        prop_assert_eq!(escape(&once).into_owned(), once);
    }

    /// keyctl's json holds no hidden character raw and parses back to the original.
    #[test]
    fn json_output_round_trips_without_raw_hidden_characters(t in any::<String>()) {
        let bytes = keyctl::ui::json::to_vec(&t).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        prop_assert!(!text.chars().any(keyctl::core::text::is_hidden));
        prop_assert_eq!(serde_json::from_str::<String>(&text).unwrap(), t);
    }

    /// A secret anywhere in a value is found (so refused) and cut from a message.
    #[test]
    fn a_secret_inside_any_text_is_found_and_redacted(
        before in "[ -~]{0,20}", p in prefix(), live in any::<bool>(), b in body(), after in "[ -~]{0,20}"
    ) {
        let mode = if live { Mode::Live } else { Mode::Test };
        let secret = key::assemble(&p, mode, &b);
        let text = format!("{before}{}{after}", secret.expose());
        prop_assert!(keyctl::core::text::find_secret(&text).is_some());
        prop_assert!(keyctl::core::names::validate_text("--owner", &text).is_err());
        prop_assert!(!keyctl::core::text::redact(&text).contains(&b));
    }
}

// ---- verify --explain: every check evaluated, the verdict decide's ----

/// SPEC §3's order as first written (before `core::checks`): an independent oracle
/// of the first failure for a found, well-formed key from an unblocked IP.
/// Store-wide limits of 3 per second and 6 credits with these figures (accepted in
/// the window, credits spent) and the key's group's multiplier, if any.
fn store_view(
    (rate_window, credits_used, multiplier): (u64, u64, Option<u64>),
) -> keyctl::core::store_limits::StoreView {
    keyctl::core::store_limits::StoreView {
        rate_limit: Some(RateLimit {
            count: 3,
            unit: RateUnit::Second,
        }),
        credit_limit: Some(6),
        rate_window,
        credits_used,
        multiplier,
    }
}

/// The oracle with the store-wide checks (SPEC §8) woven into SPEC §3's order: key
/// rate limit, store rate limit, quotas, key credits, store credits, at the cost
/// times the multiplier, rounded up.
fn store_oracle(
    k: &KeyRecord,
    req: &Request,
    counts: &Counts,
    store: Option<keyctl::core::store_limits::StoreView>,
) -> Outcome {
    let Some(store) = store else {
        return oracle(k, req, counts);
    };
    let charged = store.multiplier.map_or(req.cost, |m| {
        let product = u128::from(req.cost) * u128::from(m);
        product.div_ceil(10_000) as u64
    });
    let req = Request {
        cost: charged,
        ..req.clone()
    };
    // Up to the key's rate limit: the key without quotas and credits.
    let mut early = k.clone();
    early.settings.quotas = Quotas::default();
    early.settings.credit_limit = None;
    let o = oracle(&early, &req, counts);
    if o != Outcome::Valid {
        return o;
    }
    if let Some(rate) = store.rate_limit.filter(|r| store.rate_window >= r.count) {
        return Outcome::StoreRateLimited(rate);
    }
    let o = oracle(k, &req, counts);
    if o != Outcome::Valid {
        return o;
    }
    if store
        .credit_limit
        .is_some_and(|l| store.credits_used + charged > l)
    {
        return Outcome::CreditsExhausted;
    }
    Outcome::Valid
}

fn oracle(k: &KeyRecord, req: &Request, counts: &Counts) -> Outcome {
    use keyctl::core::model::State;
    match k.state {
        State::Revoked => return Outcome::Revoked,
        State::Disabled => return Outcome::Inactive,
        State::Active => {}
    }
    let s = &k.settings;
    if s.expires_at.is_some_and(|e| e <= now()) {
        return Outcome::Expired;
    }
    if !s.allowed_ips.is_empty() {
        let rules: Vec<_> = s
            .allowed_ips
            .iter()
            .filter_map(|r| parse_rule(r).ok())
            .collect();
        if !req
            .ip
            .is_some_and(|ip| !rules.is_empty() && allows(&rules, &ip))
        {
            return Outcome::IpNotAllowed;
        }
    }
    if s.deployment
        .as_ref()
        .is_some_and(|d| req.deployment.as_ref() != Some(d))
    {
        return Outcome::ForbiddenDeployment;
    }
    if let Some(scope) = req
        .scope
        .as_ref()
        .filter(|sc| !s.scopes.is_empty() && !s.scopes.contains(sc))
    {
        return Outcome::ForbiddenScope(scope.clone());
    }
    if req
        .model
        .as_ref()
        .is_some_and(|m| !s.allowed_models.is_empty() && !s.allowed_models.contains(m))
    {
        return Outcome::ForbiddenModel;
    }
    if let Some(rate) = s.rate_limit.filter(|r| counts.rate_window >= r.count) {
        return Outcome::RateLimited(rate);
    }
    let q = &s.quotas;
    for (cap, used, which) in [
        (q.total, counts.total, "total"),
        (q.daily, counts.daily, "daily"),
        (q.weekly, counts.weekly, "weekly"),
        (q.monthly, counts.monthly, "monthly"),
    ] {
        if cap.is_some_and(|cap| used >= cap) {
            return Outcome::QuotaExceeded(which);
        }
    }
    let spent = k.credits_used.saturating_add(req.cost);
    if s.credit_limit.is_some_and(|l| spent > l) {
        return Outcome::CreditsExhausted;
    }
    Outcome::Valid
}

proptest! {
    /// Over random keys, states, requests, counts, blocks and presented keys: the
    /// explanation has every check in order, each evaluated on its own (the same
    /// result alone as in the list); its first failure is `decide`'s outcome, and that
    /// outcome is the oracle's.
    #[test]
    fn explain_evaluates_every_check_and_its_first_failure_is_the_verdict(
        r in restrictions(),
        state in 0u8..3,
        blocked in any::<bool>(),
        found in any::<bool>(),
        parsed in any::<bool>(),
        scope in proptest::option::of(prop::sample::select(vec!["a", "b", "z"])),
        model in proptest::option::of(prop::sample::select(vec!["m1", "m2", "mz"])),
        deployment in proptest::option::of(prop::sample::select(vec!["prod", "dev"])),
        ip in proptest::option::of(prop::sample::select(vec!["10.1.2.3", "192.0.2.1", "198.51.100.7"])),
        used in (0u64..5, 0u64..5, 0u64..5),
        credits_used in 0u64..5,
        cost in 0u64..3,
        store in proptest::option::of((0u64..5, 0u64..8, proptest::option::of(1u64..40_000))),
    ) {
        use keyctl::core::checks::{Check, Result as Checked, Subject};
        use keyctl::core::model::State;
        use keyctl::core::policy::{decide, explain, VerifyView};
        let mut k = key_with(&r);
        k.state = [State::Active, State::Disabled, State::Revoked][state as usize];
        k.credits_used = credits_used;
        let req = request(ip, scope, deployment, model, cost);
        let counts = Counts { rate_window: used.0, total: used.1, daily: used.2, weekly: used.1, monthly: used.0 };
        let view = VerifyView {
            ip_blocked_until: (blocked && req.ip.is_some()).then(|| now() + Duration::minutes(5)),
            key: found.then(|| k.clone()),
            counts,
            now: now(),
            store: store.map(store_view),
            ..VerifyView::default()
        };
        let rows = explain(&view, parsed, &req);
        let names: Vec<Check> = rows.iter().map(|e| e.check).collect();
        prop_assert_eq!(names, Check::ALL.to_vec());
        let subject = Subject {
            ip_blocked_until: view.ip_blocked_until,
            parsed,
            key: view.key.as_ref(),
            counts: &view.counts,
            req: &req,
            now: now(),
            store: view.store,
        };
        let key_found = found && parsed;
        for e in &rows {
            prop_assert_eq!(*e, subject.evaluate(e.check));
            // Without a key nothing after `invalid` is checked.
            let before_key = matches!(e.check, Check::IpBlocked | Check::Invalid);
            if !key_found && !before_key {
                prop_assert_eq!(e.result, Checked::NotApplicable);
            }
        }
        let first = rows.iter().find(|e| e.failed()).map_or(Outcome::Valid, |e| e.outcome());
        let view_store = view.store;
        let verdict = decide(view, parsed, &req, now()).outcome;
        prop_assert_eq!(&first, &verdict);
        let expected = if blocked && req.ip.is_some() {
            Outcome::IpBlocked
        } else if !(found && parsed) {
            Outcome::Invalid
        } else {
            store_oracle(&k, &req, &counts, view_store)
        };
        prop_assert_eq!(verdict, expected);
    }
}

// ---- credit refill (SPEC §8) ----

fn refill_strategy() -> impl Strategy<Value = keyctl::core::refill::Refill> {
    use keyctl::core::refill::{Interval, Mode as RefillMode, Refill};
    (
        prop_oneof![1u64..200, 1u64..=keyctl::core::limits::MAX_COUNT],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(amount, month, add)| Refill {
            amount,
            interval: if month {
                Interval::Month
            } else {
                Interval::Day
            },
            mode: if add {
                RefillMode::Add
            } else {
                RefillMode::Set
            },
        })
}

/// A time within about 30 years of `now()`, to the millisecond.
fn refill_time() -> impl Strategy<Value = DateTime<Utc>> {
    (-1_000_000_000_000i64..1_000_000_000_000).prop_map(|ms| now() + Duration::milliseconds(ms))
}

proptest! {
    /// Reading the balance at t1 and storing it, then reading at t2, gives what one
    /// read at t2 gives: a reader or a group of requests in between changes nothing,
    /// and no boundary is applied twice (also with the clock going back).
    #[test]
    fn a_refill_read_in_steps_is_the_refill_read_once(
        refill in refill_strategy(),
        limit in prop_oneof![1u64..300, 1u64..=keyctl::core::limits::MAX_COUNT],
        used in any::<u64>(),
        start in refill_time(),
        t1 in refill_time(),
        t2 in refill_time(),
    ) {
        use keyctl::core::refill::{balance_at, boundary_at, Balance};
        let b = Balance { used, refilled_at: Some(boundary_at(refill.interval, start)) };
        let once = balance_at(&refill, limit, b, t2);
        let stepped = balance_at(&refill, limit, balance_at(&refill, limit, b, t1), t2);
        if t1 <= t2 {
            prop_assert_eq!(once, stepped);
        }
        // Never more remaining than the limit, once anything was applied.
        if once != b {
            prop_assert!(once.used <= limit);
            prop_assert!(once.refilled_at > b.refilled_at);
        }
        // The boundary stored never goes back.
        prop_assert!(stepped.refilled_at >= b.refilled_at);
    }

    /// The last boundary is at or before t, the next after it, and both are midnights
    /// (on the 1st for months), with no boundary between them.
    #[test]
    fn boundaries_enclose_every_time(refill in refill_strategy(), t in refill_time()) {
        use chrono::{Datelike, Timelike};
        use keyctl::core::refill::{boundary_at, next_boundary, Interval};
        let (last, next) = (boundary_at(refill.interval, t), next_boundary(refill.interval, t));
        prop_assert!(last <= t && t < next);
        for b in [last, next] {
            prop_assert_eq!((b.hour(), b.minute(), b.second(), b.nanosecond()), (0, 0, 0, 0));
            if refill.interval == Interval::Month {
                prop_assert_eq!(b.day(), 1);
            }
        }
        prop_assert_eq!(boundary_at(refill.interval, next), next);
        prop_assert_eq!(next_boundary(refill.interval, last), next);
        match refill.interval {
            Interval::Day => prop_assert_eq!(next - last, Duration::days(1)),
            Interval::Month => prop_assert!((28..=31).contains(&(next - last).num_days())),
        }
    }
}

proptest! {
    /// A group multiplier's charge is exactly ceil(cost × m / 10000), computed without
    /// floating point, stopping at 2^53 - 1.
    #[test]
    fn multiplied_costs_are_the_exact_ceiling(
        cost in prop_oneof![0u64..1_000_000, 0u64..=keyctl::core::limits::MAX_COUNT],
        m in 1u64..=keyctl::core::store_limits::MULTIPLIER_MAX,
    ) {
        use keyctl::core::store_limits::multiplied_cost;
        let charged = multiplied_cost(cost, m);
        let exact = u128::from(cost) * u128::from(m);
        let max = u128::from(keyctl::core::limits::MAX_COUNT);
        let c = u128::from(charged);
        if c < max {
            // The smallest whole number whose 10000-fold covers cost × m.
            prop_assert!(c * 10_000 >= exact);
            prop_assert!(c == 0 || (c - 1) * 10_000 < exact);
        } else {
            prop_assert!(exact > (max - 1) * 10_000);
        }
        // Never below the cost for a multiplier of 1 or more, never above it below 1.
        if m >= 10_000 { prop_assert!(charged >= cost.min(keyctl::core::limits::MAX_COUNT)); }
        if m <= 10_000 { prop_assert!(charged <= cost); }
    }

    /// Every multiplier keyctl stores reads back as itself.
    #[test]
    fn multipliers_round_trip_through_their_text(m in 1u64..=keyctl::core::store_limits::MULTIPLIER_MAX) {
        use keyctl::core::store_limits::{format_multiplier, parse_multiplier};
        prop_assert_eq!(parse_multiplier(&format_multiplier(m)), Ok(m));
    }
}
