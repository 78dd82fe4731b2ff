//! The timeline strip of `foramen view RECORDING`: the recording's own timeline
//! (`foramen_data::timeline`, the same one `foramen report` draws) under the seek slider,
//! one column per second (or per few seconds): each class's share of the picture stacked
//! in the class colours, a band across the top where the AI was not on (stale amber, off
//! grey, missing red, no frames black), the current position, the in and out marks.
//! A click or drag on it seeks there.
//!
//! The timeline is read on its own thread (an hour takes a few seconds, streamed) and
//! turned into one texture once; each paint draws that texture and three lines.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use eframe::egui::{self, Color32, ColorImage, Rect, Sense, Stroke, TextureHandle, pos2, vec2};
use foramen_data::timeline::Timeline;

/// Columns of the strip's texture: a longer recording shares columns between seconds.
pub const MAX_COLUMNS: usize = 1800;
/// Rows of the texture: the state band on top, the class shares under it.
pub const ROWS: usize = 32;
/// Rows of the state band.
pub const BAND_ROWS: usize = 7;

/// The strip's colour for a second's state; `None` where the AI was on.
pub fn state_color(state: &str) -> Option<[u8; 3]> {
    match state {
        "stale" => Some([240, 170, 30]),
        "off" => Some([140, 140, 140]),
        "missing" => Some([230, 60, 50]),
        "gap" => Some([0, 0, 0]),
        _ => None,
    }
}

/// The seconds column `x` of `columns` stands for.
fn seconds_of(x: usize, columns: usize, seconds: usize) -> std::ops::Range<usize> {
    let a = x * seconds / columns;
    let b = ((x + 1) * seconds / columns).max(a + 1);
    a..b.min(seconds)
}

/// The smallest full scale of the strip: a recording where the classes never cover
/// more than this is drawn against it, so that noise does not fill the strip.
pub const MIN_FULL_SCALE: f64 = 0.05;

/// Mean share of class `k` over `secs`.
fn mean_share(secs: &[foramen_data::timeline::Second], k: usize) -> f64 {
    secs.iter().map(|s| s.share(k).unwrap_or(0.0)).sum::<f64>() / secs.len().max(1) as f64
}

/// The strip as an image, `min(seconds, MAX_COLUMNS)` columns by [`ROWS`]: per column the
/// mean share of each class (`colors[k]` for class `k`, background not drawn) stacked
/// from the bottom, the fullest column of the recording filling its height (the
/// surround and the tissue no class covers keep every share well under 100 %), and the
/// state band of its most serious second (missing, gap, off, stale) on top.
pub fn strip_image(t: &Timeline, colors: &[[u8; 3]]) -> ColorImage {
    let n = t.seconds.len().max(1);
    let columns = n.min(MAX_COLUMNS);
    let mut img = ColorImage::filled([columns, ROWS], Color32::from_gray(28));
    let share_rows = ROWS - BAND_ROWS;
    let column_secs = |x| &t.seconds[seconds_of(x, columns, t.seconds.len())];
    let full_scale = (0..columns)
        .map(|x| {
            (1..colors.len())
                .map(|k| mean_share(column_secs(x), k))
                .sum::<f64>()
        })
        .fold(MIN_FULL_SCALE, f64::max);
    for x in 0..columns {
        let secs = column_secs(x);
        let worst = ["missing", "gap", "off", "stale"]
            .into_iter()
            .find(|w| secs.iter().any(|s| s.state() == *w));
        if let Some([r, g, b]) = worst.and_then(state_color) {
            for y in 0..BAND_ROWS {
                img[(x, y)] = Color32::from_rgb(r, g, b);
            }
        }
        let mut y = ROWS;
        for (k, c) in colors.iter().enumerate().skip(1) {
            let rows = (mean_share(secs, k) / full_scale * share_rows as f64).round() as usize;
            for _ in 0..rows.min(y - BAND_ROWS) {
                y -= 1;
                img[(x, y)] = Color32::from_rgb(c[0], c[1], c[2]);
            }
        }
    }
    img
}

/// The review window's timeline: loading, then the texture.
#[derive(Default)]
pub struct ReviewTimeline {
    /// Filled by the loading thread: the timeline, or why there is none.
    loaded: Arc<OnceLock<Result<Arc<Timeline>, String>>>,
    texture: Option<TextureHandle>,
    /// The recording folder.
    pub dir: Option<PathBuf>,
}

impl ReviewTimeline {
    /// Starts reading the timeline of recording `dir` on thread `timeline`.
    pub fn load(dir: &Path, max_mask_age_ms: f64) -> Self {
        let loaded = Arc::new(OnceLock::new());
        let slot = loaded.clone();
        let path = dir.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("timeline".into())
            .spawn(move || {
                let r = Timeline::read(&path, max_mask_age_ms).map(Arc::new);
                let _ = slot.set(r.map_err(|e| e.to_string()));
            });
        if let Err(e) = spawned {
            let _ = loaded.set(Err(format!("cannot start the timeline thread: {e}")));
        }
        Self {
            loaded,
            texture: None,
            dir: Some(dir.to_path_buf()),
        }
    }

    /// The timeline once read (never blocks).
    pub fn timeline(&self) -> Option<&Arc<Timeline>> {
        self.loaded.get().and_then(|r| r.as_ref().ok())
    }

    /// Why there is no timeline, once that is known.
    pub fn error(&self) -> Option<&str> {
        self.loaded
            .get()
            .and_then(|r| r.as_ref().err())
            .map(String::as_str)
    }

