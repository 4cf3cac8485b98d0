//! Runs each fuzz target on stable Rust: first every file of its corpus,
//! then a bounded number of inputs mutated from the corpus by a seeded
//! random generator, so a failure can be replayed exactly.
//!
//! `FUZZ_ITERATIONS` sets the number of mutated inputs per target (default
//! 20000) and `FUZZ_SEED` the generator seed (default 1).

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// Bytes that steer mutations towards the shapes the parsers look for.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b".",
    b"=",
    b"&",
    b" ",
    b"null",
    b"true",
    b"-1",
    b"1e999",
    b"9223372036854775808",
    b"\\u0000",
    b"\\ud800",
    b"Bearer ",
    b"eyJ",
    b"\xff",
];

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}")),
        Err(_) => default,
    }
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", folder.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} is empty", folder.display());
    inputs
}

/// Applies one to four random edits to a copy of `seed`.
fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut input = seed.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let position = rng.gen_range(0..=input.len());
        match rng.gen_range(0..5) {
            0 => input.insert(position, rng.gen()),
            1 if position < input.len() => {
                input.remove(position);
            }
            2 if position < input.len() => input[position] ^= 1 << rng.gen_range(0..8),
            3 => {
                let token = TOKENS[rng.gen_range(0..TOKENS.len())];
                input.splice(position..position, token.iter().copied());
            }
            _ => {
                let end = rng.gen_range(position..=input.len());
                input.truncate(end);
            }
        }
    }
    input
}

fn run(target: &str, check: fn(&[u8])) {
    let seeds = corpus(target);
    for (path, bytes) in &seeds {
        println!("{target}: {}", path.display());
        check(bytes);
    }

    let iterations = env_number("FUZZ_ITERATIONS", 20_000);
    let seed = env_number("FUZZ_SEED", 1);
    let mut rng = StdRng::seed_from_u64(seed);
    for iteration in 0..iterations {
        let (_, base) = &seeds[rng.gen_range(0..seeds.len())];
        let input = mutate(&mut rng, base);
        // The message carries the input, so it can be saved as a corpus file.
        let result = std::panic::catch_unwind(|| check(&input));
        assert!(
            result.is_ok(),
            "{target} panicked at iteration {iteration} with FUZZ_SEED={seed} on input {input:?}"
        );
    }
}

#[test]
fn token_parse_never_panics() {
    run("token_parse", confab_fuzz::token_parse);
}

#[test]
fn request_decode_never_panics() {
    run("request_decode", confab_fuzz::request_decode);
}
