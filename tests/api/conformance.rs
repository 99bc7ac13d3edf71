//! `docs/conformance.md` cannot rot: every test its matrix names exists, in the
//! integration suite (`tests/api/...`) or as a unit test (`src/...`).

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The files a test path like `login::token::tests::x` or
/// `replay_and_concurrency::of_32_...` may live in.
fn candidates(modules: &[&str]) -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut out = Vec::new();
    for base in ["tests/api", "src"] {
        // Drop a trailing `tests` module: unit tests live in their module's file.
        let modules: Vec<&str> = modules.iter().copied().filter(|m| *m != "tests").collect();
        for cut in (1..=modules.len()).rev() {
            let dir: PathBuf = modules[..cut].iter().collect();
            out.push(root.join(base).join(&dir).with_extension("rs"));
            out.push(root.join(base).join(&dir).join("mod.rs"));
        }
    }
    out
}

fn exists(test: &str) -> bool {
    let parts: Vec<&str> = test.split("::").collect();
    let Some((name, modules)) = parts.split_last() else {
        return false;
    };
    let needle = format!("fn {name}(");
    candidates(modules)
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .any(|text| text.contains(&needle))
}

#[test]
fn every_test_the_conformance_matrix_names_exists() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("docs/conformance.md"))
        .expect("docs/conformance.md");
    let mut named = 0;
    let mut missing = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| Requirement | Text | Status | How | Test |`: the test cell is the last.
        let Some(cell) = cells.iter().rev().find(|c| !c.is_empty()) else {
            continue;
        };
        for name in cell.split('`').skip(1).step_by(2) {
            if !name.contains("::") {
                continue;
            }
            named += 1;
            if !exists(name) {
                missing.push(name.to_owned());
            }
        }
    }
    assert!(named >= 20, "the matrix names only {named} tests");
    assert!(
        missing.is_empty(),
        "tests named in docs/conformance.md that do not exist: {missing:#?}"
    );
}
