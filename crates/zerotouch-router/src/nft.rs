//! Runs `nft`: a script in, one kernel transaction out.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::RouterError;

/// The `nft` program. Each [`Nft::apply`] is one `nft -f -`, which the kernel commits as one
/// transaction: all of the script or none of it.
#[derive(Debug, Clone)]
pub struct Nft {
    program: PathBuf,
}

impl Nft {
    /// `nft` from `PATH`, else `/usr/sbin/nft` or `/sbin/nft` (Debian keeps it outside a
    /// normal user's `PATH`).
    pub fn find() -> Result<Nft, RouterError> {
        let on_path = std::env::var_os("PATH")
            .map(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("nft"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        on_path
            .into_iter()
            .chain([PathBuf::from("/usr/sbin/nft"), PathBuf::from("/sbin/nft")])
            .find(|p| p.is_file())
            .map(|program| Nft { program })
            .ok_or(RouterError::NftMissing)
    }

    /// A given `nft` program.
    pub fn at(program: impl AsRef<Path>) -> Nft {
        Nft {
            program: program.as_ref().to_path_buf(),
        }
    }

    /// Applies `script` (`nft -f -`).
    pub fn apply(&self, script: &str) -> Result<(), RouterError> {
        self.run(&["-f", "-"], Some(script)).map(drop)
    }

    /// Checks `script` without applying it (`nft -c -f -`).
    pub fn check(&self, script: &str) -> Result<(), RouterError> {
        self.run(&["-c", "-f", "-"], Some(script)).map(drop)
    }

    /// Runs `nft` with `args` and returns what it printed (for `list`).
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, RouterError> {
        let spawn_error = |source| RouterError::Spawn {
            program: self.program.clone(),
            source,
        };
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let (Some(script), Some(mut input)) = (stdin, child.stdin.take()) {
            // A refused script makes nft exit early; its status says why, not this write.
            let _ = input.write_all(script.as_bytes());
        }
        let output = child.wait_with_output().map_err(spawn_error)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(RouterError::NftRefused {
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }
}
