//! Pre-processing (antialiased resize, normalise, NCHW) and post-processing
//! (softmax, class index and confidence), all into reused buffers.

use foramen_core::resample::linear_taps;
use rayon::prelude::*;

/// Separable resampling weights for one axis: for each output index, the first
/// source index and its weights. Same filter as PIL's `BILINEAR` (a triangle whose
/// support widens with the downscale factor), which the training recipe uses, so
/// that the network sees at run time what it saw in training.
#[derive(Clone, Debug)]
pub struct AxisWeights {
    starts: Vec<usize>,
    taps: usize,
    weights: Vec<f32>,
}

impl AxisWeights {
    /// Weights to resample `src` samples to `dst` samples.
    pub fn new(src: usize, dst: usize) -> Self {
        let scale = src as f64 / dst as f64;
        let support = scale.max(1.0);
        let taps = (support.ceil() as usize) * 2 + 2;
        let mut starts = Vec::with_capacity(dst);
        let mut weights = vec![0.0f32; dst * taps];
        for i in 0..dst {
            let centre = (i as f64 + 0.5) * scale;
            let lo = ((centre - support).floor().max(0.0)) as usize;
            let hi = ((centre + support).ceil() as usize).min(src);
            let mut ws: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 + 0.5 - centre) / support).abs()).max(0.0))
                .collect();
            let sum: f64 = ws.iter().sum();
            ws.iter_mut().for_each(|w| *w /= sum);
            // Window slots past `hi` keep weight 0 and are skipped when applied, so
            // no source index beyond the edge is ever read.
            for (k, w) in ws.iter().enumerate() {
                weights[i * taps + k] = *w as f32;
            }
            starts.push(lo);
        }
        Self {
            starts,
            taps,
            weights,
        }
    }
}

/// Resizes RGB8 frames of one size into a normalised NCHW f32 tensor of another,
/// reusing its weights and scratch buffer from frame to frame.
#[derive(Clone, Debug)]
pub struct Preprocessor {
    src: (usize, usize),
    dst: (usize, usize),
    xw: AxisWeights,
    yw: AxisWeights,
    /// Vertical pass result: `dst_h` rows of `src_w` RGB f32.
    rows: Vec<f32>,
    /// Per channel: multiply, then add (folds scale, mean and std).
    mul: [f32; 3],
    add: [f32; 3],
}

impl Preprocessor {
    /// For frames of `src` (w, h) into a tensor of `dst` (w, h).
    pub fn new(
        src: (u32, u32),
        dst: (u32, u32),
        scale: f32,
        mean: [f32; 3],
        std: [f32; 3],
    ) -> Self {
        let (src, dst) = (
            (src.0 as usize, src.1 as usize),
            (dst.0 as usize, dst.1 as usize),
        );
        Self {
            src,
            dst,
            xw: AxisWeights::new(src.0, dst.0),
            yw: AxisWeights::new(src.1, dst.1),
            rows: vec![0.0; dst.1 * src.0 * 3],
            mul: std::array::from_fn(|c| 1.0 / (scale * std[c])),
            add: std::array::from_fn(|c| -mean[c] / std[c]),
        }
    }

    /// The source size this preprocessor was built for.
    pub fn source_size(&self) -> (u32, u32) {
        (self.src.0 as u32, self.src.1 as u32)
    }

