//! Files: tree snapshots, modes, and the unusual ones (full filesystems, devices).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::require_tool;

/// A file tree's contents, compared to prove a command changed nothing.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<String, String>);

impl Snapshot {
    pub fn of(root: &Path) -> Snapshot {
        let mut map = BTreeMap::new();
        walk(root, root, &mut map);
        Snapshot(map)
    }

    pub fn paths(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// One more thing to compare, under `name`: a table of a database and its rows.
    pub fn add(&mut self, name: String, digest: String) {
        self.0.insert(name, digest);
    }
}

fn walk(root: &Path, dir: &Path, map: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let meta = fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            map.insert(rel, format!("dir {mode:o}"));
            walk(root, &path, map);
        } else {
            let bytes = fs::read(&path).unwrap();
            map.insert(
                rel,
                format!("{mode:o} {} bytes fnv {:016x}", bytes.len(), fnv64(&bytes)),
            );
        }
    }
}

fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Permission bits of a file or folder.
pub fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `path` with `suffix` appended (`keys.db` → `keys.db-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// True when `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A tmpfs of `size` (like "512k") mounted on a new folder `dir`, unmounted (lazily)
/// when dropped. Mounting needs root (CAP_SYS_ADMIN): where it is not permitted, the
/// test fails and says so; it is never skipped.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new(require_tool("mount"))
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs on {} for the full-disk test ({}): it needs root or \
             CAP_SYS_ADMIN in this sandbox; mount said: {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// Writes a file `name` of zeros until the filesystem is full; returns its path.
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join(name);
        let mut file = fs::File::create(&path).unwrap();
        let block = [0u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        // A last partial page, byte by byte.
        while let Ok(1) = file.write(&[0u8]) {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Ok(umount) = std::panic::catch_unwind(|| require_tool("umount")) {
            let _ = Command::new(umount)
                .arg("-l")
                .arg(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A device node `name` in `dir` that behaves like `/dev/full` (character device 1,7:
/// every write fails with ENOSPC), made here rather than relying on the host's /dev.
/// Making it needs root (CAP_MKNOD): where that is not permitted, the test fails and
/// says so; it is never skipped.
pub fn full_device(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let path = dir.join(name);
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in path");
    // SAFETY: mknod with a NUL-terminated path that lives across the call.
    let rc = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 7)) };
    assert_eq!(
        rc,
        0,
        "cannot make a /dev/full-like device at {} for the full-disk test ({}): it needs \
         root or CAP_MKNOD in this sandbox",
        path.display(),
        std::io::Error::last_os_error()
    );
    path
}
