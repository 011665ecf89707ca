//! `fuzz-stable`: coverage-less mutation fuzzing of the same targets and properties as the
//! cargo-fuzz targets, on the stable toolchain (libFuzzer's sanitizer coverage needs nightly).
//! Inputs start from the fixture seeds and are mutated with stacked bit flips, byte inserts and
//! deletes, range duplication, splices between seeds (of any target), truncation, dictionary
//! tokens (SSE fields, JSON keys the translators read, extreme numbers, lone surrogates), line
//! edits, CRLF/CR line-end rewrites and UTF-8 insertions; every stream input is also relayed in
//! random reads, one byte at a time, and cut after each CR and inside each UTF-8 sequence.
//!
//! ```text
//! fuzz-stable run [--target NAME]... [--secs N] [--seed S] [--max-len N] [--out DIR]
//! fuzz-stable seed --out DIR                  # seed corpora for cargo fuzz (DIR/<target>/)
//! fuzz-stable repro --target NAME FILE...     # re-run saved inputs
//! fuzz-stable list
//! ```
//! `--secs` is the whole run's time, shared evenly by the targets. A failure (a panic or a broken
//! property) is minimised and written to `--out` (default `fuzz/failures`) with the command that
//! reproduces it; the exit status is 1 if anything failed.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokenrouter_fuzz_props::{self as props, Rng, TARGETS, hash, seeds};

mod mutate;
use mutate::Mutator;

/// The message and place of the last panic (the hook keeps it instead of printing it).
static PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs one input; `Err` with a description on a panic or a broken property.
fn check(target: &str, data: &[u8], split_seed: u64) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| props::run(target, data, split_seed))) {
        Ok(verdict) => verdict,
        Err(_) => {
            let message = PANIC.lock().ok().and_then(|mut p| p.take());
            Err(format!(
                "panicked: {}",
                message.unwrap_or_else(|| "(no message)".into())
            ))
        }
    }
}

/// What identifies a failure for de-duplication: its first line without numbers.
fn signature(failure: &str) -> String {
    failure
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .take(120)
        .collect()
}

/// Shrinks a failing input while it fails the same way (bounded in time).
fn minimize(target: &str, data: &[u8], split_seed: u64, sig: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut best = data.to_vec();
    let mut chunk = best.len().div_ceil(2).max(1);
    while chunk >= 1 && Instant::now() < deadline {
        let mut at = 0;
        let mut shrunk = false;
        while at < best.len() && Instant::now() < deadline {
            let mut candidate = best.clone();
            candidate.drain(at..(at + chunk).min(best.len()));
            match check(target, &candidate, split_seed) {
                Err(f) if signature(&f) == sig => {
                    best = candidate;
                    shrunk = true;
                }
                _ => at += chunk,
            }
        }
        if !shrunk {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }
    best
}

struct Options {
    targets: Vec<String>,
    secs: u64,
    seed: u64,
    max_len: usize,
    out: PathBuf,
    fixtures: PathBuf,
}

/// One target's run: iterations and distinct failures.
fn fuzz_target(target: &str, opts: &Options, budget: Duration, pool: &[Vec<u8>]) -> (u64, usize) {
    let seeds = match seeds::for_target(&opts.fixtures, target) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{target}: cannot load seeds: {e}");
            return (0, 1);
        }
    };
    let mut corpus: Vec<Vec<u8>> = seeds.iter().map(|s| s.data.clone()).collect();
    let seed_count = corpus.len();
    let mut mutator = Mutator {
        rng: Rng::new(opts.seed ^ hash(target.as_bytes())),
    };
    let mut failures: HashMap<String, PathBuf> = HashMap::new();
    let started = Instant::now();
    let mut iterations: u64 = 0;
    // Every seed once, unmutated, then mutants.
    for s in &seeds {
        iterations += 1;
        if let Err(f) = check(target, &s.data, hash(&s.data)) {
            report(
                target,
                &s.data,
                hash(&s.data),
                &f,
                opts,
                &mut failures,
                Some(&s.name),
            );
        }
    }
    while started.elapsed() < budget {
        iterations += 1;
        let mut input = corpus[mutator.rng.below(corpus.len())].clone();
        if input.len() > opts.max_len {
            let from = mutator.rng.below(input.len() - opts.max_len + 1);
            input = input[from..from + opts.max_len].to_vec();
        }
        mutator.mutate(&mut input, pool, opts.max_len);
        let split_seed = mutator.rng.next_u64();
        match check(target, &input, split_seed) {
            Ok(()) => {
                // Keep some mutants to mutate further (no coverage to tell which are new).
                if mutator.rng.below(16) == 0 {
                    if corpus.len() < seed_count + 512 {
                        corpus.push(input);
                    } else {
                        let i = seed_count + mutator.rng.below(512);
                        corpus[i] = input;
                    }
                }
            }
            Err(f) => report(target, &input, split_seed, &f, opts, &mut failures, None),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{target}: {iterations} iterations in {secs:.0} s ({:.0}/s), {} seeds, {} distinct failures",
        iterations as f64 / secs.max(1e-9),
        seed_count,
        failures.len()
    );
    (iterations, failures.len())
}