    /// Fills `out` (length 3 * dst_w * dst_h, planar RGB) from packed RGB8 `rgb`.
    ///
    /// Vertical pass first: each of the `dst_h` intermediate rows is a weighted sum of
    /// whole source rows, a contiguous multiply-add that the compiler vectorises (at
    /// 1080p -> 384x224 it is 85 % of the work); then the horizontal pass, normalising
    /// into the planes. The filter is separable, so the order does not change the result
    /// beyond float rounding (checked against Pillow, which goes the other way).
    pub fn run(&mut self, rgb: &[u8], out: &mut [f32]) {
        let (sw, sh) = self.src;
        let (dw, dh) = self.dst;
        debug_assert_eq!(rgb.len(), sw * sh * 3);
        debug_assert_eq!(out.len(), dw * dh * 3);
        let row_len = sw * 3;
        let yw = &self.yw;
        self.rows
            .par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(y, acc)| {
                acc.fill(0.0);
                let start = yw.starts[y];
                let ws = &yw.weights[y * yw.taps..(y + 1) * yw.taps];
                for (k, &w) in ws.iter().enumerate() {
                    if w == 0.0 {
                        continue;
                    }
                    let src = &rgb[(start + k) * row_len..(start + k + 1) * row_len];
                    for (a, &v) in acc.iter_mut().zip(src) {
                        *a += w * f32::from(v);
                    }
                }
            });
        let (rows, xw, mul, add) = (&self.rows, &self.xw, self.mul, self.add);
        let plane = dw * dh;
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        r.par_chunks_mut(dw)
            .zip(g.par_chunks_mut(dw))
            .zip(b.par_chunks_mut(dw))
            .enumerate()
            .for_each(|(y, ((r, g), b))| {
                let row = &rows[y * row_len..(y + 1) * row_len];
                for x in 0..dw {
                    let start = xw.starts[x];
                    let ws = &xw.weights[x * xw.taps..(x + 1) * xw.taps];
                    let mut acc = [0.0f32; 3];
                    for (k, &w) in ws.iter().enumerate() {
                        if w == 0.0 {
                            continue;
                        }
                        let p = &row[(start + k) * 3..(start + k) * 3 + 3];
                        acc[0] += w * p[0];
                        acc[1] += w * p[1];
                        acc[2] += w * p[2];
                    }
                    r[x] = acc[0] * mul[0] + add[0];
                    g[x] = acc[1] * mul[1] + add[1];
                    b[x] = acc[2] * mul[2] + add[2];
                }
            });
    }
}

/// The largest of pixel `i`'s `classes` scores in planar (C, n) `scores`: its class and
/// value (the first on a tie).
#[inline]
pub(crate) fn best_class(scores: &[f32], classes: usize, n: usize, i: usize) -> (usize, f32) {
    let (mut best, mut best_v) = (0usize, f32::NEG_INFINITY);
    for c in 0..classes {
        let v = scores[c * n + i];
        if v > best_v {
            best_v = v;
            best = c;
        }
    }
    (best, best_v)
}

