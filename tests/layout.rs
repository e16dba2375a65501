//! The layout shows the architecture (STYLE.md): each top-level module or
//! folder of `src/` uses only those below it. This test reads the sources,
//! collects the `crate::` paths each part names outside comments and unit
//! tests, and fails on any import cycle between parts or any arrow that
//! points up the stack.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The part of `src/` a file belongs to: its folder, or its own name.
fn part_of(rel: &str) -> String {
    let first = rel.split('/').next().unwrap_or(rel);
    first.trim_end_matches(".rs").to_owned()
}

/// The `crate::name` prefixes named in `text`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        // `$crate::` in macros counts the same.
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn code_of(text: &str) -> String {
    // Unit tests may reach anywhere; they start at the first #[cfg(test)].
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn walk(dir: &Path, root: &Path, graph: &mut Graph) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(&path, root, graph);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "lib.rs" || rel.starts_with("bin/") {
            continue;
        }
        let part = part_of(&rel);
        let text = fs::read_to_string(&path).expect("read file");
        let uses = crate_paths(&code_of(&text));
        let edges = graph.entry(part.clone()).or_default();
        edges.extend(uses.into_iter().filter(|u| *u != part));
    }
}

fn graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g = Graph::new();
    walk(&root, &root, &mut g);
    // Only arrows between parts count (a re-export named at the crate root,
    // such as `crate::parse_tags`, is not a part).
    let parts: BTreeSet<String> = g.keys().cloned().collect();
    for edges in g.values_mut() {
        edges.retain(|e| parts.contains(e));
    }
    g
}

/// Parts that lie on a cycle (Tarjan's strongly connected components).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_import_cycle_between_parts() {
    let g = graph();
    assert!(g.contains_key("ops") && g.contains_key("store") && g.contains_key("crypto"));
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "import cycles between parts of src/: {found:?}\n{g:#?}"
    );
}

#[test]
fn lower_layers_do_not_call_up() {
    let g = graph();
    // (part, parts it must not use): the arrows of STYLE.md.
    let rules: &[(&str, &[&str])] = &[
        ("store", &["crypto", "ops", "kms", "wire", "cache"]),
        ("crypto", &["ops", "kms", "wire", "store", "cache"]),
        ("kms", &["ops", "wire"]),
        ("cache", &["kms", "ops", "wire"]),
        ("ops", &["wire"]),
        ("audit", &["kms", "ops", "wire"]),
        ("rng", &["kms", "ops", "wire", "crypto"]),
        ("faults", &["kms", "ops", "wire"]),
        ("error", &["store", "kms", "ops", "wire", "crypto"]),
        ("types", &["error", "store", "kms", "ops", "wire"]),
    ];
    let mut bad = Vec::new();
    for (part, banned) in rules {
        for b in *banned {
            if g.get(*part).is_some_and(|e| e.contains(*b)) {
                bad.push(format!("{part} -> {b}"));
            }
        }
    }
    assert!(bad.is_empty(), "arrows pointing up: {bad:?}");
}

#[test]
fn the_checker_sees_a_cycle() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("a".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycles(&g), vec![vec!["a".to_owned(), "b".to_owned()]]);
    assert_eq!(
        crate_paths("use crate::ops::x; $crate::kms::y"),
        ["kms".to_owned(), "ops".to_owned()].into()
    );
}
