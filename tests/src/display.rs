//! A private Xvfb per test: it picks a free display number itself (`-displayfd`), so
//! parallel tests never collide.

use crate::{E2eError, Guard};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A running X server, stopped on drop.
pub struct Xvfb {
    display: String,
    _child: Guard,
}

impl Xvfb {
    /// Starts `Xvfb -displayfd 1` at 1440×900 and waits for its display number.
    pub fn start() -> Result<Xvfb, E2eError> {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1440x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| E2eError::Spawn {
                what: "Xvfb (apt: xvfb)".into(),
                source,
            })?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| E2eError::Missing("Xvfb stdout".into()))?;
        let guard = Guard(child);
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|source| E2eError::Spawn {
                what: "Xvfb".into(),
                source,
            })?;
        let n = line.trim();
        if n.is_empty() {
            return Err(E2eError::Missing(
                "Xvfb exited without a display number".into(),
            ));
        }
        Ok(Xvfb {
            display: format!(":{n}"),
            _child: guard,
        })
    }

    /// `:N`, for `DISPLAY`.
    pub fn display(&self) -> &str {
        &self.display
    }
}
