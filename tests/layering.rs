//! The layering rule of docs/ARCHITECTURE.md, checked on the source tree: the service layer (use cases,
//! repos, jobs, the access policy) and the domain do not import the HTTP layer. Only a feature's `routes.rs`
//! (its HTTP adapter) may use `crate::http`.

#![expect(
    clippy::expect_used,
    reason = "a test fails loudly on an unreadable source tree"
)]

use std::fs;
use std::path::{Path, PathBuf};

/// Trees below the HTTP layer.
const BELOW_HTTP: &[&str] = &["src/features", "src/domain", "src/jobs", "src/access"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `source` that name the HTTP layer (comments excluded).
fn http_imports(source: &str) -> Vec<(usize, String)> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| line.contains("crate::http"))
        .map(|(n, line)| (n + 1, line.trim().to_owned()))
        .collect()
}

#[test]
fn nothing_below_the_http_layer_imports_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for tree in BELOW_HTTP {
        rust_files(&root.join(tree), &mut files);
    }
    assert!(
        files.len() > 20,
        "the source tree was not found under {}",
        root.display()
    );
    let mut offences = Vec::new();
    for file in files {
        if file.file_name().is_some_and(|n| n == "routes.rs") {
            continue;
        }
        let source = fs::read_to_string(&file).expect("source file");
        for (line, text) in http_imports(&source) {
            offences.push(format!(
                "{}:{line}: {text}",
                file.strip_prefix(root).unwrap_or(&file).display()
            ));
        }
    }
    assert!(
        offences.is_empty(),
        "service, repo, job and domain code must not import `crate::http` (move the type below it):\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_check_sees_an_http_import() {
    assert_eq!(
        http_imports("use crate::http::preconditions::stale;\n// crate::http in a comment\n").len(),
        1
    );
}
