//! ARC variants (dihedral x colour map) and their names `<orig>_t<t>_<10 digits>` (spec 1.4).
//! Follows the reference's `dataset/build_arc_dataset.py`.

use hrm_grid::Grid;
use rand::Rng;

use crate::colour::ColourMap;
use crate::dihedral;

/// One augmentation of an ARC task: grids become `dihedral_t(colours[grid])`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArcVariant {
    /// The dihedral id 0..=7.
    pub dihedral: u8,
    /// The colour map.
    pub colours: ColourMap,
}

impl ArcVariant {
    /// The identity variant (t = 0, identity colours).
    pub fn identity() -> ArcVariant {
        ArcVariant {
            dihedral: 0,
            colours: ColourMap::identity(),
        }
    }

    /// Draws a variant as the builder does: t uniform in 0..=7, then a random colour map.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> ArcVariant {
        let dihedral = rng.random_range(0..dihedral::NUM_MAPS);
        let colours = ColourMap::random(rng);
        ArcVariant { dihedral, colours }
    }

    /// True for the identity variant.
    pub fn is_identity(&self) -> bool {
        *self == ArcVariant::identity()
    }

    /// The variant name `<orig>_t<t>_<m0..m9>`, e.g. `abc123_t3_0825139674`.
    pub fn name(&self, orig: &str) -> String {
        format!("{orig}_t{}_{}", self.dihedral, self.colours.to_digits())
    }

    /// Splits a puzzle name into the original name and its variant.
    ///
    /// A name ending in `_t<t>_<10 digits>` gives `Some((orig, Some(variant)))`, or
    /// `None` when t is not 0..=7 or the digits are not a colour map fixing 0. Any other
    /// name is an original: `Some((name, None))`.
    ///
    /// TRM's builder names variants `<orig>|||t<t>|||<10 digits>`; such names parse the same way.
    pub fn parse_name(name: &str) -> Option<(String, Option<ArcVariant>)> {
        let original = || Some((name.to_string(), None));
        if let Some(parsed) = Self::parse_trm_name(name) {
            return parsed;
        }
        let Some((head, digits)) = name.rsplit_once('_') else {
            return original();
        };
        let Some((orig, t)) = head.rsplit_once("_t") else {
            return original();
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits.len() != 10 || !all_digits(digits) || !all_digits(t) {
            return original();
        }
        let dihedral: u8 = t.parse().ok().filter(|&t| t < dihedral::NUM_MAPS)?;
        let colours = ColourMap::from_digits(digits).ok()?;
        Some((orig.to_string(), Some(ArcVariant { dihedral, colours })))
    }

    /// A TRM variant name `<orig>|||t<t>|||<10 digits>` (TRM's `inverse_aug`): `None` when `name` has no `|||`,
    /// else what [`ArcVariant::parse_name`] returns for it.
    fn parse_trm_name(name: &str) -> Option<Option<(String, Option<ArcVariant>)>> {
        let mut parts = name.rsplitn(3, "|||");
        let (digits, t, orig) = (parts.next()?, parts.next()?, parts.next()?);
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let t = t
            .strip_prefix('t')
            .filter(|t| all_digits(t) && digits.len() == 10 && all_digits(digits));
        let Some(t) = t else {
            return Some(Some((name.to_string(), None)));
        };
        let parsed = (|| {
            let dihedral: u8 = t.parse().ok().filter(|&t| t < dihedral::NUM_MAPS)?;
            let colours = ColourMap::from_digits(digits).ok()?;
            Some((orig.to_string(), Some(ArcVariant { dihedral, colours })))
        })();
        Some(parsed)
    }

    /// Applies the variant: the colour map, then the dihedral map.
    pub fn apply_grid(&self, grid: &Grid) -> Grid {
        dihedral::transform_grid(&self.colours.apply_grid(grid), self.dihedral)
    }

    /// Undoes the variant: the inverse dihedral map, then the inverse colour map.
    pub fn undo_grid(&self, grid: &Grid) -> Grid {
        self.colours
            .inverse()
            .apply_grid(&dihedral::inverse_transform_grid(grid, self.dihedral))
    }
}

impl Default for ArcVariant {
    fn default() -> ArcVariant {
        ArcVariant::identity()
    }
}
