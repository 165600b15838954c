//! A private Xvfb per test: it picks a free display number itself (`-displayfd`), so
//! parallel tests never collide.

use crate::{E2eError, Guard, spawn_announcing};
use std::process::{Command, Stdio};

/// A running X server, stopped on drop.
pub struct Xvfb {
    display: String,
    _child: Guard,
}

impl Xvfb {
    /// Starts `Xvfb -displayfd 1` at 1440×900 and waits for its display number.
    pub fn start() -> Result<Xvfb, E2eError> {
        let (guard, n) = spawn_announcing(
            Command::new("Xvfb")
                .args([
                    "-displayfd",
                    "1",
                    "-screen",
                    "0",
                    "1440x900x24",
                    "-nolisten",
                    "tcp",
                ])
                .stderr(Stdio::null()),
            "Xvfb (apt: xvfb)",
        )?;
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
