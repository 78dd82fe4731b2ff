//! Appearance statistics of an endoscopic frame, as measured on published lumbar
//! frames in `shared/docs/endoscopic-appearance.md` (OpenCV HSV conventions).

/// Statistics over the pixels inside the scope's circle.
#[derive(Clone, Debug, PartialEq)]
pub struct Appearance {
    /// Mean R, G, B (0..255).
    pub mean_rgb: [f64; 3],
    /// Fraction of pixels with R > B + 20.
    pub red_over_blue: f64,
    /// Fraction of pixels with hue in 0-50 or 320-360 degrees.
    pub warm_hue: f64,
    /// Mean HSV saturation (0..1).
    pub mean_saturation: f64,
    /// Mean HSV value (0..1).
    pub mean_value: f64,
    /// Fraction of pixels with value > 0.9.
    pub bright: f64,
    /// Fraction of pixels with R, G and B all > 200.
    pub neutral_white: f64,
    /// Standard deviation of the grey level (0..255).
    pub grey_std: f64,
    /// Variance of the 3x3 Laplacian of the grey image.
    pub laplacian_var: f64,
}

/// Measures `rgb` (packed RGB8, `width` wide) inside the circle of centre (cx, cy)
/// and radius `r` pixels.
pub fn measure(rgb: &[u8], width: u32, height: u32, cx: f64, cy: f64, r: f64) -> Appearance {
    measure_ring(rgb, width, height, (cx, cy), -1.0, r)
}

/// Measures `rgb` over the ring of centre `c` between radii `inner` (excluded; negative
/// for a whole disc) and `outer` pixels, e.g. the rim of the field of view.
pub fn measure_ring(
    rgb: &[u8],
    width: u32,
    height: u32,
    c: (f64, f64),
    inner: f64,
    outer: f64,
) -> Appearance {
    let ((cx, cy), r) = (c, outer);
    let (w, h) = (width as usize, height as usize);
    let grey: Vec<f64> = rgb
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect();
    let mut n = 0.0;
    let mut sum = [0.0; 3];
    let (mut rb, mut warm, mut sat, mut val, mut bright, mut white) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut g_sum, mut g_sq, mut l_sum, mut l_sq) = (0.0, 0.0, 0.0, 0.0);
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let d2 = dx * dx + dy * dy;
            if d2 > r * r || (inner >= 0.0 && d2 <= inner * inner) {
                continue;
            }
            let i = y * w + x;
            let p = &rgb[i * 3..i * 3 + 3];
            let (fr, fg, fb) = (p[0] as f64, p[1] as f64, p[2] as f64);
            n += 1.0;
            sum[0] += fr;
            sum[1] += fg;
            sum[2] += fb;
            rb += f64::from(u8::from(fr > fb + 20.0));
            white += f64::from(u8::from(fr > 200.0 && fg > 200.0 && fb > 200.0));
            let max = fr.max(fg).max(fb);
            let min = fr.min(fg).min(fb);
            let v = max / 255.0;
            let s = if max > 0.0 { (max - min) / max } else { 0.0 };
            let hue = if max == min {
                0.0
            } else if max == fr {
                (60.0 * (fg - fb) / (max - min)).rem_euclid(360.0)
            } else if max == fg {
                120.0 + 60.0 * (fb - fr) / (max - min)
            } else {
                240.0 + 60.0 * (fr - fg) / (max - min)
            };
            warm += f64::from(u8::from(hue <= 50.0 || hue >= 320.0));
            sat += s;
            val += v;
            bright += f64::from(u8::from(v > 0.9));
            g_sum += grey[i];
            g_sq += grey[i] * grey[i];
            let lap = grey[i - 1] + grey[i + 1] + grey[i - w] + grey[i + w] - 4.0 * grey[i];
            l_sum += lap;
            l_sq += lap * lap;
        }
    }
    let n = f64::max(n, 1.0);
    let var = |s: f64, sq: f64| (sq / n - (s / n).powi(2)).max(0.0);
    Appearance {
        mean_rgb: sum.map(|s| s / n),
        red_over_blue: rb / n,
        warm_hue: warm / n,
        mean_saturation: sat / n,
        mean_value: val / n,
        bright: bright / n,
        neutral_white: white / n,
        grey_std: var(g_sum, g_sq).sqrt(),
        laplacian_var: var(l_sum, l_sq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_colour_has_no_texture() {
        let rgb: Vec<u8> = [200u8, 120, 100].repeat(32 * 32);
        let a = measure(&rgb, 32, 32, 16.0, 16.0, 100.0);
        assert_eq!(a.mean_rgb, [200.0, 120.0, 100.0]);
        assert_eq!(
            (a.red_over_blue, a.warm_hue, a.neutral_white),
            (1.0, 1.0, 0.0)
        );
        assert!((a.mean_saturation - 0.5).abs() < 1e-9);
        assert!(a.grey_std < 1e-3 && a.laplacian_var < 1e-6, "{a:?}");
    }

    #[test]
    fn checkerboard_is_sharp() {
        let rgb: Vec<u8> = (0..32 * 32)
            .flat_map(|i| {
                let v = if (i % 32 + i / 32) % 2 == 0 { 255 } else { 0 };
                [v, v, v]
            })
            .collect();
        let a = measure(&rgb, 32, 32, 16.0, 16.0, 100.0);
        assert!(a.laplacian_var > 100_000.0, "{}", a.laplacian_var);
        assert!((a.grey_std - 127.5).abs() < 2.0);
    }
}
