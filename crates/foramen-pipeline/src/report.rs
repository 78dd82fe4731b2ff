//! `foramen report RECORDING --out DIR`: a recording's timeline (`timeline.csv`, the
//! figure `timeline.svg`/`.png`), its key frames (`keyframes/*.png`: the largest
//! exposure of each class, spread over the case, painted as a clip paints them) and
//! `report.html`, from the recording alone (`foramen_data::timeline`, streamed).

use std::path::{Path, PathBuf};

use foramen_core::Config;
use foramen_data::timeline::{KeyFrame, Timeline, TimelineError};
use foramen_eval::plot::{PlotError, timeline_svg, write_svg_png};

use crate::clip::{ClipError, ClipSettings, stills};

/// Key frames per class: the case cut into this many parts, the largest exposure of
/// each part.
pub const KEY_FRAMES_PER_CLASS: usize = 3;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The recording's timeline could not be read.
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    /// The figure could not be rendered.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// The key frames could not be painted.
    #[error("key frames")]
    Stills(#[source] ClipError),
    /// A file could not be written.
    #[error("writing {}: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn write_err(path: &Path) -> impl Fn(String) -> ReportError + '_ {
    move |reason| ReportError::Write {
        path: path.to_path_buf(),
        reason,
    }
}

/// Writes the report of recording `dir` into `out` (the caller checks that `out` lies
/// outside the recording) with `cfg`'s age limit and overlay style; the timeline read.
pub fn write_report(dir: &Path, out: &Path, cfg: &Config) -> Result<Timeline, ReportError> {
    let t = Timeline::read(dir, cfg.inference.max_mask_age_ms)?;
    std::fs::create_dir_all(out).map_err(|e| write_err(out)(e.to_string()))?;
    let (classes, shares) = t.figure_series();
    let svg = timeline_svg(&classes, &shares, &t.bands());
    write_svg_png(&svg, out, "timeline")?;
    let keys = key_frames(&t, out, cfg)?;
    for (name, text) in [
        ("timeline.csv", t.csv()),
        ("report.html", t.html(&svg, &keys)),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| write_err(&path)(e.to_string()))?;
    }
    Ok(t)
}

/// Paints the key frames of every class but the background into `out/keyframes`: for
/// each of [`Timeline::key_seconds`], the first frame of that second shown with its mask.
fn key_frames(t: &Timeline, out: &Path, cfg: &Config) -> Result<Vec<KeyFrame>, ReportError> {
    let names = t.class_names();
    let mut keys = vec![];
    let mut rows = vec![];
    for (k, name) in names.iter().enumerate().skip(1) {
        for second in t.key_seconds(k, KEY_FRAMES_PER_CLASS) {
            let s = &t.seconds[second];
            let Some(first) = s.first_row else { continue };
            rows.push(first..first + s.frames.max(1));
            keys.push(KeyFrame {
                class: name.clone(),
                second,
                share: s.share(k).unwrap_or(0.0),
                file: format!(
                    "keyframes/{}-{:02}-{:02}.png",
                    file_safe(name),
                    second / 60,
                    second % 60
                ),
            });
        }
    }
    if keys.is_empty() {
        return Ok(keys);
    }
    let folder = out.join("keyframes");
    std::fs::create_dir_all(&folder).map_err(|e| write_err(&folder)(e.to_string()))?;
    let mut save = |(k, _row, w, h, rgb): crate::clip::Still<'_>| {
        let path = out.join(&keys[k].file);
        image::save_buffer(&path, rgb, w, h, image::ExtendedColorType::Rgb8)
            .map_err(|e| ClipError::Span(format!("{}: {e}", path.display())))
    };
    stills(&t.dir, &rows, &ClipSettings::from_config(cfg), &mut save)
        .map_err(ReportError::Stills)?;
    // A key frame whose video could not be decoded (a segment cut by a crash) is left out.
    Ok(keys
        .into_iter()
        .filter(|k| out.join(&k.file).is_file())
        .collect())
}

/// A class name as a file name: letters and digits kept, anything else `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::tests::{decode, record};
    use foramen_data::recording::read_masks;

    #[test]
    fn a_still_is_the_first_frame_of_its_span_shown_with_its_mask_else_its_last() {
        let root = tempfile::tempdir().expect("tmp");
        let dir = record(root.path(), 50);
        // Masks every 5 frames: rows 3 and 4 carry masks 120 and 160 ms old, row 5 a
        // fresh one. With a 100 ms limit, [3, 10) gives row 5 and [3, 5) row 4 (clean).
        let mut cfg = Config::default();
        cfg.inference.max_mask_age_ms = 100.0;
        let settings = ClipSettings::from_config(&cfg);
        let mut got = vec![];
        let n = stills(&dir, &[3..10, 3..5, 40..41], &settings, &mut |(
            k,
            row,
            w,
            h,
            rgb,
        )| {
            got.push((k, row, w, h, rgb.to_vec()));
            Ok(())
        })
        .expect("stills");
        assert_eq!(n, 3);
        let rows: Vec<(usize, u64)> = got.iter().map(|g| (g.0, g.1)).collect();
        assert_eq!(rows, [(1, 4), (0, 5), (2, 40)], "in row order");
        let raw = decode(&dir.join("video-00000.mp4"));
        let (w, h) = (got[0].2 as usize, got[0].3 as usize);
        let band = crate::clip::caption_band_height(h as u32) as usize;
        let top = |rgb: &[u8]| rgb[..(h - band) * w * 3].to_vec();
        // Row 4: stale, the frame as recorded; row 5: its mask drawn over it.
        assert_eq!(top(&got[0].4), top(&raw[4].rgb));
        assert_ne!(top(&got[1].4), top(&raw[5].rgb));
    }

    #[test]
    fn the_report_has_key_frames_of_each_class_spread_over_the_case() {
        let root = tempfile::tempdir().expect("tmp");
        let dir = record(root.path(), 100);
        let out = root.path().join("report");
        let t = write_report(&dir, &out, &Config::default()).expect("report");
        assert_eq!(t.seconds.len(), 4);
        let (masks, _) = read_masks(&dir.join("masks.bin")).expect("masks");
        assert_eq!(t.masks.records, masks.len() as u64);
        let html = std::fs::read_to_string(out.join("report.html")).expect("html");
        // Every class covers 25 % of every mask: each gets one key frame per third of
        // the 4 s (seconds 0, 1 and 2), the earliest of equals.
        for class in ["bone", "ligament", "disc"] {
            for second in 0..3 {
                let file = format!("keyframes/{class}-00-{second:02}.png");
                assert!(out.join(&file).is_file(), "{file}");
                assert!(html.contains(&format!("src=\"{file}\"")), "{html}");
            }
        }
        assert!(
            !html.contains("background-00"),
            "no key frames of the background"
        );
        assert!(
            !html.contains("patient-smith"),
            "the source is not in the report"
        );
    }
}
