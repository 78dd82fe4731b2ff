//! The timeline of a recording, one row per second: what the AI saw (each class's share
//! of the mask), whether it was on, and what of the recording is lost or unreadable. The
//! data behind `foramen report RECORDING --out DIR` (`timeline.csv`, `report.html`).
//!
//! Streaming: `masks.bin` and `frames.csv` are read one record or row at a time; what
//! stays in memory is one bin per second of the recording (a few counters and one pixel
//! count per class) and one bit per frame id (which masks were readable), so an hour at
//! 60 fps holds 3,600 bins and 27 KB of bits, never a mask.
//!
//! Definitions (also in the README):
//! - time is the frame's capture time (`captured_at_us`) since the recording's first
//!   frame; a mask counts in the second its source frame was captured;
//! - a class's share is its pixels over all pixels of that second's masks (the mask
//!   grid has no notion of the black surround, which the compositor finds in the video:
//!   the surround counts as background, class 0);
//! - a frame is `on` when `frames.csv` gives it a mask no older than `max_mask_age_ms`,
//!   `stale` when older, `off` when it had none; a second's state is `on` when most of
//!   its frames were, else the more frequent of `stale` and `off`; `missing` when a
//!   mask its frames used cannot be read from `masks.bin` (cut by a crash, damaged) or
//!   it has masks but no `frames.csv` rows; `gap` when it has neither frames nor masks
//!   (no signal, or the recorder stopped);
//! - lost frames are frame ids absent from `frames.csv` (dropped before or by the
//!   recorder), counted in the second of the next recorded frame;
//! - a second's mean confidence is the mean of `frames.csv`'s `mask_conf` over its rows
//!   with a mask (each mask's mean confidence over the pixels it draws); recordings made
//!   before that column existed have none.

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};

mod html;
pub mod nav;

pub use html::{KeyFrame, NO_PATIENT_DATA};

use crate::recording::{FrameRecord, MaskRecord, MaskScan, RecordingError, scan_masks};

/// A recording whose timeline cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// A file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// `session.toml` is not a session header.
    #[error("{}: {reason}", path.display())]
    Session {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `masks.bin` could not be read.
    #[error(transparent)]
    Masks(#[from] RecordingError),
}

/// What the report uses of `session.toml`: nothing that names the patient or the source.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct SessionInfo {
    /// The model file.
    #[serde(default)]
    pub model: String,
    /// Its size and CRC-32 when the recording started (which version of the model ran).
    #[serde(default)]
    pub model_fingerprint: String,
    /// Frame rate.
    #[serde(default)]
    pub fps: f64,
    /// The model's class names.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Their colours.
    #[serde(default)]
    pub colors: Vec<[u8; 3]>,
}

/// One second of the recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Second {
    /// `frames.csv` rows.
    pub frames: u64,
    /// Frame ids missing before this second's rows.
    pub lost: u64,
    /// Frames with a fresh mask, a stale mask, no mask.
    pub on: u64,
    /// See `on`.
    pub stale: u64,
    /// See `on`.
    pub off: u64,
    /// Frames whose mask is not readable from `masks.bin`.
    pub missing_masks: u64,
    /// Readable masks whose source frame was captured in this second.
    pub masks: u64,
    /// Their pixels.
    pub pixels: u64,
    /// Their pixels per class.
    pub class_pixels: Vec<u64>,
    /// Index of this second's first `frames.csv` row (0-based, complete rows only),
    /// which is the frame's index in the recording's video.
    pub first_row: Option<u64>,
    /// Sum of the rows' `mask_conf` and the rows that had one.
    pub confidence: (f64, u64),
}

impl Second {
    /// Class `k`'s share of this second's mask pixels (`None` without masks).
    pub fn share(&self, k: usize) -> Option<f64> {
        (self.pixels > 0)
            .then(|| self.class_pixels.get(k).copied().unwrap_or(0) as f64 / self.pixels as f64)
    }

    /// Mean confidence of the masks on this second's frames (`None` without any).
    pub fn mean_confidence(&self) -> Option<f64> {
        (self.confidence.1 > 0).then(|| self.confidence.0 / self.confidence.1 as f64)
    }

    /// `on`, `stale`, `off`, `missing` or `gap` (see the module's definitions).
    pub fn state(&self) -> &'static str {
        if self.missing_masks > 0 || (self.frames == 0 && self.masks > 0) {
            "missing"
        } else if self.frames == 0 {
            "gap"
        } else if self.on * 2 > self.frames {
            "on"
        } else if self.stale >= self.off {
            "stale"
        } else {
            "off"
        }
    }
}

