//! Writes the seed corpora: `make_seeds [CORPUS_DIR [VECTORS_DIR]]`, defaults `fuzz/corpus`
//! and `docs/vectors` (relative to the repository root). Seeds come from the real API and, when
//! the directory exists, from every `*.json` test-vector file in it. Files are overwritten, so
//! running it twice adds nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use zerotouch_fuzz::{Seed, TARGETS, api_seeds, vector_seeds};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let corpus = args
        .next()
        .map_or_else(|| PathBuf::from("fuzz/corpus"), PathBuf::from);
    let vectors = args
        .next()
        .map_or_else(|| PathBuf::from("docs/vectors"), PathBuf::from);

    let mut seeds: Vec<Seed> = api_seeds();
    match std::fs::read_dir(&vectors) {
        Ok(entries) => {
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for f in files {
                let label = f
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match std::fs::read_to_string(&f) {
                    Ok(text) => {
                        let found = vector_seeds(&label, &text);
                        eprintln!("make_seeds: {} seeds from {}", found.len(), f.display());
                        seeds.extend(found);
                    }
                    Err(e) => eprintln!("make_seeds: skipping {}: {e}", f.display()),
                }
            }
        }
        Err(_) => eprintln!(
            "make_seeds: no {} (vector seeds skipped)",
            vectors.display()
        ),
    }

    for target in TARGETS {
        let dir = corpus.join(target);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("make_seeds: cannot create {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
        let mine: Vec<&Seed> = seeds.iter().filter(|s| s.target == target).collect();
        for s in &mine {
            let path = dir.join(&s.name);
            if let Err(e) = std::fs::write(&path, &s.bytes) {
                eprintln!("make_seeds: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        eprintln!("make_seeds: {:>3} seeds in {}", mine.len(), dir.display());
    }
    ExitCode::SUCCESS
}
