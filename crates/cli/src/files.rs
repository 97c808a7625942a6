//! Finding spec files: explicit files as given, directories searched recursively.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// Extensions of spec documents.
pub const SPEC_EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Whether a file found in a directory is a spec document (by extension, any case).
pub fn is_spec_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SPEC_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// One document to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecFile {
    /// The path as shown to the user (relative when it was given relative).
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

impl SpecFile {
    /// The label used in diagnostics.
    pub fn label(&self) -> String {
        self.path.display().to_string()
    }
}

/// Every spec file under `paths`: files as given (whatever their extension), directories
/// searched recursively (hidden entries skipped), sorted per directory, duplicates removed.
///
/// # Errors
/// A path that does not exist or cannot be read, or no file at all.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    if out.is_empty() {
        let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "no spec files (.yaml, .yml, .json) found in {}",
            list.join(", ")
        );
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let meta =
            std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else if is_spec_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads every file.
///
/// # Errors
/// A file that cannot be read or is not UTF-8.
pub fn read_all(paths: &[PathBuf]) -> anyhow::Result<Vec<SpecFile>> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok(SpecFile {
                path: path.clone(),
                text,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spec_files_are_yaml_yml_or_json() {
        assert!(is_spec_file(Path::new("a/b.yaml")));
        assert!(is_spec_file(Path::new("b.YML")));
        assert!(is_spec_file(Path::new("b.json")));
        assert!(!is_spec_file(Path::new("README.md")));
        assert!(!is_spec_file(Path::new("yaml")));
    }

    #[test]
    fn directories_are_searched_recursively_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/.hidden")).unwrap();
        for f in [
            "b.yaml",
            "a.yml",
            "notes.txt",
            "sub/c.json",
            "sub/.hidden/d.yaml",
        ] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        let found = collect(&[root.to_path_buf()]).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.yml", "b.yaml", "sub/c.json"]);
    }

    #[test]
    fn an_empty_directory_or_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(collect(&[dir.path().to_path_buf()]).is_err());
        assert!(collect(&[dir.path().join("nope.yaml")]).is_err());
    }
}
