//! Every path and link the documents name exists inside the repository.

use super::markdown::{anchors, code_spans, documents, link_targets, read, repo, split_fences};
use std::path::Path;

/// Whether `path` (relative, `*` allowed in its last part) names something
/// that exists below `base`.
fn exists_below(base: &Path, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    let (dir, last) = path.rsplit_once('/').unwrap_or(("", path));
    if !last.contains('*') {
        return base.join(path).exists();
    }
    let (before, after) = last.split_once('*').unwrap_or((last, ""));
    std::fs::read_dir(base.join(dir)).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(before) && name.ends_with(after)
        })
    })
}

/// A word that reads as a relative path: a `/` inside, only path
/// characters, not absolute and not a URL.
fn path_like(word: &str) -> Option<&str> {
    let w = word.trim().trim_end_matches(['.', ',', ':', ';', ')']);
    let chars_ok = w
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/*".contains(c));
    (w.contains('/') && chars_ok && !w.starts_with('/')).then_some(w)
}

/// What is wrong with the paths and links of one document (`dir` is its
/// directory; `root` the repository). Returns the problems and how many
/// references were checked.
fn check_document(root: &Path, dir: &Path, text: &str) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut checked = 0;
    let (prose, blocks) = split_fences(text);
    let mut words: Vec<&str> = prose.iter().flat_map(|l| code_spans(l)).collect();
    for b in blocks.iter().filter(|b| b.info == "sh" || b.info == "bash") {
        words.extend(b.body.split_whitespace());
    }
    for word in words {
        let Some(path) = path_like(word) else {
            continue;
        };
        if path.starts_with("../") {
            problems.push(format!("`{path}` leads out of the repository"));
            continue;
        }
        let first = path.split('/').next().unwrap_or(path);
        // Only words that start like a path of the repository are paths of
        // it (`text/plain`, `dbs/users` are not).
        if !(root.join(first).exists() || dir.join(first).exists()) {
            continue;
        }
        checked += 1;
        if !(exists_below(root, path) || exists_below(dir, path)) {
            problems.push(format!("`{path}` names nothing in the repository"));
        }
    }
    for target in prose.iter().flat_map(|l| link_targets(l)) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        checked += 1;
        if target.starts_with("../") || target.starts_with('/') {
            problems.push(format!("link {target} leads out of the repository"));
            continue;
        }
        let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
        let linked = if file.is_empty() {
            text.to_owned()
        } else if dir.join(file).exists() {
            if !file.ends_with(".md") {
                continue;
            }
            read(&dir.join(file))
        } else {
            problems.push(format!("link {target}: no such file"));
            continue;
        };
        if !anchor.is_empty() && !anchors(&linked).contains(anchor) {
            problems.push(format!("link {target}: no such heading"));
        }
    }
    (problems, checked)
}

#[test]
fn the_link_check_catches_what_leaves_or_misses() {
    let root = repo();
    let bad = "See `../shared/DESIGN.md`, `farm/src/nothing.rs`, [x](../outside.md),\n\
               [y](docs/NOWHERE.md) and [z](README.md#no-such-heading).\n";
    let (problems, _) = check_document(&root, &root, bad);
    assert_eq!(problems.len(), 5, "{problems:#?}");
    let good = "`farm/src/lib.rs`, `farm/src/worker/metrics/*.rs`, `text/plain`, \
                [p](docs/PROTOCOL.md#compatibility)\n";
    let (problems, checked) = check_document(&root, &root, good);
    assert_eq!((problems, checked), (Vec::<String>::new(), 3));
}

#[test]
fn documents_name_only_files_inside_the_repository() {
    let root = repo();
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let dir = doc.parent().expect("a document is in a directory");
        let (p, n) = check_document(&root, dir, &read(&doc));
        let shown = doc
            .strip_prefix(&root)
            .unwrap_or(&doc)
            .display()
            .to_string();
        problems.extend(p.into_iter().map(|p| format!("{shown}: {p}")));
        checked += n;
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(checked > 50, "only {checked} paths and links found");
    let readme = read(&root.join("README.md"));
    assert!(
        readme.starts_with(
            "```sh\nscripts/demo.sh    # a local farm offloading a million-key workload's compactions\n\
             scripts/test.sh    # the whole test suite\n```\n"
        ),
        "README.md must open with the two commands"
    );
}
