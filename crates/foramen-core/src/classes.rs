//! Segmentation classes: index, name and display colour, from a model or a data set.

use serde::{Deserialize, Serialize};

/// One segmentation class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassInfo {
    /// Class index as stored in masks.
    pub index: u8,
    /// Human-readable name, e.g. `bone`.
    pub name: String,
    /// Display colour, RGB.
    pub color: [u8; 3],
}

/// Errors in a class list.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClassesError {
    /// Indices must run 0, 1, 2, ... in order so that masks index the list directly.
    #[error(
        "class {name:?} has index {found}, expected {expected} (indices must run 0, 1, 2, ... in order)"
    )]
    IndexOrder {
        /// The offending class name.
        name: String,
        /// Index it declares.
        found: u8,
        /// Index its position requires.
        expected: u8,
    },
    /// Two classes share a name.
    #[error("class name {0:?} appears twice")]
    DuplicateName(String),
    /// An empty list or more classes than a `u8` mask holds.
    #[error("a class list needs 1 to 255 classes, found {0}")]
    Count(usize),
    /// The ignore index collides with a class index.
    #[error("ignore index {0} is also a class index")]
    IgnoreCollides(u8),
}

/// An ordered class list plus the mask value meaning "not labelled".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassSet {
    /// Classes in index order.
    pub classes: Vec<ClassInfo>,
    /// Mask value that is ignored in training and evaluation.
    #[serde(default = "default_ignore")]
    pub ignore_index: u8,
}

/// The mask value ignored in training and evaluation unless a file says otherwise.
pub const DEFAULT_IGNORE_INDEX: u8 = 255;

/// Serde default of `ignore_index` fields.
pub fn default_ignore() -> u8 {
    DEFAULT_IGNORE_INDEX
}

/// Distinct overlay colours, chosen to stand out on warm pink/cream tissue.
const PALETTE: [[u8; 3]; 8] = [
    [0, 0, 0],
    [0, 150, 255],
    [190, 70, 255],
    [0, 225, 120],
    [255, 220, 0],
    [255, 60, 60],
    [0, 240, 240],
    [255, 130, 0],
];

/// The operating-room colours of the study's lumbar classes: bone blue, ligament
/// (flavum) yellow, disc cyan. Any two stay at least 40 ΔE*ab apart in normal vision
/// and under deuteranopia, protanopia and tritanopia (tested with `color_vision`), none
/// is the beige of tissue, and red, amber and green stay free for status.
pub const LUMBAR_DISPLAY_COLORS: [(&str, [u8; 3]); 3] = [
    ("bone", [30, 60, 255]),
    ("ligament", [230, 230, 0]),
    ("disc", [0, 190, 220]),
];

impl ClassSet {
    /// Builds and validates a class set.
    pub fn new(classes: Vec<ClassInfo>, ignore_index: u8) -> Result<Self, ClassesError> {
        let set = Self {
            classes,
            ignore_index,
        };
        set.validate()?;
        Ok(set)
    }

    /// The lumbar classes of the study: background, bone, ligament (flavum), disc.
    pub fn lumbar() -> Self {
        Self::from_names(&["background", "bone", "ligament", "disc"]).with_display_colors()
    }

    /// The same classes with [`LUMBAR_DISPLAY_COLORS`] for the classes they name: a
    /// model's own colours are for plots; the theatre gets the colour-blind-safe ones.
    pub fn with_display_colors(mut self) -> Self {
        for c in &mut self.classes {
            if let Some((_, rgb)) = LUMBAR_DISPLAY_COLORS.iter().find(|(n, _)| *n == c.name) {
                c.color = *rgb;
            }
        }
        self
    }

    /// A short tag per class drawn on its regions, so that a class is told by more than
    /// its colour: the first letter of its name in capitals, or more letters where two
    /// classes share one.
    pub fn tags(&self) -> Vec<String> {
        let upper: Vec<Vec<char>> = self
            .classes
            .iter()
            .map(|c| c.name.to_uppercase().chars().collect())
            .collect();
        let tag = |name: &[char], n: usize| name.iter().take(n).collect::<String>();
        upper
            .iter()
            .map(|name| {
                (1..=name.len().max(1))
                    .map(|n| tag(name, n))
                    // The background is never drawn: it takes no letter from the others.
                    .find(|t| {
                        let n = t.chars().count();
                        upper[1..].iter().filter(|o| tag(o, n) == *t).count() <= 1
                    })
                    .unwrap_or_else(|| tag(name, name.len()))
            })
            .collect()
    }

