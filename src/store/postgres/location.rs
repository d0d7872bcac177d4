//! A PostgreSQL store's location: the URL as given, what keyctl reads from it itself
//! (the schema, the TLS mode, a root certificate) and what it hands to the `postgres`
//! crate; shown with `***` for its password. Passwords come from the URL, then
//! `PGPASSWORD`, then `~/.pgpass` (`PGPASSFILE`), in libpq's order.

use std::fmt;
use std::path::{Path, PathBuf};

/// The schema a store lives in unless the URL says otherwise.
pub const DEFAULT_SCHEMA: &str = "keyctl";

/// How the connection is encrypted (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// Encrypted when the server offers it, unverified.
    Prefer,
    /// Encrypted, the server's certificate not checked (as libpq without a root file).
    Require,
    /// Encrypted, the certificate's chain checked against the roots.
    VerifyCa,
    /// Encrypted, chain and host name checked.
    VerifyFull,
}

/// A PostgreSQL store: see the module docs.
#[derive(Clone, PartialEq, Eq)]
pub struct PgLocation {
    /// `postgres://` or `postgresql://`.
    scheme: String,
    /// Percent-encoded user, if any.
    user: Option<String>,
    /// Percent-encoded password, if any: never shown.
    password: Option<String>,
    /// Host(s) and port(s), as written.
    hosts: String,
    /// The database path (`/db`), as written, possibly empty.
    path: String,
    /// Query parameters (raw key, raw value), as written.
    params: Vec<(String, String)>,
    /// The schema holding keyctl's tables (`options=-csearch_path=...`, `--schema`).
    pub schema: String,
    pub ssl: SslMode,
    /// `sslrootcert`: a PEM file of roots for verify-ca/verify-full (else Mozilla's).
    pub root_cert: Option<PathBuf>,
}