fn report(
    target: &str,
    data: &[u8],
    split_seed: u64,
    failure: &str,
    opts: &Options,
    seen: &mut HashMap<String, PathBuf>,
    seed_name: Option<&str>,
) {
    let sig = signature(failure);
    if seen.contains_key(&sig) {
        return;
    }
    let small = minimize(target, data, split_seed, &sig);
    let final_failure = check(target, &small, split_seed)
        .err()
        .unwrap_or_else(|| failure.to_string());
    let _ = std::fs::create_dir_all(&opts.out);
    let file = opts
        .out
        .join(format!("{target}-{:016x}-s{split_seed}.bin", hash(&small)));
    if let Err(e) = std::fs::write(&file, &small) {
        eprintln!("cannot write {}: {e}", file.display());
    }
    let from = seed_name
        .map(|n| format!(" (seed {n})"))
        .unwrap_or_default();
    println!(
        "FAILURE in {target}{from}: {}\n  input ({} bytes, minimised from {}): {:?}\n  reproduce: fuzz-stable repro --target {target} {}",
        final_failure.chars().take(2000).collect::<String>(),
        small.len(),
        data.len(),
        String::from_utf8_lossy(&small)
            .chars()
            .take(400)
            .collect::<String>(),
        file.display()
    );
    seen.insert(sig, file);
}

fn usage() -> ! {
    eprintln!(
        "usage: fuzz-stable run [--target NAME]... [--secs N] [--seed S] [--max-len N] [--out DIR] [--fixtures DIR]\n       \
         fuzz-stable seed --out DIR [--fixtures DIR]\n       \
         fuzz-stable repro --target NAME FILE...\n       \
         fuzz-stable list"
    );
    std::process::exit(2)
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        let text = match info.location() {
            Some(l) => format!("{info} [at {}:{}]", l.file(), l.line()),
            None => info.to_string(),
        };
        if let Ok(mut p) = PANIC.lock() {
            *p = Some(text);
        }
    }));
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "run".into());
    let mut opts = Options {
        targets: Vec::new(),
        secs: 60,
        seed: 0x5eed,
        max_len: 16 * 1024,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("../failures"),
        fixtures: seeds::fixtures_dir(),
    };
    let mut files = Vec::new();
    let mut out_given = false;
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--target" => opts.targets.push(value()),
            "--secs" => opts.secs = value().parse().unwrap_or_else(|_| usage()),
            "--seed" => opts.seed = value().parse().unwrap_or_else(|_| usage()),
            "--max-len" => opts.max_len = value().parse().unwrap_or_else(|_| usage()),
            "--out" => {
                opts.out = PathBuf::from(value());
                out_given = true;
            }
            "--fixtures" => opts.fixtures = PathBuf::from(value()),
            a if a.starts_with("--") => usage(),
            file => files.push(PathBuf::from(file)),
        }
    }
    for t in &opts.targets {
        if !TARGETS.contains(&t.as_str()) {
            eprintln!("no target named `{t}`; `fuzz-stable list` names them");
            std::process::exit(2);
        }
    }
    if opts.targets.is_empty() {
        opts.targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let failed = match command.as_str() {
        "list" => {
            TARGETS.iter().for_each(|t| println!("{t}"));
            false
        }
        "seed" => {
            if !out_given {
                usage();
            }
            write_seeds(&opts)
        }
        "repro" => repro(&opts, &files),
        "run" => run(&opts),
        _ => usage(),
    };
    std::process::exit(i32::from(failed));
}

fn run(opts: &Options) -> bool {
    let mut pool = Vec::new();
    for t in TARGETS {
        for s in seeds::for_target(&opts.fixtures, t).unwrap_or_default() {
            pool.push(s.data);
        }
    }
    let budget = Duration::from_secs(opts.secs) / opts.targets.len() as u32;
    println!(
        "fuzz-stable: {} target(s), {:?} each, seed {}, max input {} bytes",
        opts.targets.len(),
        budget,
        opts.seed,
        opts.max_len
    );
    let (mut total, mut failures) = (0, 0);
    for t in &opts.targets {
        let (n, f) = fuzz_target(t, opts, budget, &pool);
        total += n;
        failures += f;
    }
    println!("total: {total} iterations, {failures} distinct failures");
    failures > 0
}

fn write_seeds(opts: &Options) -> bool {
    let mut failed = false;
    for t in &opts.targets {
        match seeds::for_target(&opts.fixtures, t) {
            Ok(seeds) => {
                let dir = opts.out.join(t);
                if let Err(e) = std::fs::create_dir_all(&dir) {
                    eprintln!("{}: {e}", dir.display());
                    failed = true;
                    continue;
                }
                for s in &seeds {
                    let file = dir.join(format!("{:016x}", hash(&s.data)));
                    if let Err(e) = std::fs::write(&file, &s.data) {
                        eprintln!("{}: {e}", file.display());
                        failed = true;
                    }
                }
                println!("{t}: {} seeds in {}", seeds.len(), dir.display());
            }
            Err(e) => {
                eprintln!("{t}: {e}");
                failed = true;
            }
        }
    }
    failed
}

fn repro(opts: &Options, files: &[PathBuf]) -> bool {
    if opts.targets.len() != 1 || files.is_empty() {
        usage();
    }
    let target = &opts.targets[0];
    let mut failed = false;
    for file in files {
        let data = match std::fs::read(file) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                failed = true;
                continue;
            }
        };
        // `…-s<split seed>.bin` as written by `run`; otherwise the seed libFuzzer's targets use.
        let split_seed = file
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.rsplit_once("-s"))
            .and_then(|(_, s)| s.parse().ok())
            .unwrap_or_else(|| hash(&data));
        match check(target, &data, split_seed) {
            Ok(()) => println!("{}: ok", file.display()),
            Err(f) => {
                println!("{}: FAILED: {f}", file.display());
                failed = true;
            }
        }
    }
    failed
}
