//! `foramen clip`: a recorded span drawn as the window would draw it, with a caption.

use std::path::{Path, PathBuf};

use foramen_capture::FrameSource;
use foramen_core::config::OverlayMode;

use crate::common;
use crate::common::{foramen, ok};
use crate::{mad, walk};

/// Every frame of a video file.
fn decode_all(path: &Path) -> Vec<foramen_core::Frame> {
    let mut src = foramen_capture::OpenCvSource::open_file(path).expect("open");
    std::iter::from_fn(|| src.next_frame().expect("frame")).collect()
}

/// What `foramen clip` should show for the rows of a recording in `[from, to)` s: per
/// row its raw frame (decoded from its segment) and, where the window would draw the
/// recorded mask (readable, not older than the limit), the compositor's output.
fn expected_clip(
    session: &Path,
    (from, to): (f64, f64),
    mode: OverlayMode,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    use foramen_data::recording::{FrameRows, read_masks};
    let cfg = foramen_core::Config::default();
    let (masks, _) = read_masks(&session.join("masks.bin")).expect("masks");
    let overlay = foramen_core::config::OverlayConfig {
        mode,
        ..cfg.overlay.clone()
    };
    // The window draws the model's classes (the lumbar set) in the theatre's colours.
    let style = foramen_overlay::OverlayStyle::new(&foramen_core::ClassSet::lumbar(), &overlay);
    let mut compositor = foramen_overlay::Compositor::new();
    let rows: Vec<_> = FrameRows::open(&session.join("frames.csv"))
        .expect("csv")
        .map(|r| r.expect("row"))
        .collect();
    let t0 = rows[0].captured_at_us;
    let mut segments: std::collections::BTreeMap<u64, Vec<foramen_core::Frame>> =
        Default::default();
    let mut place = std::collections::BTreeMap::<u64, usize>::new();
    let mut out = vec![];
    for row in &rows {
        let n = place.entry(row.segment).or_default();
        let k = *n;
        *n += 1;
        let t = (row.captured_at_us - t0) as f64 / 1e6;
        if t < from || t >= to {
            continue;
        }
        let frames = segments
            .entry(row.segment)
            .or_insert_with(|| decode_all(&session.join(format!("video-{:05}.mp4", row.segment))));
        let f = &frames[k];
        let mask = row
            .mask_frame
            .filter(|_| row.mask_age_ms.expect("age") <= cfg.inference.max_mask_age_ms)
            .and_then(|id| masks.iter().find(|m| m.frame_id == id));
        let drawn = mask.map(|m| {
            let mask = foramen_core::Mask {
                source_frame_id: m.frame_id,
                source_pts_us: m.pts_us,
                source_captured_at_us: m.captured_at_us,
                width: m.width,
                height: m.height,
                classes: m.classes.clone(),
                confidence: vec![],
                infer_ms: m.infer_ms,
            };
            let mut o = vec![0; f.rgb.len()];
            compositor.composite(&f.rgb, f.width, f.height, &mask, &style, &mut o);
            o
        });
        out.push((f.rgb.to_vec(), drawn));
    }
    out
}

/// A clip's frames against the expected ones (raw frame, composited if drawn) over the
/// rows above the caption band: mean absolute difference to the expected picture, to the
/// raw frame where a mask was drawn, and in the caption's corner.
fn compare_clip(
    frames: &[foramen_core::Frame],
    expected: &[(Vec<u8>, Option<Vec<u8>>)],
    (w, h, band): (usize, usize, usize),
) -> (f64, f64, f64) {
    let (mut want, mut raw, mut caption, mut drawn) = (0.0, 0.0, 0.0, 0);
    for (f, (bare, over)) in frames.iter().zip(expected) {
        let picture = over.as_ref().unwrap_or(bare);
        want += mad(&f.rgb, picture, w, 0..h - band, 0..w);
        if over.is_some() {
            raw += mad(&f.rgb, bare, w, 0..h - band, 0..w);
            drawn += 1;
        }
        caption += mad(&f.rgb, picture, w, h - band / 2..h, 0..w / 3);
    }
    let n = frames.len().max(1) as f64;
    (want / n, raw / f64::from(drawn.max(1)), caption / n)
}

/// A recording to cut clips from, and where they go.
struct Case {
    dir: tempfile::TempDir,
    session: PathBuf,
    /// Width, height and caption band height of the clips.
    geometry: (usize, usize, usize),
}