/// True for text that names a PostgreSQL store rather than an SQLite file.
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `search_path` a libpq `options` value sets (`-csearch_path=x`,
/// `-c search_path=x`): its first schema.
fn search_path_in(options: &str) -> Option<String> {
    let at = options.find("search_path=")?;
    let rest = &options[at + "search_path=".len()..];
    let first = rest
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()
        .unwrap_or_default()
        .trim_matches('"');
    (!first.is_empty()).then(|| first.to_string())
}

impl PgLocation {
    /// Parses a `postgres://` URL; the error is one line without the password.
    pub fn parse(text: &str) -> Result<PgLocation, String> {
        let (scheme, rest) = text
            .split_once("://")
            .filter(|(s, _)| *s == "postgres" || *s == "postgresql")
            .ok_or_else(|| {
                "a PostgreSQL URL starts with postgres:// or postgresql://".to_string()
            })?;
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, q),
            None => (rest, ""),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => before_query.split_at(i),
            None => (before_query, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
                None => (Some(info.to_string()), None),
            },
            None => (None, None),
        };
        let mut location = PgLocation {
            scheme: scheme.to_string(),
            user: user.filter(|u| !u.is_empty()),
            password,
            hosts: hosts.to_string(),
            path: path.to_string(),
            params: Vec::new(),
            schema: DEFAULT_SCHEMA.to_string(),
            ssl: SslMode::Prefer,
            root_cert: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = decode(value);
            match decode(key).as_str() {
                "sslmode" => {
                    location.ssl = match decoded.as_str() {
                        "disable" => SslMode::Disable,
                        "allow" | "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        other => {
                            return Err(format!(
                                "sslmode '{other}' is not one of disable, prefer, require, verify-ca, verify-full"
                            ))
                        }
                    }
                }
                "sslrootcert" => location.root_cert = Some(PathBuf::from(decoded)),
                "options" => {
                    if let Some(schema) = search_path_in(&decoded) {
                        location.schema = schema;
                    }
                }
                _ => {}
            }
            location.params.push((key.to_string(), value.to_string()));
        }
        // What the client crate will refuse (a bad port, an unknown parameter), said
        // now: its words name the option, never its value.
        location
            .config_url()
            .parse::<postgres::Config>()
            .map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
        Ok(location)
    }

    /// True when the URL itself carries a password.
    pub fn password_in_url(&self) -> bool {
        self.password.is_some() || self.params.iter().any(|(k, _)| decode(k) == "password")
    }

    /// The URL for `postgres::Config`: the parameters keyctl handles itself (TLS,
    /// which it configures) left out.
    pub(super) fn config_url(&self) -> String {
        self.render(false, true)
    }

    fn render(&self, masked: bool, for_config: bool) -> String {
        let mut out = format!("{}://", self.scheme);
        if let Some(user) = &self.user {
            out.push_str(user);
        }
        if self.password.is_some() {
            out.push(':');
            match (&self.password, masked) {
                (Some(p), false) => out.push_str(p),
                _ => out.push_str("***"),
            }
        }
        if self.user.is_some() || self.password.is_some() {
            out.push('@');
        }
        out.push_str(&self.hosts);
        out.push_str(&self.path);
        let params: Vec<String> = self
            .params
            .iter()
            .filter(|(k, _)| {
                !(for_config && matches!(decode(k).as_str(), "sslmode" | "sslrootcert"))
            })
            .map(|(k, v)| match decode(k).as_str() {
                "password" if masked => format!("{k}=***"),
                _ => format!("{k}={v}"),
            })
            .collect();
        if !params.is_empty() {
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }

    /// The database name as libpq matches it in `.pgpass` (the user's name when the
    /// URL names none).
    fn dbname(&self, user: &str) -> String {
        let from_param = self
            .params
            .iter()
            .find(|(k, _)| decode(k) == "dbname")
            .map(|(_, v)| decode(v));
        let from_path = decode(self.path.trim_start_matches('/'));
        from_param
            .or_else(|| (!from_path.is_empty()).then_some(from_path))
            .unwrap_or_else(|| user.to_string())
    }

    /// The user as libpq would send it: the URL's, `user=`, `PGUSER`, or the OS user.
    pub(super) fn user_name(&self) -> String {
        self.params
            .iter()
            .find(|(k, _)| decode(k) == "user")
            .map(|(_, v)| decode(v))
            .or_else(|| self.user.as_deref().map(decode))
            .or_else(|| std::env::var("PGUSER").ok())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_default()
    }

    /// The first host as `.pgpass` matches it (a socket folder's path, or `localhost`
    /// when none is given) and its port.
    fn host_and_port(&self) -> (String, String) {
        let param = |name: &str| {
            self.params
                .iter()
                .find(|(k, _)| decode(k) == name)
                .map(|(_, v)| decode(v))
        };
        let first = self.hosts.split(',').next().unwrap_or_default();
        let (host, port) = match first.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || first.starts_with('[') => (h, p),
            _ => (first, ""),
        };
        let host = param("host")
            .or_else(|| (!host.is_empty()).then(|| decode(host)))
            .unwrap_or_else(|| "localhost".to_string());
        let port = param("port")
            .or_else(|| (!port.is_empty()).then(|| port.to_string()))
            .unwrap_or_else(|| "5432".to_string());
        (host, port)
    }

    /// The password to send when the URL has none: `PGPASSWORD`, else the first
    /// matching `.pgpass` line.
    pub(super) fn password_from_environment(&self) -> Option<String> {
        if let Ok(p) = std::env::var("PGPASSWORD") {
            return Some(p);
        }
        let file = std::env::var_os("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
        if !private_file(&file) {
            return None;
        }
        let text = std::fs::read_to_string(&file).ok()?;
        let user = self.user_name();
        let (host, port) = self.host_and_port();
        pgpass_lookup(&text, &host, &port, &self.dbname(&user), &user)
    }
}

/// True for a file only its owner may read (libpq ignores a `.pgpass` group or
/// others can read or write).
fn private_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o077 == 0)
}

/// The password of the first `host:port:database:user:password` line matching, each
/// of the first four fields literal or `*`; `\:` and `\\` escape.
pub(super) fn pgpass_lookup(
    text: &str,
    host: &str,
    port: &str,
    db: &str,
    user: &str,
) -> Option<String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .find_map(|line| {
            let fields = split_pgpass(line);
            let [h, p, d, u, password] = <[String; 5]>::try_from(fields).ok()?;
            let matches = |field: &str, value: &str| field == "*" || field == value;
            (matches(&h, host) && matches(&p, port) && matches(&d, db) && matches(&u, user))
                .then_some(password)
        })
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let literal = match c {
            '\\' => chars.next(),
            // The password is the rest of the line, colons and all (as libpq).
            ':' if fields.len() < 5 => {
                fields.push(String::new());
                None
            }
            c => Some(c),
        };
        if let (Some(c), Some(field)) = (literal, fields.last_mut()) {
            field.push(c);
        }
    }
    fields
}

/// The URL with its password as `***`.
impl fmt::Display for PgLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(true, false))
    }
}