/// A recording's timeline and integrity summary.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// The recording folder.
    pub dir: PathBuf,
    /// From `session.toml`.
    pub session: SessionInfo,
    /// One bin per second from the first frame.
    pub seconds: Vec<Second>,
    /// The scan of `masks.bin`.
    pub masks: MaskScan,
}

/// Which mask ids `masks.bin` holds: one bit per id from the first.
#[derive(Default)]
struct IdBits {
    base: Option<u64>,
    words: Vec<u64>,
}

impl IdBits {
    /// Marks `id` (ids far beyond the first are not kept: they read as missing).
    fn insert(&mut self, id: u64) {
        let base = *self.base.get_or_insert(id);
        let Some(i) = id.checked_sub(base).filter(|&i| i < 1 << 32) else {
            return;
        };
        let w = (i / 64) as usize;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << (i % 64);
    }

    fn contains(&self, id: u64) -> bool {
        let Some(i) = self.base.and_then(|b| id.checked_sub(b)) else {
            return false;
        };
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// A class of the figure: its name and colour.
pub type Series = (String, [u8; 3]);

/// A parsed `frames.csv` row: id, capture time, mask id, age and confidence.
type Row = (u64, u64, Option<u64>, Option<f64>, Option<f64>);

/// Parses one `frames.csv` line; `None` for the header or a cut or damaged row.
fn parse_row(line: &str) -> Option<Row> {
    let r = FrameRecord::parse(line)?;
    Some((
        r.frame_id,
        r.captured_at_us,
        r.mask_frame,
        r.mask_age_ms,
        r.mask_conf,
    ))
}

/// Streams the complete rows of `frames.csv` (none when the file is absent).
fn each_row(path: &Path, mut each: impl FnMut(Row)) -> Result<(), TimelineError> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let io = |error| TimelineError::Io {
        path: path.to_path_buf(),
        error,
    };
    for line in std::io::BufReader::new(file).split(b'\n') {
        if let Some(row) = parse_row(&String::from_utf8_lossy(&line.map_err(io)?)) {
            each(row);
        }
    }
    Ok(())
}

impl Timeline {
    /// Reads the recording folder `dir` (streamed, see the module) with masks older than
    /// `max_mask_age_ms` counted as stale.
    pub fn read(dir: &Path, max_mask_age_ms: f64) -> Result<Self, TimelineError> {
        let session = read_session(&dir.join("session.toml"))?;
        let csv = dir.join("frames.csv");
        let bin = dir.join("masks.bin");
        let mut t0 = None;
        each_row(&csv, |r| {
            t0.get_or_insert(r.1);
        })?;
        let mut t = Self {
            dir: dir.to_path_buf(),
            seconds: vec![],
            masks: MaskScan::default(),
            session,
        };
        let mut ids = IdBits::default();
        if bin.exists() {
            t.masks = scan_masks(&bin, |m| {
                ids.insert(m.frame_id);
                let t0 = *t0.get_or_insert(m.captured_at_us);
                t.add_mask(&m, t0);
            })?;
        }
        let t0 = t0.unwrap_or(0);
        let mut prev: Option<u64> = None;
        let mut row = 0u64;
        each_row(&csv, |(id, at, mask, age, conf)| {
            let s = t.bin(at.saturating_sub(t0));
            s.first_row.get_or_insert(row);
            row += 1;
            if let (Some(_), Some(c)) = (mask, conf) {
                s.confidence.0 += c;
                s.confidence.1 += 1;
            }
            s.frames += 1;
            s.lost += prev.map_or(0, |p| id.saturating_sub(p + 1));
            prev = Some(id);
            match (mask, age) {
                (Some(m), _) if !ids.contains(m) => s.missing_masks += 1,
                _ => {}
            }
            match age {
                Some(a) if mask.is_some() && a <= max_mask_age_ms => s.on += 1,
                Some(_) if mask.is_some() => s.stale += 1,
                _ => s.off += 1,
            }
        })?;
        Ok(t)
    }

    /// The bin of `us` microseconds after the first frame, created as needed.
    fn bin(&mut self, us: u64) -> &mut Second {
        let i = (us / 1_000_000) as usize;
        if i >= self.seconds.len() {
            let classes = self.session.classes.len();
            self.seconds.resize_with(i + 1, || Second {
                class_pixels: vec![0; classes],
                ..Second::default()
            });
        }
        &mut self.seconds[i]
    }

