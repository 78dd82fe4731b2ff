//! Colour-vision checks for overlay palettes: Machado, Oliveira and Fernandes (2009)
//! dichromacy simulation in linear sRGB, and the CIE 1976 colour difference (ΔE*ab) in
//! CIELAB (D65). With them a palette is tested as a colour-blind surgeon would see it.

/// A colour-vision deficiency, simulated at full severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deficiency {
    /// Red-green, missing M cones (the most common, about 6 % of men).
    Deuteranopia,
    /// Red-green, missing L cones.
    Protanopia,
    /// Blue-yellow, missing S cones (rare).
    Tritanopia,
}

impl Deficiency {
    /// Machado et al. 2009, severity 1.0, applied to linear RGB.
    fn matrix(self) -> [[f64; 3]; 3] {
        match self {
            Self::Deuteranopia => [
                [0.367322, 0.860646, -0.227968],
                [0.280085, 0.672501, 0.047413],
                [-0.011820, 0.042940, 0.968881],
            ],
            Self::Protanopia => [
                [0.152286, 1.052583, -0.204868],
                [0.114503, 0.786281, 0.099216],
                [-0.003882, -0.048116, 1.051998],
            ],
            Self::Tritanopia => [
                [1.255528, -0.076749, -0.178779],
                [-0.078411, 0.930809, 0.147602],
                [0.004733, 0.691367, 0.303900],
            ],
        }
    }
}

fn to_linear(c: u8) -> f64 {
    let c = f64::from(c) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn to_srgb(l: f64) -> f64 {
    let l = l.clamp(0.0, 1.0);
    let c = if l <= 0.003_130_8 {
        12.92 * l
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    };
    c * 255.0
}

/// An sRGB colour as a person with `d` sees it (sRGB, 0..255, not rounded).
pub fn simulate(rgb: [u8; 3], d: Deficiency) -> [f64; 3] {
    let lin = rgb.map(to_linear);
    let m = d.matrix();
    let row = |r: [f64; 3]| to_srgb(r[0] * lin[0] + r[1] * lin[1] + r[2] * lin[2]);
    [row(m[0]), row(m[1]), row(m[2])]
}

/// CIELAB (D65) of an sRGB colour given as 0..255 floats.
pub fn lab(rgb: [f64; 3]) -> [f64; 3] {
    let lin = rgb.map(|c| {
        let c = (c / 255.0).clamp(0.0, 1.0);
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    });
    let xyz = [
        (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047,
        0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2],
        (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883,
    ];
    let d: f64 = 6.0 / 29.0;
    let f = xyz.map(|t| {
        if t > d.powi(3) {
            t.cbrt()
        } else {
            t / (3.0 * d * d) + 4.0 / 29.0
        }
    });
    [
        116.0 * f[1] - 16.0,
        500.0 * (f[0] - f[1]),
        200.0 * (f[1] - f[2]),
    ]
}

/// ΔE*ab (CIE 1976) between two sRGB colours given as 0..255 floats.
pub fn delta_e76(a: [f64; 3], b: [f64; 3]) -> f64 {
    let (a, b) = (lab(a), lab(b));
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// The smallest ΔE*ab between any two of `colors`, as seen with `d` (none: normal vision).
pub fn min_delta_e(colors: &[[u8; 3]], d: Option<Deficiency>) -> f64 {
    let seen: Vec<[f64; 3]> = colors
        .iter()
        .map(|&c| d.map_or(c.map(f64::from), |d| simulate(c, d)))
        .collect();
    let mut min = f64::INFINITY;
    for (i, a) in seen.iter().enumerate() {
        for b in &seen[i + 1..] {
            min = min.min(delta_e76(*a, *b));
        }
    }
    min
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_s_measurement_is_reproduced() {
        // Issue 20 measured the old bone and ligament colours: 70.5 apart in normal
        // vision, 2.9 under deuteranopia. The same numbers here validate the simulation.
        let (bone, ligament) = ([0, 150, 255], [190, 70, 255]);
        let normal = min_delta_e(&[bone, ligament], None);
        let deutan = min_delta_e(&[bone, ligament], Some(Deficiency::Deuteranopia));
        assert!((normal - 70.5).abs() < 0.05, "{normal}");
        assert!((deutan - 2.9).abs() < 0.05, "{deutan}");
    }

    #[test]
    fn greys_stay_grey_and_white_is_lightness_100() {
        for d in [
            Deficiency::Deuteranopia,
            Deficiency::Protanopia,
            Deficiency::Tritanopia,
        ] {
            let g = simulate([128, 128, 128], d);
            assert!(g.iter().all(|c| (c - 128.0).abs() < 1.5), "{d:?} {g:?}");
        }
        let white = lab([255.0; 3]);
        assert!(
            (white[0] - 100.0).abs() < 0.01 && white[1].abs() < 0.05,
            "{white:?}"
        );
    }
}
