//! Compositing class masks onto video frames: the CPU reference blender and the WGSL shader that mirrors it, with fill and contour modes.

pub mod gpu;
#[cfg(feature = "wgpu")]
pub mod gpu_wgpu;

#[cfg(feature = "wgpu")]
pub use gpu_wgpu::OverlayGpu;

use foramen_core::config::{OverlayConfig, OverlayMode};
use foramen_core::resample::linear_taps;
use foramen_core::{ClassSet, Mask};
use rayon::prelude::*;

/// How masks are drawn: colours, which classes, opacity and mode.
#[derive(Clone, Debug)]
pub struct OverlayStyle {
    /// RGB colour per class index.
    pub lut: [[u8; 3]; 256],
    /// Whether each class index is drawn. Index 0 (background) never is.
    pub visible: [bool; 256],
    /// Fill opacity 0..1 per class index (the global opacity unless the class has
    /// its own in `[overlay.class_opacity]`).
    pub alpha: [f32; 256],
    /// Fill, contour or both.
    pub mode: OverlayMode,
    /// Contour thickness in output pixels.
    pub contour_px: u32,
    /// Source pixels whose brightest channel is below this are never annotated: they
    /// are the black surround outside the scope's field stop, where there is no tissue
    /// to mark even if the model says otherwise.
    pub black_level: u8,
}

impl OverlayStyle {
    /// A style for `classes` as configured.
    pub fn new(classes: &ClassSet, cfg: &OverlayConfig) -> Self {
        let mut visible = [false; 256];
        let mut alpha = [cfg.opacity.clamp(0.0, 1.0); 256];
        for c in classes.classes.iter().skip(1) {
            visible[c.index as usize] = !cfg.hidden_classes.iter().any(|h| h == &c.name);
            if let Some(&a) = cfg.class_opacity.get(&c.name) {
                alpha[c.index as usize] = a.clamp(0.0, 1.0);
            }
        }
        Self {
            lut: classes.color_lut(),
            visible,
            alpha,
            mode: cfg.mode,
            contour_px: cfg.contour_px.max(1),
            black_level: cfg.black_level,
        }
    }
}

/// Sampling taps from a mask size to a frame size, kept while both stay the same.
struct Taps {
    key: (usize, usize, usize, usize),
    cols: Vec<(usize, usize, f32)>,
    rows: Vec<(usize, usize, f32)>,
}

/// Blends masks onto frames, reusing its class map and sampling taps between frames
/// so that steady-state compositing allocates nothing.
#[derive(Default)]
pub struct Compositor {
    class_map: Vec<u8>,
    taps: Option<Taps>,
}

impl Compositor {
    /// A compositor with no buffers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `rgb` (packed RGB8, `width` x `height`) blended with `mask` into `out`.
    /// The mask may have any size: each output pixel takes the class with the
    /// largest bilinear weight among its four nearest mask pixels, which gives
    /// smooth, not blocky, borders when a small mask is shown on a large frame.
    pub fn composite(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        mask: &Mask,
        style: &OverlayStyle,
        out: &mut [u8],
    ) {
        let (w, h) = (width as usize, height as usize);
        debug_assert_eq!(rgb.len(), w * h * 3);
        debug_assert_eq!(out.len(), w * h * 3);
        self.class_map.resize(w * h, 0);
        let key = (mask.width as usize, mask.height as usize, w, h);
        let taps = match self.taps.take() {
            Some(t) if t.key == key => t,
            _ => Taps {
                key,
                cols: linear_taps(key.0, w),
                rows: linear_taps(key.1, h),
            },
        };
        upsample_with(mask, &taps.cols, &taps.rows, w, &mut self.class_map);
        self.taps = Some(taps);

        let fill = matches!(style.mode, OverlayMode::Fill | OverlayMode::Both);
        let contour = matches!(style.mode, OverlayMode::Contour | OverlayMode::Both);
        let r = style.contour_px as usize / 2 + style.contour_px as usize % 2;
        let map = &self.class_map;
        out.par_chunks_mut(w * 3)
            .enumerate()
            .for_each(|(y, out_row)| {
                let in_row = &rgb[y * w * 3..(y + 1) * w * 3];
                let classes = &map[y * w..(y + 1) * w];
                for x in 0..w {
                    let c = classes[x] as usize;
                    let (o, i) = (&mut out_row[x * 3..x * 3 + 3], &in_row[x * 3..x * 3 + 3]);
                    if !style.visible[c] || i[0].max(i[1]).max(i[2]) < style.black_level {
                        o.copy_from_slice(i);
                        continue;
                    }
                    let col = style.lut[c];
                    let edge = contour && is_edge(map, w, h, x, y, r);
                    if edge {
                        o.copy_from_slice(&col);
                    } else if fill {
                        let a = (style.alpha[c] * 256.0) as u32;
                        for k in 0..3 {
                            o[k] = ((i[k] as u32 * (256 - a) + col[k] as u32 * a) >> 8) as u8;
                        }
                    } else {
                        o.copy_from_slice(i);
                    }
                }
            });
    }

