//! `foramen clip RECORDING --from T0 --to T1 --out clip.mp4`: a span of a recording with
//! its recorded masks drawn as the window draws them and a caption
//! (`foramen_pipeline::clip`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use foramen_core::config::OverlayMode;
use foramen_pipeline::clip::{self, ClipSettings};

/// `foramen clip` options.
#[derive(clap::Args)]
pub struct Args {
    /// The recording folder (with session.toml, frames.csv), cut by a crash or not.
    dir: PathBuf,
    /// Start, in the recording's time (since its first frame): 75, 75.5, 1:15, 1:15.5.
    #[arg(long, value_parser = clip::parse_time)]
    from: f64,
    /// End, not included; the same forms.
    #[arg(long, value_parser = clip::parse_time)]
    to: f64,
    /// The clip (MP4), outside the recording.
    #[arg(long)]
    out: PathBuf,
    /// Draw the recorded masks (on), or only the caption over the raw frames (off).
    #[arg(long, value_parser = ["on", "off"], default_value = "on")]
    overlay: String,
    /// fill, contour or both (default: [overlay].mode).
    #[arg(long, value_parser = clip::parse_mode)]
    mode: Option<OverlayMode>,
}

/// Runs `foramen clip`: resolves the span, writes the clip, says what it holds.
pub fn exec(a: Args, config: &foramen_core::Config) -> Result<()> {
    foramen_core::paths::check_output(&a.out, &[&a.dir])?;
    let span = clip::resolve_span(&a.dir, a.from, a.to)
        .with_context(|| format!("--from {} --to {}", a.from, a.to))?;
    let mut settings = ClipSettings::from_config(config);
    settings.draw_masks = a.overlay == "on";
    settings.overlay.mode = a.mode.unwrap_or(settings.overlay.mode);
    let pb = crate::progress::bar(span.rows.end - span.rows.start, "frames");
    let summary = clip::clip_rows(&a.dir, span.rows, &a.out, &settings, &mut |done, _| {
        pb.set_position(done);
        true
    })
    .with_context(|| format!("clip of {}", a.dir.display()))?;
    pb.finish_and_clear();
    say!("{summary}");
    Ok(())
}