    /// The strip's texture, made on first use after loading.
    pub fn texture(&mut self, ctx: &egui::Context, colors: &[[u8; 3]]) -> Option<&TextureHandle> {
        if self.texture.is_none() {
            let img = strip_image(self.timeline()?, colors);
            self.texture =
                Some(ctx.load_texture("timeline-strip", img, egui::TextureOptions::NEAREST));
        }
        self.texture.as_ref()
    }
}

/// What the strip shows besides the texture, in seconds of the recording.
#[derive(Clone, Copy, Debug, Default)]
pub struct StripMarks {
    /// Seconds in the recording.
    pub seconds: usize,
    /// The shown frame's second.
    pub cursor: Option<usize>,
    /// The in mark.
    pub mark_in: Option<usize>,
    /// The out mark.
    pub mark_out: Option<usize>,
}

/// Draws the strip `width` x `height` points; returns where it is and the second
/// clicked or dragged to.
pub fn draw(
    ui: &mut egui::Ui,
    texture: &TextureHandle,
    marks: StripMarks,
    width: f32,
    height: f32,
) -> (Rect, Option<usize>) {
    let (rect, response) = ui.allocate_exact_size(vec2(width, height), Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    let uv = Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0));
    painter.image(texture.id(), rect, uv, Color32::WHITE);
    let n = marks.seconds.max(1) as f32;
    let x_of = |s: usize| rect.left() + (s as f32 + 0.5) / n * rect.width();
    for (mark, color) in [
        (marks.mark_in, Color32::from_rgb(80, 200, 120)),
        (marks.mark_out, Color32::from_rgb(230, 60, 50)),
    ] {
        if let Some(s) = mark {
            painter.vline(x_of(s), rect.y_range(), Stroke::new(2.0, color));
        }
    }
    if let Some(s) = marks.cursor {
        painter.vline(x_of(s), rect.y_range(), Stroke::new(2.0, Color32::WHITE));
    }
    let clicked = response.clicked() || response.dragged();
    let second = response
        .interact_pointer_pos()
        .filter(|_| clicked)
        .map(|pos| {
            let f = ((pos.x - rect.left()) / rect.width()).clamp(0.0, 1.0);
            ((f * n) as usize).min(marks.seconds.saturating_sub(1))
        });
    (rect, second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use foramen_data::recording::MaskScan;
    use foramen_data::timeline::{Second, SessionInfo};

    fn second(share1: f64, stale: bool) -> Second {
        let px = (share1 * 100.0) as u64;
        Second {
            frames: 10,
            on: if stale { 0 } else { 10 },
            stale: if stale { 10 } else { 0 },
            masks: 10,
            pixels: 100,
            class_pixels: vec![100 - px, px],
            first_row: Some(0),
            ..Second::default()
        }
    }

    #[test]
    fn columns_show_the_class_share_and_the_state_band() {
        let t = Timeline {
            dir: "r".into(),
            session: SessionInfo::default(),
            seconds: vec![second(0.0, false), second(1.0, false), second(0.5, true)],
            masks: MaskScan::default(),
        };
        let red = [255, 0, 0];
        let img = strip_image(&t, &[[0, 0, 0], red]);
        assert_eq!(img.size, [3, ROWS]);
        let is_red = |x, y| img[(x, y)] == Color32::from_rgb(255, 0, 0);
        let reds = |x| (0..ROWS).filter(|&y| is_red(x, y)).count();
        assert_eq!(reds(0), 0);
        assert_eq!(reds(1), ROWS - BAND_ROWS, "100 % fills under the band");
        assert_eq!(reds(2), (ROWS - BAND_ROWS) / 2 + (ROWS - BAND_ROWS) % 2);
        assert!(is_red(2, ROWS - 1), "stacked from the bottom");
        let amber = Color32::from_rgb(240, 170, 30);
        assert_eq!(img[(2, 0)], amber, "stale second: amber band");
        assert_ne!(img[(1, 0)], amber);
    }

    #[test]
    fn the_fullest_column_fills_the_strip() {
        let t = Timeline {
            dir: "r".into(),
            session: SessionInfo::default(),
            seconds: vec![second(0.2, false), second(0.1, false), second(0.01, false)],
            masks: MaskScan::default(),
        };
        let img = strip_image(&t, &[[0, 0, 0], [255, 0, 0]]);
        let reds = |x| {
            (0..ROWS)
                .filter(|&y| img[(x, y)] == Color32::from_rgb(255, 0, 0))
                .count()
        };
        let rows = ROWS - BAND_ROWS;
        assert_eq!([reds(0), reds(1), reds(2)], [rows, rows / 2 + rows % 2, 1]);
    }

    #[test]
    fn a_long_recording_shares_columns_and_keeps_its_worst_state() {
        let mut seconds = vec![second(0.2, false); 2 * MAX_COLUMNS];
        seconds[101] = second(0.2, true);
        let t = Timeline {
            dir: "r".into(),
            session: SessionInfo::default(),
            seconds,
            masks: MaskScan::default(),
        };
        let img = strip_image(&t, &[[0, 0, 0], [255, 0, 0]]);
        assert_eq!(img.size[0], MAX_COLUMNS);
        assert_eq!(
            img[(50, 0)],
            Color32::from_rgb(240, 170, 30),
            "second 101 is in column 50"
        );
        assert_eq!(seconds_of(50, MAX_COLUMNS, 2 * MAX_COLUMNS), 100..102);
    }
}