    /// Classes named in order, coloured from the default palette (colours repeat
    /// after eight classes, shifted so neighbours still differ).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Self {
        let classes = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let base = PALETTE[i % PALETTE.len()];
                let shift = (i / PALETTE.len()) as u8 * 37;
                ClassInfo {
                    index: i as u8,
                    name: n.as_ref().to_string(),
                    color: base.map(|c| c.wrapping_add(shift)),
                }
            })
            .collect();
        Self {
            classes,
            ignore_index: 255,
        }
    }

    /// Checks index order, unique names, count and the ignore index.
    pub fn validate(&self) -> Result<(), ClassesError> {
        if self.classes.is_empty() || self.classes.len() > 255 {
            return Err(ClassesError::Count(self.classes.len()));
        }
        for (i, c) in self.classes.iter().enumerate() {
            if c.index as usize != i {
                return Err(ClassesError::IndexOrder {
                    name: c.name.clone(),
                    found: c.index,
                    expected: i as u8,
                });
            }
            if self.classes[..i].iter().any(|o| o.name == c.name) {
                return Err(ClassesError::DuplicateName(c.name.clone()));
            }
        }
        if (self.ignore_index as usize) < self.classes.len() {
            return Err(ClassesError::IgnoreCollides(self.ignore_index));
        }
        Ok(())
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// True for an empty set (never true after [`ClassSet::validate`]).
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Class names in index order.
    pub fn names(&self) -> Vec<&str> {
        self.classes.iter().map(|c| c.name.as_str()).collect()
    }

    /// Index of the class called `name`.
    pub fn index_of(&self, name: &str) -> Option<u8> {
        self.classes
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.index)
    }

    /// A 256-entry RGB lookup table: class colours, black for anything else.
    pub fn color_lut(&self) -> [[u8; 3]; 256] {
        let mut lut = [[0u8; 3]; 256];
        for c in &self.classes {
            lut[c.index as usize] = c.color;
        }
        lut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lumbar_is_valid_and_ordered() {
        let set = ClassSet::lumbar();
        set.validate().expect("valid");
        assert_eq!(set.names(), ["background", "bone", "ligament", "disc"]);
        assert_eq!(set.index_of("disc"), Some(3));
        assert_eq!(set.color_lut()[1], set.classes[1].color);
        assert_eq!(set.color_lut()[200], [0, 0, 0]);
    }

    #[test]
    fn the_display_palette_survives_colour_blindness_and_leaves_status_colours_free() {
        use crate::color_vision::{Deficiency, delta_e76, min_delta_e};
        let colors: Vec<[u8; 3]> = ClassSet::lumbar().classes[1..]
            .iter()
            .map(|c| c.color)
            .collect();
        assert_eq!(colors.len(), 3);
        for d in [
            None,
            Some(Deficiency::Deuteranopia),
            Some(Deficiency::Protanopia),
            Some(Deficiency::Tritanopia),
        ] {
            let min = min_delta_e(&colors, d);
            assert!(min >= 40.0, "{d:?}: two classes only {min:.1} apart");
        }
        // Alarm red, warning amber and good green (the window's status colours).
        for status in [[230, 60, 50], [240, 170, 30], [80, 200, 120]] {
            for c in &colors {
                let de = delta_e76(c.map(f64::from), status.map(f64::from));
                assert!(de >= 35.0, "{c:?} is {de:.1} from status {status:?}");
            }
        }
    }

    #[test]
    fn tags_are_letters_made_unique() {
        assert_eq!(ClassSet::lumbar().tags(), ["B", "B", "L", "D"]);
        let set = ClassSet::from_names(&["void", "vocal folds", "other tissue", "glottal space"]);
        assert_eq!(set.tags(), ["V", "V", "O", "G"]);
    }

    #[test]
    fn rejects_bad_lists() {
        let mut set = ClassSet::lumbar();
        set.classes[2].index = 5;
        assert!(matches!(
            set.validate(),
            Err(ClassesError::IndexOrder {
                found: 5,
                expected: 2,
                ..
            })
        ));

        let mut set = ClassSet::lumbar();
        set.classes[3].name = "bone".into();
        assert_eq!(
            set.validate(),
            Err(ClassesError::DuplicateName("bone".into()))
        );

        let mut set = ClassSet::lumbar();
        set.ignore_index = 2;
        assert_eq!(set.validate(), Err(ClassesError::IgnoreCollides(2)));

        assert_eq!(ClassSet::new(vec![], 255), Err(ClassesError::Count(0)));
    }

    #[test]
    fn many_classes_keep_distinct_neighbour_colours() {
        let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        let set = ClassSet::from_names(&names);
        for w in set.classes.windows(2) {
            assert_ne!(w[0].color, w[1].color);
        }
    }
}
