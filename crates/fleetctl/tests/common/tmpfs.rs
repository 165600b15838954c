//! A small, size-limited file system for the full-disk tests (needs root; CI runs as root).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the tests run as root (a tmpfs mount needs it).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A size-limited tmpfs, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `mount -t tmpfs -o size=SIZE tmpfs AT`.
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }

    /// Gives the tmpfs mounted at `at` a new size (space freed, or taken away).
    pub fn resize(at: &Path, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "remount tmpfs at {}", at.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
