//! Picking frames worth labelling from a procedure video: sharp (variance of the
//! Laplacian, against a threshold taken from the video itself), not blank (dark,
//! saturated or uniform: out of the body, lens covered), not a near-duplicate of a frame
//! already kept (difference hash), and spread over the video.

/// What one sampled frame looks like.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameScore {
    /// Frame index in the video.
    pub index: u64,
    /// Presentation time, microseconds.
    pub pts_us: i64,
    /// Variance of the 4-neighbour Laplacian of the luma, at analysis size.
    pub sharpness: f64,
    /// Mean luma, 0..255.
    pub mean: f64,
    /// Standard deviation of the luma.
    pub std: f64,
    /// Fraction of pixels with luma >= 250.
    pub saturated: f64,
    /// 64-bit difference hash (9x8 luma thumbnail, left-right gradients).
    pub hash: u64,
}

/// Why a frame was or was not kept.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Kept for labelling.
    Kept,
    /// Too dark, too bright or featureless.
    Blank(String),
    /// Below the video's sharpness threshold.
    Blurry {
        /// The threshold it missed.
        threshold: f64,
    },
    /// Too similar to a kept frame.
    Duplicate {
        /// The kept frame it resembles.
        of: u64,
        /// Hamming distance of the hashes.
        distance: u32,
    },
    /// Eligible, but another frame of its time slot was sharper (with `--max`).
    NotChosen,
}

impl Decision {
    /// Short label for the CSV.
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Kept => "kept",
            Decision::Blank(_) => "blank",
            Decision::Blurry { .. } => "blurry",
            Decision::Duplicate { .. } => "duplicate",
            Decision::NotChosen => "not-chosen",
        }
    }

    /// Human-readable reason.
    pub fn reason(&self) -> String {
        match self {
            Decision::Kept => String::new(),
            Decision::Blank(why) => why.clone(),
            Decision::Blurry { threshold } => format!("sharpness below {threshold:.1}"),
            Decision::Duplicate { of, distance } => {
                format!("like frame {of} (hash distance {distance})")
            }
            Decision::NotChosen => "a sharper frame was kept for this part of the video".into(),
        }
    }
}

/// Selection settings.
#[derive(Clone, Debug)]
pub struct ExtractOptions {
    /// Sharpness threshold = this fraction of the video's median sharpness.
    pub sharpness_fraction: f64,
    /// Frames whose hashes differ in at most this many bits are duplicates.
    pub duplicate_bits: u32,
    /// Keep at most this many frames per video, spread over its length.
    pub max: Option<usize>,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            sharpness_fraction: 0.5,
            duplicate_bits: 6,
            max: None,
        }
    }
}

/// Scores one RGB8 frame; analysis runs on a luma image of at most 320 px width.
pub fn score(index: u64, pts_us: i64, rgb: &[u8], width: u32, height: u32) -> FrameScore {
    let (w, h) = (width as usize, height as usize);
    let step = w.div_ceil(320).max(1);
    let (aw, ah) = (w / step, h / step);
    let luma = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        0.299 * rgb[i] as f64 + 0.587 * rgb[i + 1] as f64 + 0.114 * rgb[i + 2] as f64
    };
    let mut small = vec![0f64; aw * ah];
    for y in 0..ah {
        for x in 0..aw {
            // Box average of the step x step block.
            let mut s = 0.0;
            for dy in 0..step {
                for dx in 0..step {
                    s += luma(x * step + dx, y * step + dy);
                }
            }
            small[y * aw + x] = s / (step * step) as f64;
        }
    }
    let n = small.len().max(1) as f64;
    let mean = small.iter().sum::<f64>() / n;
    let std = (small.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let saturated = small.iter().filter(|&&v| v >= 250.0).count() as f64 / n;
    let mut lap = Vec::with_capacity(aw * ah);
    for y in 1..ah.saturating_sub(1) {
        for x in 1..aw.saturating_sub(1) {
            let c = small[y * aw + x];
            lap.push(
                small[y * aw + x - 1]
                    + small[y * aw + x + 1]
                    + small[(y - 1) * aw + x]
                    + small[(y + 1) * aw + x]
                    - 4.0 * c,
            );
        }
    }
    let ln = lap.len().max(1) as f64;
    let lm = lap.iter().sum::<f64>() / ln;
    let sharpness = lap.iter().map(|v| (v - lm).powi(2)).sum::<f64>() / ln;
    FrameScore {
        index,
        pts_us,
        sharpness,
        mean,
        std,
        saturated,
        hash: dhash(&small, aw, ah),
    }
}