/// Per pixel of a (C, H, W) score tensor: the winning class and its probability
/// (0..255). `logits` selects softmax; otherwise scores are already probabilities.
pub fn argmax_confidence(
    scores: &[f32],
    classes: usize,
    logits: bool,
    class_out: &mut [u8],
    conf_out: &mut [u8],
) {
    let n = class_out.len();
    debug_assert_eq!(scores.len(), classes * n);
    class_out
        .par_chunks_mut(4096)
        .zip(conf_out.par_chunks_mut(4096))
        .enumerate()
        .for_each(|(chunk, (cls, conf))| {
            for (j, (c_out, p_out)) in cls.iter_mut().zip(conf.iter_mut()).enumerate() {
                let i = chunk * 4096 + j;
                let (best, best_v) = best_class(scores, classes, n, i);
                let p = if logits {
                    let sum: f32 = (0..classes)
                        .map(|c| (scores[c * n + i] - best_v).exp())
                        .sum();
                    1.0 / sum
                } else {
                    best_v
                };
                *c_out = best as u8;
                *p_out = (p.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
            }
        });
}

/// Softmax over the class axis of a (C, H, W) tensor, in place.
pub fn softmax_in_place(scores: &mut [f32], classes: usize) {
    let n = scores.len() / classes;
    for i in 0..n {
        let max = (0..classes)
            .map(|c| scores[c * n + i])
            .fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for c in 0..classes {
            let e = (scores[c * n + i] - max).exp();
            scores[c * n + i] = e;
            sum += e;
        }
        for c in 0..classes {
            scores[c * n + i] /= sum;
        }
    }
}

/// Pixels per parallel task of [`softmax_planar`].
const SOFTMAX_BLOCK: usize = 4096;

/// Softmax over the class axis of planar (C, n) `scores` into `out`, on rayon's threads;
/// `peak` and `total` are per-pixel scratch buffers kept by the caller, so that a warm
/// caller allocates nothing. The same operations in the same order as
/// [`softmax_in_place`] (maximum, shifted exponential, sum in class order, division),
/// so the same values, in four passes that each write disjoint slices (planar data
/// cannot be split by pixel into disjoint mutable parts otherwise without unsafe code).
pub fn softmax_planar(
    scores: &[f32],
    classes: usize,
    out: &mut Vec<f32>,
    peak: &mut Vec<f32>,
    total: &mut Vec<f32>,
) {
    let n = scores.len() / classes;
    out.resize(scores.len(), 0.0);
    peak.resize(n, 0.0);
    total.resize(n, 0.0);
    peak.par_chunks_mut(SOFTMAX_BLOCK)
        .enumerate()
        .for_each(|(k, m)| {
            m.fill(f32::NEG_INFINITY);
            for c in 0..classes {
                let s = &scores[c * n + k * SOFTMAX_BLOCK..][..m.len()];
                m.iter_mut().zip(s).for_each(|(m, &v)| *m = m.max(v));
            }
        });
    let peak = &*peak;
    out.par_chunks_mut(n)
        .zip(scores.par_chunks(n))
        .for_each(|(o, s)| {
            o.par_chunks_mut(SOFTMAX_BLOCK)
                .zip(s.par_chunks(SOFTMAX_BLOCK))
                .zip(peak.par_chunks(SOFTMAX_BLOCK))
                .for_each(|((o, s), m)| {
                    for ((o, &s), &m) in o.iter_mut().zip(s).zip(m) {
                        *o = (s - m).exp();
                    }
                });
        });
    let exps = &*out;
    total
        .par_chunks_mut(SOFTMAX_BLOCK)
        .enumerate()
        .for_each(|(k, t)| {
            t.fill(0.0);
            for c in 0..classes {
                let e = &exps[c * n + k * SOFTMAX_BLOCK..][..t.len()];
                t.iter_mut().zip(e).for_each(|(t, &e)| *t += e);
            }
        });
    let total = &*total;
    out.par_chunks_mut(n).for_each(|o| {
        o.par_chunks_mut(SOFTMAX_BLOCK)
            .zip(total.par_chunks(SOFTMAX_BLOCK))
            .for_each(|(o, t)| o.iter_mut().zip(t).for_each(|(o, &t)| *o /= t));
    });
}

/// Bilinear resize of a (C, H, W) tensor to (C, dh, dw), pixel centres aligned
/// (as PyTorch's `align_corners=False`).
pub fn resize_planes(
    src: &[f32],
    classes: usize,
    sw: usize,
    sh: usize,
    dw: usize,
    dh: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; classes * dw * dh];
    let xs = linear_taps(sw, dw);
    let ys = linear_taps(sh, dh);
    out.par_chunks_mut(dw).enumerate().for_each(|(row, o)| {
        let (c, y) = (row / dh, row % dh);
        let (y0, y1, ty) = ys[y];
        let plane = &src[c * sw * sh..(c + 1) * sw * sh];
        for (x, &(x0, x1, tx)) in xs.iter().enumerate() {
            let a = plane[y0 * sw + x0] * (1.0 - tx) + plane[y0 * sw + x1] * tx;
            let b = plane[y1 * sw + x0] * (1.0 - tx) + plane[y1 * sw + x1] * tx;
            o[x] = a * (1.0 - ty) + b * ty;
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_stay_in_range() {
        for (src, dst) in [(1920, 384), (512, 384), (100, 300), (7, 7), (1080, 224)] {
            let w = AxisWeights::new(src, dst);
            for i in 0..dst {
                let ws = &w.weights[i * w.taps..(i + 1) * w.taps];
                let sum: f32 = ws.iter().sum();
                assert!((sum - 1.0).abs() < 1e-4, "{src}->{dst} @ {i}: {sum}");
                let last_nonzero = ws.iter().rposition(|&v| v > 0.0).unwrap_or(0);
                assert!(w.starts[i] + last_nonzero < src);
            }
        }
    }

    #[test]
    fn flat_colour_normalises_exactly() {
        let rgb = [255u8, 0, 128].repeat(40 * 30);
        let mut p = Preprocessor::new((40, 30), (16, 8), 255.0, [0.5, 0.5, 0.5], [0.25, 0.5, 1.0]);
        let mut out = vec![0.0; 3 * 16 * 8];
        p.run(&rgb, &mut out);
        let plane = 16 * 8;
        assert!(out[..plane].iter().all(|v| (v - 2.0).abs() < 1e-5));
        assert!(out[plane..2 * plane].iter().all(|v| (v + 1.0).abs() < 1e-5));
        assert!(
            out[2 * plane..]
                .iter()
                .all(|v| (v - (128.0 / 255.0 - 0.5)).abs() < 1e-5)
        );
    }

    /// The fixture holds a 31x19 RGB frame (smooth ramps plus noise) and Pillow's
    /// `Image.resize(size, BILINEAR)` of it to four sizes (down, one axis only, up,
    /// mixed), as the training recipe resizes; regenerate with the script in its
    /// `generator` field. Pillow rounds to 8 bits after each of its two passes, so an
    /// exact resize lies within one level of it (0.57 at most here).
    #[test]
    fn resizes_as_pillows_bilinear_filter_does() {
        let doc: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/pil_bilinear.json"
        )))
        .expect("fixture");
        let bytes = |v: &serde_json::Value| -> Vec<u8> {
            let a = v.as_array().expect("array");
            a.iter().map(|x| x.as_u64().expect("byte") as u8).collect()
        };
        let size = |v: &serde_json::Value| {
            (
                v["width"].as_u64().unwrap() as u32,
                v["height"].as_u64().unwrap() as u32,
            )
        };
        let (src, rgb) = (size(&doc), bytes(&doc["rgb"]));
        for case in doc["resized"].as_array().expect("cases") {
            let (dst, want) = (size(case), bytes(&case["rgb"]));
            let mut p = Preprocessor::new(src, dst, 1.0, [0.0; 3], [1.0; 3]);
            let plane = (dst.0 * dst.1) as usize;
            let mut out = vec![0.0; 3 * plane];
            p.run(&rgb, &mut out);
            for (i, &w) in want.iter().enumerate() {
                let got = out[(i % 3) * plane + i / 3];
                assert!(
                    (got - w as f32).abs() <= 1.0,
                    "{dst:?} value {i}: {got} against Pillow's {w}"
                );
            }
        }
    }

    #[test]
    fn downscale_averages_like_an_area_filter() {
        // Alternating black/white columns average to grey instead of aliasing.
        let rgb: Vec<u8> = (0..64 * 4)
            .flat_map(|i| if i % 2 == 0 { [255; 3] } else { [0; 3] })
            .collect();
        let mut p = Preprocessor::new((64, 4), (8, 4), 255.0, [0.0; 3], [1.0; 3]);
        let mut out = vec![0.0; 3 * 8 * 4];
        p.run(&rgb, &mut out);
        assert!(out.iter().all(|v| (v - 0.5).abs() < 0.05), "{out:?}");
    }

    #[test]
    fn argmax_and_softmax_confidence() {
        // Two classes, three pixels.
        let scores = [0.0, 2.0, 3.0, 1.0, 0.0, 3.0];
        let (mut c, mut p) = ([0u8; 3], [0u8; 3]);
        argmax_confidence(&scores, 2, true, &mut c, &mut p);
        assert_eq!(c, [1, 0, 0], "ties go to the lower index");
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        assert_eq!(p[0], (sigmoid(1.0) * 255.0 + 0.5) as u8);
        assert_eq!(p[1], (sigmoid(2.0) * 255.0 + 0.5) as u8);
        assert_eq!(p[2], 128);
        let mut s = scores.to_vec();
        softmax_in_place(&mut s, 2);
        for i in 0..3 {
            assert!((s[i] + s[3 + i] - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn parallel_softmax_gives_the_sequential_values() {
        // 3 classes over more pixels than one block, not a multiple of it.
        let n = 2 * SOFTMAX_BLOCK + 123;
        let scores: Vec<f32> = (0..3 * n)
            .map(|i| ((i * 7919) % 211) as f32 / 9.0 - 11.0)
            .collect();
        let mut want = scores.clone();
        softmax_in_place(&mut want, 3);
        let (mut got, mut peak, mut total) = (Vec::new(), Vec::new(), Vec::new());
        softmax_planar(&scores, 3, &mut got, &mut peak, &mut total);
        assert_eq!(got, want);
        // Warm buffers are reused as they are: no reallocation on the next frame.
        let ptr = got.as_ptr();
        softmax_planar(&scores, 3, &mut got, &mut peak, &mut total);
        assert_eq!((got.as_ptr(), got.len()), (ptr, 3 * n));
    }

    #[test]
    fn resize_planes_keeps_constants_and_corners() {
        let src: Vec<f32> = (0..2 * 4 * 3)
            .map(|i| if i < 12 { 1.0 } else { i as f32 })
            .collect();
        let out = resize_planes(&src, 2, 4, 3, 9, 7);
        assert!(out[..63].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        assert_eq!(out[63], src[12]);
        assert_eq!(out[out.len() - 1], src[src.len() - 1]);
    }
}
