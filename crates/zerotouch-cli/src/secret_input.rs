//! Secrets come from a file or from standard input (`-`), never from the command line: an
//! argument is visible to every user in the process list and lands in shell history.

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::CliError;

/// Reads a secret from `source`: a file path, or `-` for standard input. One trailing line
/// break is removed (files written by `echo` end with one).
pub fn read_secret(source: &Path) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let mut bytes = Zeroizing::new(Vec::new());
    if source == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(CliError::Stdin)?;
    } else {
        let mut file = std::fs::File::open(source).map_err(CliError::file(source))?;
        file.read_to_end(&mut bytes)
            .map_err(CliError::file(source))?;
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(CliError::EmptySecret(source.display().to_string()));
    }
    Ok(bytes)
}

/// [`read_secret`] as UTF-8 text.
pub fn read_secret_text(source: &Path) -> Result<Zeroizing<String>, CliError> {
    let bytes = read_secret(source)?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(CliError::BadArgument(format!(
            "{}: the secret is not UTF-8 text",
            source.display()
        ))),
    }
}

/// The error for creating `path` when it failed with `e`: an existing file is named as such.
pub fn create_error(path: &Path, e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::AlreadyExists {
        CliError::Exists(path.to_path_buf())
    } else {
        CliError::File {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Creates `path` with `mode` (never replacing a file) and writes `contents` durably.
fn write_new_file(path: &Path, mode: u32, contents: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| create_error(path, e))?;
    file.write_all(contents).map_err(CliError::file(path))?;
    file.sync_all().map_err(CliError::file(path))
}

/// Writes `contents` to a new file readable only by its owner (mode 0600); an existing file
/// is never overwritten.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    write_new_file(path, 0o600, contents)
}

/// Writes a public file (certificates, bundles, labels), replacing nothing.
pub fn write_public_file(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    write_new_file(path, 0o644, contents)
}

/// Reads a whole text file.
pub fn read_text(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(CliError::file(path))
}
