//! Running keyctl as another user (`nobody`): root ignores file modes, so only
//! another user shows what a read-only file or folder does.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::env::fixed_environment;
use super::{require_tool, Outcome, Run, TestEnv};

/// The unprivileged user (`nobody`) that permission tests run keyctl as.
pub const NOBODY: u32 = 65534;

/// A copy of the keyctl binary that `nobody` can reach whatever folder the checkout
/// (and so target/) lives in: /tmp is traversable by everyone.
pub fn nobody_binary() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        // One copy per build (named by the binary's size and mtime), reused by later
        // runs, written under a temporary name and renamed so parallel tests agree.
        let original = fs::metadata(env!("CARGO_BIN_EXE_keyctl")).unwrap();
        let stamp = original
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join("keyctl-test-bin");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join(format!("keyctl-{}-{stamp}", original.len()));
        if !bin.exists() {
            // Copies of earlier builds go (a running copy keeps its unlinked file).
            for old in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let stale = old
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .is_some_and(|t| {
                        t.elapsed()
                            .is_ok_and(|age| age > std::time::Duration::from_secs(600))
                    });
                if stale {
                    let _ = fs::remove_file(old.path());
                }
            }
            let tmp = dir.join(format!(".keyctl-{}", std::process::id()));
            fs::copy(env!("CARGO_BIN_EXE_keyctl"), &tmp).unwrap();
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
            fs::rename(&tmp, &bin).unwrap();
        }
        bin
    })
}

impl TestEnv {
    /// A folder `name` under the temp root owned by `nobody` (mode 0700); the temp
    /// root becomes 0711 so that user can reach it.
    pub fn nobody_folder(&self, name: &str) -> PathBuf {
        fs::set_permissions(self.root(), fs::Permissions::from_mode(0o711)).unwrap();
        let dir = self.root().join(name);
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    /// `keyctl` run as `nobody` through util-linux `setpriv` (real and effective ids,
    /// no supplementary groups), on the store `db`, with `command()`'s fixed
    /// environment; with `umask`, through `sh -c 'umask U; exec keyctl ...'`. Its home
    /// and working folder are the store's folder.
    pub fn command_as_nobody(&self, db: &Path, umask: Option<&str>) -> Command {
        let folder = db.parent().expect("the store's folder").to_path_buf();
        let mut c = Command::new(require_tool("setpriv"));
        c.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups");
        if let Some(mask) = umask {
            c.arg(require_tool("sh"))
                .arg("-c")
                .arg(format!("umask {mask}; exec \"$0\" \"$@\""));
        }
        c.arg(nobody_binary());
        fixed_environment(&mut c, &folder, &folder.join("data"), db.as_os_str())
            .current_dir(&folder);
        c
    }

    /// Runs `keyctl ARGS` as `nobody` on the store `db` with `input` on stdin.
    pub fn run_as_nobody(&self, db: &Path, args: &[&str], input: &[u8]) -> Outcome {
        Run::new(self.command_as_nobody(db, None))
            .args(args)
            .stdin(input)
            .run()
    }
}
