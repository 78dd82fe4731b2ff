//! The evaluation accumulator: one image at a time into its sequence's confusion matrix
//! (the whole list's is their sum), the per-class ROC histograms, the temporal flip
//! count and the few worst images, in memory that grows with the number of sequences,
//! not of images. [`Evaluation::finish`] gives the typed
//! [`EvalReport`](crate::report::EvalReport).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::report::EvalReport;
use crate::sequences::{self, SequenceTally};
use crate::{BinnedRoc, ConfusionMatrix, EvalError};

/// The mask value that is never scored.
pub const IGNORE: u8 = 255;

/// How many worst images the report keeps.
pub const WORST: usize = 4;

/// One of the worst images, with its prediction for the report's tiles.
#[derive(Clone, Debug)]
pub struct WorstImage {
    /// The mask's file stem.
    pub stem: String,
    /// Mean IoU over the classes the image contains.
    pub miou: f64,
    /// The picture.
    pub image: PathBuf,
    /// The truth mask.
    pub mask: PathBuf,
    /// The predicted classes.
    pub pred: Vec<u8>,
}

/// One scored image.
pub struct ImageResult<'a> {
    /// Its name (the mask's file stem).
    pub stem: &'a str,
    /// The picture's file.
    pub image: &'a std::path::Path,
    /// The truth's file.
    pub mask: &'a std::path::Path,
    /// Size, for the temporal comparison with the previous image.
    pub size: (u32, u32),
    /// The sequence (video, procedure) the image belongs to: consecutive images of one
    /// sequence are consecutive video frames, and the report scores each sequence too.
    pub sequence: &'a str,
    /// Truth class per pixel (ignored classes are mapped to [`IGNORE`] here).
    pub truth: Vec<u8>,
    /// Predicted class per pixel.
    pub pred: Vec<u8>,
    /// Probabilities, class-major (C x pixels), when the predictions have them.
    pub probs: Option<&'a [f32]>,
}

/// The previous image's truth and prediction, with its size and sequence.
struct PreviousFrame {
    truth: Vec<u8>,
    pred: Vec<u8>,
    size: (u32, u32),
    sequence: String,
}

/// The running evaluation.
pub struct Evaluation {
    pub(crate) names: Vec<String>,
    pub(crate) ignored: Vec<bool>,
    pub(crate) truth_lut: [u8; 256],
    pub(crate) rocs: Vec<BinnedRoc>,
    pub(crate) flips: u64,
    pub(crate) stable: u64,
    previous: Option<PreviousFrame>,
    pub(crate) worst: Vec<WorstImage>,
    /// Each sequence's confusion counts and images; the totals are their sums.
    pub(crate) sequences: BTreeMap<String, SequenceTally>,
}

impl Evaluation {
    /// An empty evaluation of the classes `names`; `ignored[k]` leaves class k's truth
    /// pixels out of every metric; `with_probs` keeps a ROC histogram per class.
    pub fn new(names: Vec<String>, ignored: Vec<bool>, with_probs: bool) -> Self {
        let c = names.len();
        let truth_lut = std::array::from_fn(|v| if v < c && ignored[v] { IGNORE } else { v as u8 });
        Self {
            rocs: if with_probs {
                (0..c).map(|_| BinnedRoc::new()).collect()
            } else {
                Vec::new()
            },
            names,
            ignored,
            truth_lut,
            flips: 0,
            stable: 0,
            previous: None,
            worst: Vec::with_capacity(WORST + 1),
            sequences: BTreeMap::new(),
        }
    }

    /// Adds one image.
    pub fn add(&mut self, mut r: ImageResult) -> Result<(), EvalError> {
        let c = self.names.len();
        if self.ignored.iter().any(|&i| i) {
            let lut = &self.truth_lut;
            r.truth.iter_mut().for_each(|t| *t = lut[*t as usize]);
        }
        let mut img_cm = ConfusionMatrix::new(c, IGNORE);
        img_cm.add(&r.truth, &r.pred)?;
        let miou = img_cm.mean_iou_present().unwrap_or(f64::NAN);
        self.keep_if_worst(&r, miou);
        let tally = self
            .sequences
            .entry(r.sequence.to_string())
            .or_insert_with(|| SequenceTally::new(c));
        tally.cm.add_counts(&img_cm);
        tally.images += 1;
        if let Some(p) = r.probs {
            self.add_probs(&r.truth, p);
        }
        // Temporal stability: consecutive list entries of the same size from the same
        // sequence are consecutive video frames; count predicted flips where the truth
        // held.
        let same_clip = |p: &&PreviousFrame| p.size == r.size && p.sequence == r.sequence;
        if let Some(prev) = self.previous.as_ref().filter(same_clip) {
            for i in 0..r.truth.len() {
                if r.truth[i] != IGNORE && prev.truth[i] == r.truth[i] {
                    self.stable += 1;
                    self.flips += u64::from(prev.pred[i] != r.pred[i]);
                }
            }
        }
        self.previous = Some(PreviousFrame {
            truth: r.truth,
            pred: r.pred,
            size: r.size,
            sequence: r.sequence.to_string(),
        });
        Ok(())
    }

    /// Only the few worst images keep their prediction: memory stays flat in the list.
    fn keep_if_worst(&mut self, r: &ImageResult, miou: f64) {
        // The prediction is copied only for an image that is kept.
        if !self.qualifies(miou) {
            return;
        }
        self.keep_worst(WorstImage {
            stem: r.stem.to_string(),
            miou,
            image: r.image.to_path_buf(),
            mask: r.mask.to_path_buf(),
            pred: r.pred.clone(),
        });
    }

