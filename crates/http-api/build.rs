//! Embeds the web console (`console/`: html, js, css; the vendored licences) in the binary: a table of every such file,
//! so a new module or vendored file needs no code change.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, base, out);
            continue;
        }
        let served = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("html" | "js" | "css" | "svg" | "txt" | "md")
        ) || path.file_name().and_then(|n| n.to_str()) == Some("LICENSE");
        if !served {
            continue;
        }
        if let Ok(rel) = path.strip_prefix(base) {
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path.clone()));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let console = manifest.join("console");
    println!("cargo:rerun-if-changed={}", console.display());
    let mut files = Vec::new();
    walk(&console, &console, &mut files);
    let mut code = String::from("/// `(path under console/, contents)` of every served file.\n");
    code.push_str("pub static ASSETS: &[(&str, &[u8])] = &[\n");
    for (name, path) in &files {
        // Directories too: cargo reruns when a file is added to a subdirectory.
        if let Some(parent) = path.parent() {
            println!("cargo:rerun-if-changed={}", parent.display());
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("console_assets.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