/// As `Display`: a password never reaches a debug print either.
impl fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgLocation({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_keeps_host_port_db_user_and_params_and_masks_the_password() {
        let pg = PgLocation::parse(
            "postgres://ops:s3cr%3At@db.example.com:6432/keys?sslmode=require&application_name=k",
        )
        .unwrap();
        assert_eq!(
            pg.to_string(),
            "postgres://ops:***@db.example.com:6432/keys?sslmode=require&application_name=k"
        );
        assert!(pg.password_in_url());
        assert!(!format!("{pg:?}").contains("s3cr"));
        assert_eq!(pg.ssl, SslMode::Require);
        assert_eq!(pg.schema, "keyctl");
        assert_eq!(
            pg.config_url(),
            "postgres://ops:s3cr%3At@db.example.com:6432/keys?application_name=k"
        );

        let param = PgLocation::parse("postgresql://db/keys?password=hunter2&user=ops").unwrap();
        assert!(param.password_in_url());
        assert_eq!(
            param.to_string(),
            "postgresql://db/keys?password=***&user=ops"
        );

        let plain = PgLocation::parse("postgres://ops@db/keys").unwrap();
        assert!(!plain.password_in_url());
        assert_eq!(plain.to_string(), "postgres://ops@db/keys");
        assert_eq!(plain.ssl, SslMode::Prefer);
    }

    #[test]
    fn the_schema_comes_from_search_path_in_options() {
        for (url, schema) in [
            (
                "postgres://h/db?options=-csearch_path%3Dtenant_a",
                "tenant_a",
            ),
            (
                "postgres://h/db?options=-c%20search_path%3Dt2%2Cpublic",
                "t2",
            ),
            ("postgres://h/db?options=-cstatement_timeout%3D5s", "keyctl"),
        ] {
            assert_eq!(PgLocation::parse(url).unwrap().schema, schema, "{url}");
        }
    }

    #[test]
    fn verify_modes_and_the_root_file_stay_out_of_the_crate_config() {
        let pg =
            PgLocation::parse("postgres://h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem")
                .unwrap();
        assert_eq!(pg.ssl, SslMode::VerifyFull);
        assert_eq!(pg.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(pg.config_url(), "postgres://h/db");
        assert_eq!(
            PgLocation::parse("postgres://h/db?sslmode=verify-ca")
                .unwrap()
                .ssl,
            SslMode::VerifyCa
        );
        let bad = PgLocation::parse("postgres://u:pw@h/db?sslmode=maybe").unwrap_err();
        assert!(bad.contains("sslmode 'maybe'"), "{bad}");
        assert!(!bad.contains("pw"));
        for url in [
            "postgres://u:secret@h:notaport/db",
            "postgres://u:secret@h/db?frobnicate=1",
        ] {
            let bad = PgLocation::parse(url).unwrap_err();
            assert!(bad.starts_with("not a valid PostgreSQL URL: "), "{bad}");
            assert!(!bad.contains("secret"), "{bad}");
        }
    }

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    other:5432:*:ops:nope\n\
                    db.example.com:5432:keys:ops:first\n\
                    *:*:*:ops:fallback\n";
        assert_eq!(
            pgpass_lookup(text, "db.example.com", "5432", "keys", "ops").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_lookup(text, "elsewhere", "6432", "x", "ops").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup(text, "h", "1", "d", "root"), None);
        let escaped = "/run/pg\\:x:5432:*:ops:pa\\:ss:word\n";
        assert_eq!(
            pgpass_lookup(escaped, "/run/pg:x", "5432", "db", "ops").as_deref(),
            Some("pa:ss:word")
        );
    }

    #[test]
    fn a_pgpass_file_others_can_read_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "*:*:*:*:x\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!private_file(&file));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(private_file(&file));
    }

    #[test]
    fn pgpass_matching_uses_the_socket_folder_port_and_default_db() {
        let pg = PgLocation::parse("postgres://ops@%2Ftmp%2Fpg:5433").unwrap();
        assert_eq!(
            pg.host_and_port(),
            ("/tmp/pg".to_string(), "5433".to_string())
        );
        assert_eq!(pg.dbname("ops"), "ops");
        let by_param = PgLocation::parse("postgres:///keys?host=/tmp/s&port=7").unwrap();
        assert_eq!(
            by_param.host_and_port(),
            ("/tmp/s".to_string(), "7".to_string())
        );
        assert_eq!(by_param.dbname("x"), "keys");
        assert_eq!(
            PgLocation::parse("postgres://h").unwrap().host_and_port(),
            ("h".to_string(), "5432".to_string())
        );
    }
}
