//! The temporary world of one test and the `keyctl` command that runs in it.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::{fresh_database, on_postgres, PgDatabase, Snapshot, ACTOR, NOW};

/// A temporary world for one test: `root/` holds `home/`, `data/` (XDG_DATA_HOME)
/// and the store (KEYCTL_DB), which does not exist until a command makes it: the
/// file `keys.db` on SQLite, a fresh database of its own on PostgreSQL
/// (`KEYCTL_TEST_BACKEND`, see `store`).
pub struct TestEnv {
    dir: TempDir,
    /// The file `keys.db` in the root: the store on SQLite.
    file: PathBuf,
    /// This world's database when the suite runs on PostgreSQL.
    database: Option<PgDatabase>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("keyctl-test-")
            .tempdir()
            .expect("create a temp dir");
        fs::create_dir(dir.path().join("home")).unwrap();
        fs::create_dir(dir.path().join("data")).unwrap();
        let file = dir.path().join("keys.db");
        let database = on_postgres().then(fresh_database);
        TestEnv {
            dir,
            file,
            database,
        }
    }

    /// The store as `KEYCTL_DB` names it: the file's path, or the database's URL.
    pub fn location(&self) -> OsString {
        match &self.database {
            Some(database) => database.url.clone().into(),
            None => self.file.clone().into_os_string(),
        }
    }

    /// This world's database on PostgreSQL; None on SQLite.
    pub fn database(&self) -> Option<&PgDatabase> {
        self.database.as_ref()
    }

    /// The SQLite file that is the store, for a test about the file itself (its
    /// bytes, mode, WAL, a copy of it). Such a test is SQLite-only (`sqlite_only!`):
    /// on PostgreSQL there is no such file, and this panics so that nothing passes by
    /// looking at a file that was never the store.
    pub fn db_file(&self) -> &Path {
        assert!(
            self.database.is_none(),
            "this test reads the store's SQLite file, which the PostgreSQL run has not: \
             mark it sqlite_only! with the reason"
        );
        &self.file
    }

    /// A fresh environment whose store has been made with `keyctl init`.
    pub fn initialized() -> TestEnv {
        let env = TestEnv::new();
        env.run(&["init"]).ok();
        env
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    pub fn data_home(&self) -> PathBuf {
        self.root().join("data")
    }

    /// `keyctl` with a cleared environment: fixed HOME, XDG_DATA_HOME, store, clock,
    /// actor and time zone; stdin is empty (never a terminal).
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_keyctl"));
        fixed_environment(&mut c, &self.home(), &self.data_home(), &self.location())
            .current_dir(self.root());
        c
    }

    /// Every file and folder under the temp root with a digest of its bytes, and on
    /// PostgreSQL every table of the database with a digest of its rows.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::of(self.root());
        if let Some(database) = &self.database {
            for (table, digest) in database.table_digests() {
                snapshot.add(table, digest);
            }
        }
        snapshot
    }
}

/// The cleared environment every keyctl under test sees (see `TestEnv::command`).
pub(super) fn fixed_environment<'c>(
    c: &'c mut Command,
    home: &Path,
    data_home: &Path,
    db: &OsStr,
) -> &'c mut Command {
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("XDG_DATA_HOME", data_home)
        .env("KEYCTL_DB", db)
        .env("KEYCTL_NOW", NOW)
        .env("KEYCTL_ACTOR", ACTOR)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
}
