//! Fuzzing the recipe parser ([`hrm_recipe::Recipe::from_toml_str`], with `--set` overrides) with arbitrary
//! bytes, mutated valid recipes, random overrides and the seed corpus in `tests/fuzz-corpus/recipe/`:
//! nothing may panic; a malformed recipe is an error. Bounded (256 cases per property) so the set runs in a
//! few seconds.

use hrm_recipe::Recipe;
use hrm_testkit::mutate::{apply, edit};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

const TINY: &str = include_str!("../../../recipes/tiny.toml");

fn parse(text: &str, sets: &[String]) -> Result<Recipe, String> {
    Recipe::from_toml_str("fuzz.toml", text, sets).map_err(|e| {
        let msg = e.to_string();
        assert!(
            msg.contains("fuzz.toml") || msg.contains("override"),
            "error names neither the recipe nor the override: {msg}"
        );
        msg
    })
}

fn corpus() -> Vec<PathBuf> {
    hrm_testkit::corpus_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus/recipe"),
    )
}

#[test]
fn seed_corpus_is_refused_without_panics() {
    let files = corpus();
    assert!(files.len() >= 20, "the corpus holds {} files", files.len());
    for path in files {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(
            parse(&text, &[]).is_err(),
            "{} was accepted",
            path.display()
        );
        // Through Recipe::load (a file path) too.
        let e = Recipe::load(&path.display().to_string(), &[]).unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}

#[test]
fn the_valid_recipe_parses() {
    parse(TINY, &[]).unwrap();
}

const FRAGMENTS: [&str; 18] = [
    "[",
    "]",
    "=",
    "\"",
    "'",
    "\n",
    "#",
    "{",
    "}",
    ",",
    "-",
    "nan",
    "inf",
    "1e999",
    "99999999999999999999",
    "[train]",
    "[[arch]]",
    "true",
];

const KEYS: [&str; 12] = [
    "train.lr",
    "train.epochs",
    "train.beta1",
    "train.global_batch_size",
    "arch.hidden_size",
    "arch.num_heads",
    "arch.pos_encodings",
    "data.task",
    "data.canvas",
    "eval.batch_size",
    "nosuch.key",
    "train",
];

fn override_spec() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        "[ -~]{0,12}",
        Just("99999999999999999999".to_string()),
        Just("[1, 2]".to_string()),
        Just("{a = 1}".to_string()),
    ];
    prop_oneof![
        (proptest::sample::select(KEYS.to_vec()), value).prop_map(|(k, v)| format!("{k}={v}")),
        "[ -~]{0,24}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&String::from_utf8_lossy(&bytes), &[]);
    }

    #[test]
    fn mutated_valid_recipes_never_panic(edits in proptest::collection::vec(edit(&FRAGMENTS), 1..6)) {
        let mut bytes = TINY.as_bytes().to_vec();
        for e in &edits {
            apply(&mut bytes, e);
        }
        let _ = parse(&String::from_utf8_lossy(&bytes), &[]);
    }

    #[test]
    fn random_overrides_never_panic(sets in proptest::collection::vec(override_spec(), 1..4)) {
        if let Ok(r) = parse(TINY, &sets) {
            // Whatever is accepted passes the recipe's own checks again after a round trip.
            parse(&r.to_toml(), &[]).unwrap();
        }
    }
}