impl Case {
    /// `foramen clip` of 1-2.5 s into `name` with `extra` flags: its frames and log.
    fn clip(&self, name: &str, extra: &[&str]) -> (Vec<foramen_core::Frame>, String) {
        let out = self.dir.path().join(name);
        let (session_s, out_s) = (
            self.session.display().to_string(),
            out.display().to_string(),
        );
        let mut args = vec!["clip", session_s.as_str(), "--from", "1", "--to", "0:02.5"];
        args.extend_from_slice(&["--out", &out_s]);
        args.extend_from_slice(extra);
        let log = ok(&args);
        (decode_all(&out), log)
    }

    /// Clip in `mode` against the compositor's picture (within `noise`, the codec's own
    /// on raw frames), against the bare frames, against another mode, and its caption.
    fn check_mode(&self, mode: OverlayMode, flag: Option<&str>, noise: f64) {
        let t = std::time::Instant::now();
        let extra: Vec<&str> = flag.iter().flat_map(|f| ["--mode", *f]).collect();
        let (frames, log) = self.clip(&format!("{mode:?}.mp4"), &extra);
        let secs = t.elapsed().as_secs_f64();
        let want = expected_clip(&self.session, (1.0, 2.5), mode);
        assert_eq!(frames.len(), want.len(), "{log}");
        assert!(log.contains(&format!("{} frames", frames.len())), "{log}");
        let drawn = want.iter().filter(|e| e.1.is_some()).count();
        assert!(drawn >= 4, "frames with a fresh mask: {drawn}");
        let (vs_want, vs_raw, caption) = compare_clip(&frames, &want, self.geometry);
        let other = match mode {
            OverlayMode::Contour => OverlayMode::Fill,
            _ => OverlayMode::Contour,
        };
        let other = expected_clip(&self.session, (1.0, 2.5), other);
        let (vs_other, _, _) = compare_clip(&frames, &other, self.geometry);
        eprintln!(
            "{mode:?}: {} frames in {secs:.2} s; mean abs diff: compositor {vs_want:.2} (another \
             mode {vs_other:.2}), bare frames {vs_raw:.2}, raw with --overlay off {noise:.2}, \
             caption band {caption:.1}",
            frames.len()
        );
        // The compositor's picture, but for H.264 4:2:0 at this size: a fill is as close
        // as the raw frames; the saturated outlines lose some colour to chroma halving.
        let limit = if mode == OverlayMode::Fill {
            noise * 1.5 + 0.5
        } else {
            8.0
        };
        assert!(
            vs_want < limit,
            "{mode:?}: the compositor's picture: {vs_want} ({noise})"
        );
        // Outlines alone change few pixels: their picture is nearer the bare frame.
        let apart = if mode == OverlayMode::Contour {
            1.4
        } else {
            2.0
        };
        assert!(
            vs_raw > apart * vs_want,
            "{mode:?}: masks drawn: {vs_raw} vs {vs_want}"
        );
        assert!(
            vs_other > 1.3 * vs_want,
            "{mode:?}: its mode: {vs_other} vs {vs_want}"
        );
        assert!(caption > 15.0, "{mode:?}: a caption band: {caption}");
    }

    /// Bad spans and an output inside the recording: errors naming the flag and the
    /// value, nothing written.
    fn check_refusals(&self) {
        let session_s = self.session.display().to_string();
        let bad = self.dir.path().join("bad.mp4");
        let bad_s = bad.display().to_string();
        for (from, to, says) in [
            ("1:75", "2", "--from"),
            ("1", "abc", "--to"),
            (
                "2",
                "1",
                "--from 2 --to 1: the end (00:01.0) is not after the start (00:02.0)",
            ),
            (
                "600",
                "700",
                "--from 600 --to 700: the span starts at 10:00.0 but the recording ends at",
            ),
        ] {
            let out = foramen(&[
                "clip", &session_s, "--from", from, "--to", to, "--out", &bad_s,
            ]);
            let text = common::text(&out);
            assert!(
                !out.status.success() && text.contains(says),
                "{from} {to}: {text}"
            );
            assert!(text.contains(from) || text.contains(to), "{text}");
            assert!(!bad.exists());
        }
        let inside = self.session.join("clip.mp4").display().to_string();
        let out = foramen(&[
            "clip", &session_s, "--from", "1", "--to", "2", "--out", &inside,
        ]);
        assert!(!out.status.success() && !self.session.join("clip.mp4").exists());
    }