fn dhash(small: &[f64], w: usize, h: usize) -> u64 {
    let mut bits = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            let sample = |xx: usize| {
                let sx = (xx * w / 9).min(w.saturating_sub(1));
                let sy = (y * h / 8 + h / 16).min(h.saturating_sub(1));
                small.get(sy * w + sx).copied().unwrap_or(0.0)
            };
            bits = (bits << 1) | u64::from(sample(x) < sample(x + 1));
        }
    }
    bits
}

fn blank(s: &FrameScore) -> Option<String> {
    if s.mean < 20.0 {
        Some(format!("dark (mean luma {:.0})", s.mean))
    } else if s.saturated > 0.5 {
        Some(format!("saturated ({:.0}% white)", s.saturated * 100.0))
    } else if s.std < 6.0 {
        Some(format!("uniform (luma std {:.1})", s.std))
    } else {
        None
    }
}

/// Decides for every scored frame of one video, in order.
pub fn select(scores: &[FrameScore], opts: &ExtractOptions) -> Vec<Decision> {
    let mut decisions: Vec<Option<Decision>> = scores
        .iter()
        .map(|s| blank(s).map(Decision::Blank))
        .collect();
    let mut sharp: Vec<f64> = scores
        .iter()
        .zip(&decisions)
        .filter(|(_, d)| d.is_none())
        .map(|(s, _)| s.sharpness)
        .collect();
    sharp.sort_by(f64::total_cmp);
    let threshold = sharp.get(sharp.len() / 2).copied().unwrap_or(0.0) * opts.sharpness_fraction;
    for (s, d) in scores.iter().zip(decisions.iter_mut()) {
        if d.is_none() && s.sharpness < threshold {
            *d = Some(Decision::Blurry { threshold });
        }
    }
    // Candidates in order of preference: with --max, the sharpest of each time slot
    // first (so frames spread over the video), then everything else by sharpness.
    let eligible: Vec<usize> = (0..scores.len())
        .filter(|&i| decisions[i].is_none())
        .collect();
    let order: Vec<usize> = match opts.max {
        Some(max) if max > 0 && !eligible.is_empty() => {
            let first = scores[eligible[0]].pts_us;
            let last = scores[*eligible.last().unwrap_or(&eligible[0])].pts_us;
            let span = (last - first).max(1) as f64;
            let slot = |i: usize| {
                (((scores[i].pts_us - first) as f64 / span * max as f64) as usize).min(max - 1)
            };
            let mut by_slot: Vec<Vec<usize>> = vec![Vec::new(); max];
            for &i in &eligible {
                by_slot[slot(i)].push(i);
            }
            for v in &mut by_slot {
                v.sort_by(|&a, &b| scores[b].sharpness.total_cmp(&scores[a].sharpness));
            }
            // Round-robin over slots: best of each slot, then second best, ...
            let depth = by_slot.iter().map(Vec::len).max().unwrap_or(0);
            (0..depth)
                .flat_map(|k| by_slot.iter().filter_map(move |v| v.get(k).copied()))
                .collect()
        }
        _ => eligible.clone(),
    };
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if opts.max.is_some_and(|m| kept.len() >= m) {
            decisions[i] = Some(Decision::NotChosen);
            continue;
        }
        let dup = kept
            .iter()
            .map(|&k| (k, (scores[k].hash ^ scores[i].hash).count_ones()))
            .filter(|&(_, d)| d <= opts.duplicate_bits)
            .min_by_key(|&(_, d)| d);
        decisions[i] = Some(match dup {
            Some((k, distance)) => Decision::Duplicate {
                of: scores[k].index,
                distance,
            },
            None => {
                kept.push(i);
                Decision::Kept
            }
        });
    }
    decisions
        .into_iter()
        .map(|d| d.unwrap_or(Decision::NotChosen))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::Rng;

    fn textured(seed: u64, w: usize, h: usize, blur: usize) -> Vec<u8> {
        let mut r = Rng::new(seed);
        let base: Vec<f64> = (0..w * h)
            .map(|_| (r.next_u64() % 200) as f64 + 30.0)
            .collect();
        let mut out = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let (mut s, mut n) = (0.0, 0.0);
                for dy in 0..=2 * blur {
                    for dx in 0..=2 * blur {
                        let (xx, yy) = (x + dx, y + dy);
                        if xx >= blur && yy >= blur && xx - blur < w && yy - blur < h {
                            s += base[(yy - blur) * w + xx - blur];
                            n += 1.0;
                        }
                    }
                }
                let v = (s / n) as u8;
                out[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[v, v / 2, v / 3]);
            }
        }
        out
    }

    /// Bright and varied, but with no fine detail: an out-of-focus view.
    fn gradient(w: usize, h: usize) -> Vec<u8> {
        (0..w * h)
            .flat_map(|i| {
                let v = (30 + (i % w) * 200 / w) as u8;
                [v, v / 2, v / 3]
            })
            .collect()
    }

    #[test]
    fn blur_lowers_sharpness_and_blank_frames_are_named() {
        let sharp = score(0, 0, &textured(1, 64, 48, 0), 64, 48);
        let soft = score(1, 0, &textured(1, 64, 48, 3), 64, 48);
        assert!(
            sharp.sharpness > 10.0 * soft.sharpness,
            "{sharp:?} {soft:?}"
        );
        let dark = score(2, 0, &vec![5u8; 64 * 48 * 3], 64, 48);
        assert!(blank(&dark).is_some_and(|w| w.starts_with("dark")));
        let white = score(3, 0, &vec![255u8; 64 * 48 * 3], 64, 48);
        assert!(blank(&white).is_some_and(|w| w.starts_with("saturated")));
        let grey = score(4, 0, &vec![128u8; 64 * 48 * 3], 64, 48);
        assert!(blank(&grey).is_some_and(|w| w.starts_with("uniform")));
    }

    #[test]
    fn selection_drops_blurry_blank_and_duplicate_frames_and_spreads_the_rest() {
        let frames: Vec<(Vec<u8>, &str)> = vec![
            (textured(1, 64, 48, 0), "sharp a"),
            (textured(1, 64, 48, 0), "duplicate of a"),
            (gradient(64, 48), "blurry"),
            (vec![3u8; 64 * 48 * 3], "dark"),
            (textured(3, 64, 48, 0), "sharp b"),
            (textured(4, 64, 48, 0), "sharp c"),
            (textured(5, 64, 48, 0), "sharp d"),
        ];
        let scores: Vec<FrameScore> = frames
            .iter()
            .enumerate()
            .map(|(i, (rgb, _))| score(i as u64, i as i64 * 1_000_000, rgb, 64, 48))
            .collect();
        let d = select(&scores, &ExtractOptions::default());
        let labels: Vec<&str> = d.iter().map(Decision::label).collect();
        assert_eq!(
            labels,
            [
                "kept",
                "duplicate",
                "blurry",
                "blank",
                "kept",
                "kept",
                "kept"
            ]
        );
        assert_eq!(d[1], Decision::Duplicate { of: 0, distance: 0 });
        // At most 2, spread: one from each half of the video.
        let d = select(
            &scores,
            &ExtractOptions {
                max: Some(2),
                ..ExtractOptions::default()
            },
        );
        let kept: Vec<usize> = (0..d.len()).filter(|&i| d[i] == Decision::Kept).collect();
        assert_eq!(kept.len(), 2);
        assert!(kept[0] < 3 && kept[1] >= 4, "{kept:?}");
    }
}
