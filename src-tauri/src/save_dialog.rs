//! The system's save dialog, shown by a child process (`fleetdash --save-dialog …`).
//!
//! Why not in the app's own process: GTK's file chooser opens every file of the folder it
//! shows to sniff its type. When that folder holds the cache, the `close()` drops every
//! POSIX lock the app's SQLite holds on it (locks belong to the process, not to the file
//! descriptor), and the next reader that closes the cache — `fleetctl stats`, the `sqlite3`
//! shell — believes it is the last one and deletes the write-ahead log under the running
//! engine: committed rows vanish and the engine's writes fail. A child process has its own
//! locks, so whatever it opens cannot touch ours.

use std::path::PathBuf;

/// The child's arguments: `--save-dialog NAME --save-filter LABEL --save-ext EXT`.
#[derive(Debug, Clone, clap::Args)]
pub struct SaveDialogArgs {
    /// Show only a save dialog with this suggested file name, print the chosen path on
    /// stdout and exit (0 chosen, 1 cancelled). Used by the app itself; not for users.
    #[arg(long, hide = true)]
    pub save_dialog: Option<String>,
    /// The dialog's filter label (e.g. `CSV`).
    #[arg(long, hide = true, default_value = "")]
    pub save_filter: String,
    /// The dialog's filter extension, without the dot (e.g. `csv`).
    #[arg(long, hide = true, default_value = "")]
    pub save_ext: String,
}

/// The dialog's window title (window tests find the dialog by it).
const TITLE: &str = "Export";

/// Runs the child's side: shows the dialog and exits the process.
pub fn run_child(name: &str, args: &SaveDialogArgs) -> ! {
    let mut d = rfd::FileDialog::new().set_title(TITLE).set_file_name(name);
    if !args.save_ext.is_empty() {
        d = d.add_filter(&args.save_filter, &[args.save_ext.as_str()]);
    }
    match d.save_file() {
        Some(p) => {
            println!("{}", p.display());
            std::process::exit(0)
        }
        None => std::process::exit(1),
    }
}

/// Asks the user where to save, through a child process running [`run_child`]; `None`
/// when they cancel (or the dialog cannot be shown, which is logged).
pub async fn pick(suggested: &str, filter: (&str, &str)) -> Option<PathBuf> {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "save dialog: cannot find the app's executable");
            return None;
        }
    };
    let out = tokio::process::Command::new(exe)
        .args(["--save-dialog", suggested])
        .args(["--save-filter", filter.0, "--save-ext", filter.1])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout);
            let p = s.trim_end_matches(['\n', '\r']);
            (!p.is_empty()).then(|| PathBuf::from(p))
        }
        Ok(_) => None,
        Err(e) => {
            tracing::error!(error = %e, "save dialog: cannot start it");
            None
        }
    }
}