    /// De-identification: the session's source (`device`) appears in no clip and no
    /// report.
    fn check_no_trace_of(&self, device: &str) {
        let toml = std::fs::read_to_string(self.session.join("session.toml")).expect("toml");
        assert!(toml.contains(device), "{toml}");
        let report = self.dir.path().join("report");
        let session_s = self.session.display().to_string();
        ok(&["report", &session_s, "--out", &report.display().to_string()]);
        for f in walk(self.dir.path()) {
            if f.starts_with(&self.session) || !f.is_file() {
                continue;
            }
            let bytes = std::fs::read(&f).expect("read");
            let found = bytes.windows(device.len()).any(|b| b == device.as_bytes());
            assert!(!found, "{} names the source", f.display());
        }
    }

    /// Cuts masks.bin as a crash would, inside the span's first mask; returns how many
    /// rows of the span had a mask.
    fn cut_masks_in_span(&self) -> usize {
        let rows: Vec<_> =
            foramen_data::recording::FrameRows::open(&self.session.join("frames.csv"))
                .expect("csv")
                .map(|r| r.expect("row"))
                .collect();
        let t0 = rows[0].captured_at_us;
        let span: Vec<_> = rows
            .iter()
            .filter(|r| (1.0..2.5).contains(&((r.captured_at_us - t0) as f64 / 1e6)))
            .collect();
        let first = span.iter().find_map(|r| r.mask_frame).expect("a mask");
        let bin = self.session.join("masks.bin");
        let (masks, _) = foramen_data::recording::read_masks(&bin).expect("masks");
        let before: usize = masks
            .iter()
            .take_while(|m| m.frame_id < first)
            .map(|m| foramen_data::recording::MASK_HEADER_BYTES + m.classes.len())
            .sum();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&bin)
            .expect("open");
        f.set_len(before as u64 + 10).expect("cut");
        span.iter().filter(|r| r.mask_frame.is_some()).count()
    }
}

/// Issue 22, item 3: `foramen clip` on a recording made by `live --headless --record`:
/// one frame per row of the span, the recorded masks drawn exactly as the compositor
/// draws them (only codec noise apart; clearly not the bare frames), the raw frames with
/// `--overlay off`, a caption band, clear errors for bad spans with nothing written, a
/// clip of a recording whose masks.bin a crash cut, and no trace of the source.
#[test]
fn clip_draws_the_recorded_masks_of_a_span_with_a_caption() {
    let dir = tempfile::tempdir().expect("tmp");
    let device = "synthetic:4:320x240@25";
    let session = common::record_synthetic(dir.path(), device, 90);
    let (w, h) = (320usize, 240usize);
    let band = foramen_pipeline::clip::caption_band_height(h as u32) as usize;
    let case = Case {
        dir,
        session,
        geometry: (w, h, band),
    };
    // --overlay off first: the raw frames, which gives the codec's own noise.
    let (frames, log) = case.clip("off.mp4", &["--overlay", "off"]);
    let expected = expected_clip(&case.session, (1.0, 2.5), OverlayMode::Both);
    assert_eq!(
        frames.len(),
        expected.len(),
        "one frame per row of the span: {log}"
    );
    // 25 fps asked; a loaded machine's debug build renders the scenes slower.
    assert!(expected.len() >= 6, "{}", expected.len());
    assert!(log.contains("mask drawn on 0"), "{log}");
    let raw: Vec<_> = expected.iter().map(|e| (e.0.clone(), None)).collect();
    let (noise, _, _) = compare_clip(&frames, &raw, case.geometry);
    assert!(noise < 4.0, "raw frames: {noise}");
    case.check_mode(OverlayMode::Both, None, noise);
    case.check_mode(OverlayMode::Fill, Some("fill"), noise);
    case.check_mode(OverlayMode::Contour, Some("contour"), noise);
    case.check_refusals();
    case.check_no_trace_of(device);
    // masks.bin cut by a crash inside the span's first mask: still a clip of every
    // frame, its masks unreadable and drawn clean.
    let with_mask = case.cut_masks_in_span();
    let (frames, log) = case.clip("cut.mp4", &[]);
    assert_eq!(frames.len(), expected.len(), "{log}");
    assert!(
        log.contains(&format!(
            "mask drawn on 0, stale on 0, unreadable on {with_mask},"
        )),
        "{log}"
    );
    let (vs_raw, _, _) = compare_clip(&frames, &raw, case.geometry);
    assert!(vs_raw < 4.0, "drawn clean: {vs_raw}");
}
