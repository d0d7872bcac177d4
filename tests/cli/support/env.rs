//! The temporary world of one test and the `keyctl` command that runs in it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::{Snapshot, ACTOR, NOW};

/// A temporary world for one test: `root/` holds `home/`, `data/` (XDG_DATA_HOME)
/// and the store `keys.db` (KEYCTL_DB), which does not exist until a command makes it.
pub struct TestEnv {
    dir: TempDir,
    pub db: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("keyctl-test-")
            .tempdir()
            .expect("create a temp dir");
        fs::create_dir(dir.path().join("home")).unwrap();
        fs::create_dir(dir.path().join("data")).unwrap();
        let db = dir.path().join("keys.db");
        TestEnv { dir, db }
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
        fixed_environment(&mut c, &self.home(), &self.data_home(), &self.db)
            .current_dir(self.root());
        c
    }

    /// Every file and folder under the temp root with a digest of its bytes.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(self.root())
    }
}

/// The cleared environment every keyctl under test sees (see `TestEnv::command`).
pub(super) fn fixed_environment<'c>(
    c: &'c mut Command,
    home: &Path,
    data_home: &Path,
    db: &Path,
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