    /// Keeps `w` if it is among the [`WORST`] lowest so far.
    pub(crate) fn keep_worst(&mut self, w: WorstImage) {
        if self.qualifies(w.miou) {
            self.worst.push(w);
            // Ties broken by name: the same worst images whatever the order they came in
            // (one run, or shards merged).
            self.worst
                .sort_by(|a, b| a.miou.total_cmp(&b.miou).then_with(|| a.stem.cmp(&b.stem)));
            self.worst.truncate(WORST);
        }
    }

    fn qualifies(&self, miou: f64) -> bool {
        self.worst.len() < WORST || self.worst.last().is_some_and(|x| miou <= x.miou)
    }

    fn add_probs(&mut self, truth: &[u8], p: &[f32]) {
        let n = truth.len();
        for (i, &t) in truth.iter().enumerate() {
            if t == IGNORE {
                continue;
            }
            for (k, roc) in self.rocs.iter_mut().enumerate() {
                roc.add(p[k * n + i], t as usize == k);
            }
        }
    }

    /// Images added so far.
    fn images(&self) -> usize {
        self.sequences.values().map(|s| s.images).sum()
    }

    /// The report of everything added.
    pub fn finish(self) -> EvalReport {
        let c = self.names.len();
        let mut cm = ConfusionMatrix::new(c, IGNORE);
        for s in self.sequences.values() {
            cm.add_counts(&s.cm);
        }
        EvalReport {
            images: self.images(),
            metrics: (0..c).map(|k| cm.class_metrics(k)).collect(),
            aucs: (0..c)
                .map(|k| self.rocs.get(k).and_then(BinnedRoc::auc))
                .collect(),
            matrix: (0..c)
                .map(|t| (0..c).map(|p| cm.get(t, p)).collect())
                .collect(),
            pixel_accuracy: cm.pixel_accuracy(),
            flip_rate: (self.stable > 0).then(|| self.flips as f64 / self.stable as f64),
            stable_pixels: self.stable,
            names: self.names,
            ignored: self.ignored,
            rocs: self.rocs,
            worst: self.worst,
            sequences: sequences::reports(&self.sequences),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn image<'a>(
        stem: &'a str,
        truth: &[u8],
        pred: &[u8],
        probs: Option<&'a [f32]>,
    ) -> ImageResult<'a> {
        ImageResult {
            stem,
            image: Path::new("i.png"),
            mask: Path::new("m.png"),
            size: (truth.len() as u32, 1),
            sequence: "s",
            truth: truth.to_vec(),
            pred: pred.to_vec(),
            probs,
        }
    }

    #[test]
    fn ignored_truth_is_left_out_and_flips_count_where_the_truth_held() {
        let names = vec!["bg".to_string(), "a".into(), "void".into()];
        let mut e = Evaluation::new(names, vec![false, false, true], false);
        e.add(image("f0", &[0, 1, 2, 1], &[0, 1, 1, 1], None))
            .expect("add");
        e.add(image("f1", &[0, 1, 2, 0], &[1, 1, 0, 0], None))
            .expect("add");
        let r = e.finish();
        assert_eq!(r.images, 2);
        // The void pixels are in no row; their predictions count nowhere.
        assert_eq!(r.matrix, vec![vec![2, 1, 0], vec![0, 3, 0], vec![0, 0, 0]]);
        // Stable truth at pixels 0 and 1 (pixel 3 changed, pixel 2 is void): one flip.
        assert_eq!((r.stable_pixels, r.flip_rate), (2, Some(0.5)));
        assert_eq!(r.metrics[1].support, 3);
    }

    #[test]
    fn flips_are_not_counted_across_sequences() {
        let names = vec!["bg".to_string(), "a".into()];
        let mut e = Evaluation::new(names, vec![false, false], false);
        for (sequence, pred) in [("s1", [0u8, 1]), ("s1", [1, 1]), ("s2", [0, 0])] {
            let mut r = image("f", &[0, 1], &pred, None);
            r.sequence = sequence;
            e.add(r).expect("add");
        }
        // Only s1's pair counts: one flip in two stable pixels.
        let r = e.finish();
        assert_eq!((r.stable_pixels, r.flip_rate), (2, Some(0.5)));
    }

    #[test]
    fn the_worst_images_are_kept_in_order_and_rocs_need_probabilities() {
        let names = vec!["bg".to_string(), "a".into()];
        let mut e = Evaluation::new(names, vec![false, false], true);
        let probs = [0.9f32, 0.2, 0.1, 0.8];
        for (i, pred) in [[0u8, 1], [1, 0], [0, 0], [0, 1], [1, 1], [0, 1]]
            .iter()
            .enumerate()
        {
            let stem = format!("f{i}");
            e.add(image(&stem, &[0, 1], pred, Some(&probs)))
                .expect("add");
        }
        let r = e.finish();
        let worst: Vec<(&str, f64)> = r.worst.iter().map(|w| (w.stem.as_str(), w.miou)).collect();
        assert_eq!(worst.len(), WORST);
        assert_eq!(worst[0], ("f1", 0.0));
        assert!(worst.windows(2).all(|w| w[0].1 <= w[1].1), "{worst:?}");
        assert_eq!(r.aucs, vec![Some(1.0), Some(1.0)]);
    }
}
