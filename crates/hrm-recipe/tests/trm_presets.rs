//! The TRM presets pin the settings of the reference README commands (trm-spec 4; `config/arch/trm.yaml`,
//! `config/cfg_pretrain.yaml` of TinyRecursiveModels).

use hrm_recipe::{DtypeSetting, LossType, ModelKind, PosEncoding, Recipe, Task};

struct Pinned {
    name: &'static str,
    task: Task,
    mlp_t: bool,
    pos: PosEncoding,
    l_cycles: i64,
    epochs: usize,
    eval_interval: usize,
    lr: f64,
    puzzle_emb_lr: f64,
    weight_decay: f64,
    anchor: f64,
}

const PINNED: [Pinned; 5] = [
    Pinned {
        name: "trm-arc1",
        task: Task::Arc1,
        mlp_t: false,
        pos: PosEncoding::Rope,
        l_cycles: 4,
        epochs: 100_000,
        eval_interval: 10_000,
        lr: 1e-4,
        puzzle_emb_lr: 1e-2,
        weight_decay: 0.1,
        anchor: 0.446,
    },
    Pinned {
        name: "trm-arc2",
        task: Task::Arc2,
        mlp_t: false,
        pos: PosEncoding::Rope,
        l_cycles: 4,
        epochs: 100_000,
        eval_interval: 10_000,
        lr: 1e-4,
        puzzle_emb_lr: 1e-2,
        weight_decay: 0.1,
        anchor: 0.078,
    },
    Pinned {
        name: "trm-sudoku-mlp",
        task: Task::Sudoku,
        mlp_t: true,
        pos: PosEncoding::None,
        l_cycles: 6,
        epochs: 50_000,
        eval_interval: 5_000,
        lr: 1e-4,
        puzzle_emb_lr: 1e-4,
        weight_decay: 1.0,
        anchor: 0.874,
    },
    Pinned {
        name: "trm-sudoku-att",
        task: Task::Sudoku,
        mlp_t: false,
        pos: PosEncoding::Rope,
        l_cycles: 6,
        epochs: 50_000,
        eval_interval: 5_000,
        lr: 1e-4,
        puzzle_emb_lr: 1e-4,
        weight_decay: 1.0,
        anchor: 0.747,
    },
    Pinned {
        name: "trm-maze",
        task: Task::Maze,
        mlp_t: false,
        pos: PosEncoding::Rope,
        l_cycles: 4,
        epochs: 50_000,
        eval_interval: 5_000,
        lr: 1e-4,
        puzzle_emb_lr: 1e-4,
        weight_decay: 1.0,
        anchor: 0.853,
    },
];

#[test]
fn trm_presets_follow_the_reference_readme() {
    for p in PINNED {
        let r = Recipe::load(p.name, &[]).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        let (a, t, name) = (&r.arch, &r.train, p.name);
        assert_eq!(r.data.task, p.task, "{name}");
        assert_eq!(a.name, ModelKind::Trm, "{name}");
        assert_eq!(
            (a.hidden_size, a.num_heads, a.expansion),
            (512, 8, 4.0),
            "{name}"
        );
        assert_eq!(
            (a.l_layers, a.h_cycles, a.l_cycles),
            (2, 3, p.l_cycles),
            "{name}"
        );
        assert_eq!((a.puzzle_emb_ndim, a.puzzle_emb_len), (512, 16), "{name}");
        assert_eq!((a.mlp_t, a.pos_encodings), (p.mlp_t, p.pos), "{name}");
        assert!(a.no_act_continue, "{name}");
        assert_eq!(
            (a.halt_max_steps, a.halt_exploration_prob),
            (16, 0.1),
            "{name}"
        );
        assert_eq!(a.forward_dtype, DtypeSetting::Bfloat16, "{name}");
        assert_eq!(a.loss_type, LossType::StablemaxCrossEntropy, "{name}");
        assert_eq!(
            (t.epochs, t.eval_interval),
            (p.epochs, p.eval_interval),
            "{name}"
        );
        assert_eq!((t.lr, t.puzzle_emb_lr), (p.lr, p.puzzle_emb_lr), "{name}");
        assert_eq!(
            (t.weight_decay, t.puzzle_emb_weight_decay),
            (p.weight_decay, p.weight_decay),
            "{name}"
        );
        assert_eq!(t.global_batch_size, 768, "{name}");
        assert_eq!((t.beta1, t.beta2), (0.9, 0.95), "{name}");
        assert_eq!((t.lr_warmup_steps, t.lr_min_ratio), (2000, 1.0), "{name}");
        assert!(t.ema, "{name}");
        assert_eq!(t.ema_rate, 0.999, "{name}");
        assert!(!t.freeze_weights, "{name}");
        assert_eq!(t.max_steps, 0, "{name}");
        let anchor = r.anchor.as_ref().expect("a published figure");
        assert_eq!(anchor.value, p.anchor, "{name}");
    }
}

#[test]
fn hrm_presets_stay_hrm() {
    for name in ["arc1", "arc2", "sudoku-extreme-1k", "maze-30x30-hard-1k"] {
        let r = Recipe::load(name, &[]).unwrap();
        assert_eq!(r.arch.name, ModelKind::Hrm, "{name}");
        assert!(!r.train.ema, "{name}");
    }
}