    /// The class map of the last composite, at frame size.
    pub fn class_map(&self) -> &[u8] {
        &self.class_map
    }
}

/// True when a pixel of another class lies within `r` pixels along an axis: the
/// outline is drawn on the inside of each region.
#[inline]
fn is_edge(map: &[u8], w: usize, h: usize, x: usize, y: usize, r: usize) -> bool {
    let c = map[y * w + x];
    let row = &map[y * w..(y + 1) * w];
    (1..=r).any(|d| {
        (x >= d && row[x - d] != c)
            || (x + d < w && row[x + d] != c)
            || (y >= d && map[(y - d) * w + x] != c)
            || (y + d < h && map[(y + d) * w + x] != c)
    })
}

/// Class per output pixel from a mask of any size (bilinear-weighted vote).
pub fn upsample_classes(mask: &Mask, w: usize, h: usize, out: &mut [u8]) {
    let cols = linear_taps(mask.width as usize, w);
    let rows = linear_taps(mask.height as usize, h);
    upsample_with(mask, &cols, &rows, w, out);
}

fn upsample_with(
    mask: &Mask,
    cols: &[(usize, usize, f32)],
    rows: &[(usize, usize, f32)],
    w: usize,
    out: &mut [u8],
) {
    let mw = mask.width as usize;
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let (y0, y1, ty) = rows[y];
        let (r0, r1) = (
            &mask.classes[y0 * mw..(y0 + 1) * mw],
            &mask.classes[y1 * mw..(y1 + 1) * mw],
        );
        for (o, &(x0, x1, tx)) in row.iter_mut().zip(cols) {
            let q = [r0[x0], r0[x1], r1[x0], r1[x1]];
            if q[0] == q[1] && q[1] == q[2] && q[2] == q[3] {
                *o = q[0];
                continue;
            }
            let wts = [
                (1.0 - tx) * (1.0 - ty),
                tx * (1.0 - ty),
                (1.0 - tx) * ty,
                tx * ty,
            ];
            let mut best = (q[0], -1.0f32);
            for &cand in &q {
                let score: f32 = q
                    .iter()
                    .zip(&wts)
                    .filter(|(c, _)| **c == cand)
                    .map(|(_, w)| w)
                    .sum();
                if score > best.1 {
                    best = (cand, score);
                }
            }
            *o = best.0;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(w: u32, h: u32, classes: Vec<u8>) -> Mask {
        Mask {
            source_frame_id: 0,
            source_pts_us: 0,
            source_captured_at_us: 0,
            width: w,
            height: h,
            confidence: vec![255; classes.len()],
            classes,
            infer_ms: 0.0,
        }
    }

    fn style(mode: OverlayMode, opacity: f32) -> OverlayStyle {
        let cfg = OverlayConfig {
            opacity,
            mode,
            contour_px: 2,
            hidden_classes: vec![],
            black_level: 8,
            class_opacity: Default::default(),
        };
        OverlayStyle::new(&ClassSet::lumbar(), &cfg)
    }

    #[test]
    fn fill_blends_class_colour_and_leaves_background() {
        // Left half bone (1), right half background.
        let m = mask(2, 1, vec![1, 0]);
        let rgb = vec![100u8; 8 * 4 * 3];
        let mut out = vec![0u8; rgb.len()];
        let s = style(OverlayMode::Fill, 0.5);
        Compositor::new().composite(&rgb, 8, 4, &m, &s, &mut out);
        let bone = ClassSet::lumbar().classes[1].color;
        let px = |x: usize, y: usize| &out[(y * 8 + x) * 3..(y * 8 + x) * 3 + 3];
        for k in 0..3 {
            assert_eq!(px(0, 0)[k] as u32, (100 * 128 + bone[k] as u32 * 128) >> 8);
        }
        assert_eq!(px(7, 3), [100, 100, 100]);
    }

    #[test]
    fn contour_marks_borders_only() {
        let m = mask(4, 4, vec![0, 0, 0, 0, 0, 3, 3, 0, 0, 3, 3, 0, 0, 0, 0, 0]);
        let rgb = vec![50u8; 40 * 40 * 3];
        let mut out = vec![0u8; rgb.len()];
        let s = style(OverlayMode::Contour, 0.5);
        let mut comp = Compositor::new();
        comp.composite(&rgb, 40, 40, &m, &s, &mut out);
        let disc = ClassSet::lumbar().classes[3].color;
        let px = |x: usize, y: usize| {
            [
                out[(y * 40 + x) * 3],
                out[(y * 40 + x) * 3 + 1],
                out[(y * 40 + x) * 3 + 2],
            ]
        };
        assert_eq!(
            px(20, 20),
            [50, 50, 50],
            "interior untouched in contour mode"
        );
        assert_eq!(px(0, 0), [50, 50, 50], "background untouched");
        // Walk right from the centre until the region ends: its last pixel is outline.
        let last = (20..40)
            .take_while(|&x| comp.class_map()[20 * 40 + x] == 3)
            .last()
            .expect("region");
        assert_eq!(px(last, 20), disc);
    }

    #[test]
    fn black_surround_is_never_annotated() {
        let m = mask(1, 1, vec![1]);
        let mut rgb = vec![100u8; 4 * 4 * 3];
        rgb[..3].copy_from_slice(&[5, 3, 7]);
        let mut out = vec![0u8; rgb.len()];
        Compositor::new().composite(&rgb, 4, 4, &m, &style(OverlayMode::Fill, 0.5), &mut out);
        assert_eq!(&out[..3], &[5, 3, 7]);
        assert_ne!(&out[3..6], &[100, 100, 100]);
    }

    #[test]
    fn per_class_opacity_overrides_the_global_one() {
        let m = mask(2, 1, vec![1, 3]);
        let rgb = vec![0u8; 2 * 3];
        let mut out = vec![0u8; rgb.len()];
        let mut cfg = OverlayConfig {
            opacity: 0.5,
            mode: OverlayMode::Fill,
            black_level: 0,
            ..OverlayConfig::default()
        };
        cfg.class_opacity.insert("disc".into(), 1.0);
        let s = OverlayStyle::new(&ClassSet::lumbar(), &cfg);
        Compositor::new().composite(&rgb, 2, 1, &m, &s, &mut out);
        let lumbar = ClassSet::lumbar();
        let (bone, disc) = (lumbar.classes[1].color, lumbar.classes[3].color);
        assert_eq!(out[0] as u32, (bone[0] as u32 * 128) >> 8, "bone at 0.5");
        assert_eq!(&out[3..6], &disc, "disc opaque");
    }

    #[test]
    fn hidden_classes_are_not_drawn() {
        let m = mask(1, 1, vec![2]);
        let rgb = vec![10u8; 4 * 4 * 3];
        let mut out = vec![0u8; rgb.len()];
        let cfg = OverlayConfig {
            hidden_classes: vec!["ligament".into()],
            ..OverlayConfig::default()
        };
        let s = OverlayStyle::new(&ClassSet::lumbar(), &cfg);
        Compositor::new().composite(&rgb, 4, 4, &m, &s, &mut out);
        assert_eq!(out, rgb);
    }

    #[test]
    fn upsampling_is_exact_at_integer_scale_centres_and_smooth_between() {
        let m = mask(2, 2, vec![1, 2, 3, 0]);
        let mut out = vec![0u8; 8 * 8];
        upsample_classes(&m, 8, 8, &mut out);
        assert_eq!((out[0], out[7], out[56], out[63]), (1, 2, 3, 0));
        assert!(out.iter().all(|&c| c <= 3));
    }
}
