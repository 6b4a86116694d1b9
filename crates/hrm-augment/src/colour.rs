//! Colour permutations of ARC grids: 0 (background) fixed, 1..=9 permuted (spec 1.4, 2).
//! Follows the reference's `dataset/build_arc_dataset.py`.

use hrm_grid::{codec, Grid};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::AugmentError;

/// A permutation of the colours 0..=9 that fixes 0; `map[c]` is the new colour of `c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ColourMap([u8; 10]);

impl ColourMap {
    /// The identity map.
    pub fn identity() -> ColourMap {
        ColourMap([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    /// A uniformly random map: 0 fixed, 1..=9 a uniform random permutation.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> ColourMap {
        let mut map = ColourMap::identity().0;
        map[1..].shuffle(rng);
        ColourMap(map)
    }

    /// Builds a map from an array; it must be a permutation of 0..=9 with `map[0] == 0`.
    pub fn from_array(map: [u8; 10]) -> Result<ColourMap, AugmentError> {
        let text: String = map.iter().map(|d| d.to_string()).collect();
        check_permutation(&map, &text)?;
        Ok(ColourMap(map))
    }

    /// Parses the 10-digit suffix of a variant name, e.g. "0825139674" (digit c is the
    /// new colour of c).
    pub fn from_digits(s: &str) -> Result<ColourMap, AugmentError> {
        let bad = |reason: &str| AugmentError::BadColourMap {
            text: s.to_string(),
            reason: reason.to_string(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 10 {
            return Err(bad("expected exactly 10 digits"));
        }
        let mut map = [0u8; 10];
        for (m, &b) in map.iter_mut().zip(bytes) {
            if !b.is_ascii_digit() {
                return Err(bad("expected only the digits 0..9"));
            }
            *m = b - b'0';
        }
        check_permutation(&map, s)?;
        Ok(ColourMap(map))
    }

    /// The 10-digit form used in variant names.
    pub fn to_digits(&self) -> String {
        self.0.iter().map(|&d| char::from(b'0' + d)).collect()
    }

    /// The map as an array: entry c is the new colour of c.
    pub fn as_array(&self) -> &[u8; 10] {
        &self.0
    }

    /// The inverse map (the argsort of the array).
    pub fn inverse(&self) -> ColourMap {
        let mut inv = [0u8; 10];
        for (c, &m) in self.0.iter().enumerate() {
            inv[usize::from(m)] = c as u8;
        }
        ColourMap(inv)
    }

    /// The map equal to applying `self`, then `then`.
    pub fn then(&self, then: &ColourMap) -> ColourMap {
        ColourMap(self.0.map(|c| then.0[usize::from(c)]))
    }

    /// The new colour of `c`; values above 9 are returned unchanged.
    pub fn apply_colour(&self, c: u8) -> u8 {
        self.0.get(usize::from(c)).copied().unwrap_or(c)
    }

    /// Maps an ARC token (spec 1.2): colour tokens 2..=11 are recoloured, PAD and EOS
    /// (and anything above 11) are kept.
    pub fn apply_token(&self, t: u8) -> u8 {
        match codec::token_colour(t) {
            Some(c) => codec::colour_token(self.0[usize::from(c)]),
            None => t,
        }
    }

    /// Recolours every cell of a grid.
    pub fn apply_grid(&self, grid: &Grid) -> Grid {
        let cells = grid
            .cells()
            .iter()
            .map(|&c| self.0[usize::from(c)])
            .collect();
        Grid::new(grid.rows(), grid.cols(), cells).expect("a colour map keeps a grid valid")
    }

    /// Recolours a slice of colours in place; values above 9 are kept.
    pub fn apply_in_place(&self, cells: &mut [u8]) {
        let lut = self.lookup_table();
        for c in cells {
            *c = lut[usize::from(*c)];
        }
    }

    /// A 256-entry table: the map on 0..=9, the identity above (indexing it by a `u8`
    /// needs no bounds check).
    fn lookup_table(&self) -> [u8; 256] {
        let mut lut: [u8; 256] = std::array::from_fn(|i| i as u8);
        lut[..10].copy_from_slice(&self.0);
        lut
    }
}

impl Default for ColourMap {
    fn default() -> ColourMap {
        ColourMap::identity()
    }
}

fn check_permutation(map: &[u8; 10], text: &str) -> Result<(), AugmentError> {
    let bad = |reason: String| AugmentError::BadColourMap {
        text: text.to_string(),
        reason,
    };
    if map[0] != 0 {
        return Err(bad(format!("colour 0 maps to {}, it must stay 0", map[0])));
    }
    let mut seen = [false; 10];
    for &m in map {
        let slot = seen
            .get_mut(usize::from(m))
            .ok_or_else(|| bad(format!("colour {m} is outside 0..=9")))?;
        if *slot {
            return Err(bad(format!("colour {m} appears twice")));
        }
        *slot = true;
    }
    Ok(())
}
