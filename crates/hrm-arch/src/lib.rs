//! hrm-arch: the architecture settings of HRM (`arch/hrm_v1.yaml`) and TRM (`arch/trm.yaml`) as types.
//!
//! Recipes (TOML), model configs (JSON, the reference field values) and the command line spell these settings as
//! strings; they are parsed once, here, into enums that both `hrm-recipe` and `hrm-model` use. The crate is
//! tensor-free: the libtorch kind of a [`ForwardDtype`] is mapped in `hrm-model`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The libtorch (PyTorch) version the workspace builds and is tested against: `cargo xtask setup` installs this
/// `torch` wheel, `hrm info` and `env.json` report it.
pub const LIBTORCH_VERSION: &str = "2.11.0";

/// A setting string that names no variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {setting} `{value}` (expected one of: {expected})")]
pub struct UnknownSetting {
    /// Which setting (e.g. `pos_encodings`).
    pub setting: &'static str,
    /// The value given.
    pub value: String,
    /// The accepted spellings.
    pub expected: &'static str,
}

macro_rules! setting_enum {
    (
        $(#[$meta:meta])* $name:ident, $setting:literal, {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling used in recipes, configs and on the command line.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownSetting;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownSetting {
                        setting: $setting,
                        value: other.to_string(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }
    };
}

setting_enum! {
    /// Which recursive reasoner a recipe or checkpoint describes.
    ModelKind, "model kind", {
        /// The Hierarchical Reasoning Model: H and L modules, one-step gradient (hrm-spec 3-5).
        Hrm => "hrm",
        /// The Tiny Recursive Model: one network, full backpropagation through the last cycle (trm-spec 2).
        Trm => "trm",
    }
}

setting_enum! {
    /// How token positions are encoded (hrm-spec 3.2, 3.4; trm-spec 1).
    PosEncoding, "pos_encodings", {
        /// Rotary embeddings on q and k (rotate-half convention).
        Rope => "rope",
        /// A learned position table added to the input embedding.
        Learned => "learned",
        /// No position encoding (TRM's "anything else"; its Sudoku MLP recipe).
        None => "none",
    }
}

setting_enum! {
    /// The activation dtype of the forward pass; master weights stay float32.
    ForwardDtype, "forward_dtype", {
        /// float32.
        Float32 => "float32",
        /// bfloat16 (the papers' setting).
        Bfloat16 => "bfloat16",
    }
}

setting_enum! {
    /// The forward dtype a recipe asks for: a dtype, or `auto` (bfloat16 on CUDA, float32 on the CPU).
    DtypeSetting, "forward_dtype", {
        /// bfloat16 on CUDA, float32 on the CPU; resolved once, by [`DtypeSetting::resolve`].
        Auto => "auto",
        /// float32 everywhere.
        Float32 => "float32",
        /// bfloat16 everywhere.
        Bfloat16 => "bfloat16",
    }
}

impl DtypeSetting {
    /// The dtype on a device: `auto` is bfloat16 on CUDA and float32 elsewhere.
    pub fn resolve(self, on_cuda: bool) -> ForwardDtype {
        match self {
            DtypeSetting::Auto if on_cuda => ForwardDtype::Bfloat16,
            DtypeSetting::Auto | DtypeSetting::Float32 => ForwardDtype::Float32,
            DtypeSetting::Bfloat16 => ForwardDtype::Bfloat16,
        }
    }
}

setting_enum! {
    /// The token-level loss of the LM head (hrm-spec 6.1).
    LossType, "loss_type", {
        /// Stablemax cross-entropy in float64 (the default of both references).
        StablemaxCrossEntropy => "stablemax_cross_entropy",
        /// Ordinary softmax cross-entropy in float32.
        SoftmaxCrossEntropy => "softmax_cross_entropy",
    }
}

#[allow(clippy::derivable_impls)]
impl Default for ModelKind {
    fn default() -> Self {
        ModelKind::Hrm
    }
}

#[allow(clippy::derivable_impls)]
impl Default for LossType {
    fn default() -> Self {
        LossType::StablemaxCrossEntropy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_round_trips_through_str_and_serde() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + Serialize,
            T: for<'de> Deserialize<'de>,
            <T as FromStr>::Err: fmt::Debug,
        {
            for &v in all {
                let s = v.to_string();
                assert_eq!(s.parse::<T>().unwrap(), v);
                let json = serde_json::to_string(&v).unwrap();
                assert_eq!(json, format!("\"{s}\""));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
            }
        }
        check(ModelKind::ALL);
        check(PosEncoding::ALL);
        check(ForwardDtype::ALL);
        check(DtypeSetting::ALL);
        check(LossType::ALL);
    }

    #[test]
    fn unknown_values_name_the_setting_and_the_choices() {
        let err = "rotary".parse::<PosEncoding>().unwrap_err().to_string();
        assert!(
            err.contains("pos_encodings") && err.contains("rope"),
            "{err}"
        );
        let err = "fp16".parse::<DtypeSetting>().unwrap_err().to_string();
        assert!(
            err.contains("forward_dtype") && err.contains("auto"),
            "{err}"
        );
    }

    #[test]
    fn auto_dtype_is_bf16_only_on_cuda() {
        assert_eq!(DtypeSetting::Auto.resolve(true), ForwardDtype::Bfloat16);
        assert_eq!(DtypeSetting::Auto.resolve(false), ForwardDtype::Float32);
        assert_eq!(
            DtypeSetting::Bfloat16.resolve(false),
            ForwardDtype::Bfloat16
        );
        assert_eq!(DtypeSetting::Float32.resolve(true), ForwardDtype::Float32);
    }
}
