//! Recipe errors name the right field, and the line and column of a TOML syntax error.

use hrm_recipe::Recipe;

const TINY: &str = include_str!("../../../recipes/tiny.toml");

fn err_of_text(text: &str) -> String {
    Recipe::from_toml_str("r.toml", text, &[])
        .unwrap_err()
        .to_string()
}

fn err_of_set(set: &str) -> String {
    Recipe::from_toml_str("r.toml", TINY, &[set.to_string()])
        .unwrap_err()
        .to_string()
}

/// The 1-based line of `needle` in the tiny recipe.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.starts_with(needle)).unwrap() + 1
}

#[test]
fn a_syntax_error_gives_its_line_and_column() {
    let text = TINY.replace("lr = 1e-3", "lr = 1e-3 oops");
    let e = err_of_text(&text);
    let line = line_of(&text, "lr = 1e-3 oops");
    assert!(e.contains(&format!("line {line}")), "{e}");
    assert!(e.contains("column 11"), "{e}");
    assert!(e.contains("r.toml"), "{e}");
}

#[test]
fn a_type_error_in_the_file_names_the_key_and_line() {
    let text = TINY.replace("lr = 1e-3", "lr = \"fast\"");
    let e = err_of_text(&text);
    assert!(e.contains("lr"), "{e}");
    assert!(
        e.contains(&format!("line {}", line_of(&text, "lr = \"fast\""))),
        "{e}"
    );
    let text = TINY.replace("epochs = 20", "epochs = 99999999999999999999");
    let e = err_of_text(&text);
    assert!(
        e.contains(&format!("line {}", line_of(&text, "epochs = 9"))),
        "{e}"
    );
}

#[test]
fn zero_sizes_blame_their_own_field() {
    let e = err_of_set("train.epochs=0");
    assert!(e.contains("`train.epochs`"), "{e}");
    let e = err_of_set("arch.hidden_size=0");
    assert!(e.contains("`arch.hidden_size`"), "{e}");
    let e = err_of_set("arch.num_heads=0");
    assert!(e.contains("`arch.num_heads`"), "{e}");
    let e = err_of_set("arch.num_heads=3");
    assert!(e.contains("`arch.num_heads`"), "{e}");
}

#[test]
fn bad_override_values_name_the_key() {
    let e = err_of_set("train.lr=abc");
    assert!(e.contains("train.lr") && e.contains("abc"), "{e}");
    assert!(e.contains("float"), "{e}");
    let e = err_of_set("train.epochs=99999999999999999999");
    assert!(e.contains("train.epochs"), "{e}");
    assert!(e.contains("i64") || e.contains("too large"), "{e}");
    let e = err_of_set("train.epochs=-3");
    assert!(e.contains("train.epochs"), "{e}");
    let e = err_of_set("arch.pos_encodings=sideways");
    assert!(e.contains("pos_encodings"), "{e}");
}

#[test]
fn out_of_range_optimizer_settings_are_refused() {
    for (set, key) in [
        ("train.beta1=5", "train.beta1"),
        ("train.beta1=-0.1", "train.beta1"),
        ("train.beta2=1.0", "train.beta2"),
        ("train.beta2=-0.5", "train.beta2"),
        ("train.weight_decay=-1", "train.weight_decay"),
        ("train.lr=-1e-4", "train.lr"),
        ("train.lr=nan", "train.lr"),
        ("train.puzzle_emb_lr=-1", "train.puzzle_emb_lr"),
        (
            "train.puzzle_emb_weight_decay=-0.1",
            "train.puzzle_emb_weight_decay",
        ),
        ("train.ema_rate=1.5", "train.ema_rate"),
        ("arch.halt_exploration_prob=2", "arch.halt_exploration_prob"),
        ("arch.rms_norm_eps=0", "arch.rms_norm_eps"),
    ] {
        let e = err_of_set(set);
        assert!(e.contains(&format!("`{key}`")), "{set}: {e}");
    }
    // The edges that are legal stay legal.
    for set in [
        "train.beta1=0",
        "train.weight_decay=0",
        "train.lr=0",
        "train.beta2=0.999",
    ] {
        Recipe::from_toml_str("r.toml", TINY, &[set.to_string()])
            .unwrap_or_else(|e| panic!("{set}: {e}"));
    }
}

#[test]
fn a_negative_or_nan_time_limit_is_refused_not_read_as_no_limit() {
    for set in [
        "train.max_minutes=-1",
        "train.max_minutes=nan",
        "train.max_minutes=inf",
    ] {
        let e = err_of_set(set);
        assert!(e.contains("`train.max_minutes`"), "{set}: {e}");
        assert!(e.contains("finite number >= 0"), "{set}: {e}");
    }
    Recipe::from_toml_str("r.toml", TINY, &["train.max_minutes=0".to_string()]).unwrap();
}