    fn add_mask(&mut self, m: &MaskRecord, t0: u64) {
        let mut hist = [0u64; 256];
        for &c in &m.classes {
            hist[c as usize] += 1;
        }
        let s = self.bin(m.captured_at_us.saturating_sub(t0));
        s.masks += 1;
        s.pixels += m.classes.len() as u64;
        let used = hist.iter().rposition(|&n| n > 0).map_or(0, |k| k + 1);
        if s.class_pixels.len() < used {
            s.class_pixels.resize(used, 0);
        }
        for (k, n) in hist[..used].iter().enumerate() {
            s.class_pixels[k] += n;
        }
    }

    /// Class names: the session's, then `class<k>` for any index beyond them.
    pub fn class_names(&self) -> Vec<String> {
        let n = self
            .seconds
            .iter()
            .map(|s| s.class_pixels.len())
            .chain([self.session.classes.len()])
            .max()
            .unwrap_or(0);
        (0..n)
            .map(|k| match self.session.classes.get(k) {
                Some(name) => name.clone(),
                None => format!("class{k}"),
            })
            .collect()
    }

    /// The figure's series: each class but background (class 0) with its colour, and per
    /// second their shares (0 without masks).
    pub fn figure_series(&self) -> (Vec<Series>, Vec<Vec<f64>>) {
        let names = self.class_names();
        let classes = (1..names.len())
            .map(|k| {
                let color = self
                    .session
                    .colors
                    .get(k)
                    .copied()
                    .unwrap_or([128, 128, 128]);
                (names[k].clone(), color)
            })
            .collect();
        let shares = self
            .seconds
            .iter()
            .map(|s| {
                (1..names.len())
                    .map(|k| s.share(k).unwrap_or(0.0))
                    .collect()
            })
            .collect();
        (classes, shares)
    }

    /// `timeline.csv`: a header, then one row per second.
    pub fn csv(&self) -> String {
        let names = self.class_names();
        let mut out = String::from(
            "second,frames,lost_frames,masks,on_frames,stale_frames,off_frames,missing_masks,state,\
             mean_confidence",
        );
        for n in &names {
            let _ = write!(out, ",share_{}", n.replace([',', '"', '\n'], "_"));
        }
        out.push('\n');
        for (i, s) in self.seconds.iter().enumerate() {
            let _ = write!(
                out,
                "{i},{},{},{},{},{},{},{},{}",
                s.frames,
                s.lost,
                s.masks,
                s.on,
                s.stale,
                s.off,
                s.missing_masks,
                s.state()
            );
            match s.mean_confidence() {
                Some(c) => write!(out, ",{c:.4}"),
                None => write!(out, ","),
            }
            .ok();
            for k in 0..names.len() {
                match s.share(k) {
                    Some(v) => write!(out, ",{v:.6}"),
                    None => write!(out, ","),
                }
                .ok();
            }
            out.push('\n');
        }
        out
    }

    /// Runs of seconds in a state other than `on`: (first, last, state).
    pub fn bands(&self) -> Vec<(usize, usize, &'static str)> {
        let mut out: Vec<(usize, usize, &'static str)> = vec![];
        for (i, s) in self.seconds.iter().enumerate() {
            let state = s.state();
            match out.last_mut() {
                Some(b) if b.2 == state && b.1 + 1 == i => b.1 = i,
                _ if state != "on" => out.push((i, i, state)),
                _ => {}
            }
        }
        out
    }

    /// Totals over the recording: rows, lost frames, frames with an unreadable mask.
    pub fn totals(&self) -> (u64, u64, u64) {
        self.seconds.iter().fold((0, 0, 0), |(f, l, m), s| {
            (f + s.frames, l + s.lost, m + s.missing_masks)
        })
    }

    /// The first and last second marked `missing`, if any.
    pub fn missing_span(&self) -> Option<(usize, usize)> {
        let mut it = self.bands().into_iter().filter(|b| b.2 == "missing");
        let first = it.next()?;
        Some((first.0, it.next_back().map_or(first.1, |b| b.1)))
    }

    /// The integrity summary, one line.
    pub fn summary(&self) -> String {
        let (frames, lost, missing) = self.totals();
        let span = match self.missing_span() {
            Some((a, b)) => format!("missing from {a} s to {b} s"),
            None => "nothing missing".into(),
        };
        format!(
            "{} s, {frames} frames, {} masks, {lost} lost frames, {missing} frames with an \
             unreadable mask, {} damaged region(s){}, {span}",
            self.seconds.len(),
            self.masks.records,
            self.masks.damaged_regions,
            if self.masks.cut {
                ", last mask cut"
            } else {
                ""
            },
        )
    }
}

/// Reads what the report uses of `session.toml`.
fn read_session(path: &Path) -> Result<SessionInfo, TimelineError> {
    let text = std::fs::read_to_string(path).map_err(|error| TimelineError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    toml::from_str(&text).map_err(|e| TimelineError::Session {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
