//! Pictures of the screen: the annotated frame at full resolution (S key), and the
//! whole window for tests and `make run` (`--snapshot-after-frames/-seconds`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use eframe::egui;
use foramen_core::{Frame, Mask, clock_us, lock};
use foramen_overlay::{Compositor, OverlayStyle};

/// Progress of one window snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SnapshotState {
    /// Not asked for yet.
    #[default]
    NotYet,
    /// egui was asked; the picture comes with a later frame.
    Requested,
    /// Written (or failed and logged): the window may close.
    Saved,
}

/// Saves `frame` with `mask` composited on the CPU, as PNG in `dir`, from thread
/// `snapshot` (the UI thread never does per-pixel work). Returns the file's path.
pub fn save_annotated_frame(
    frame: Arc<Frame>,
    mask: Option<Arc<Mask>>,
    style: Arc<OverlayStyle>,
    dir: &Path,
) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("snapshot-{:06}-{}.png", frame.id, clock_us()));
    let (dir, out_path) = (dir.to_path_buf(), path.clone());
    std::thread::Builder::new()
        .name("snapshot".into())
        .spawn(move || {
            let mut out = frame.rgb.as_ref().clone();
            if let Some(m) = &mask {
                Compositor::new().composite(
                    &frame.rgb,
                    frame.width,
                    frame.height,
                    m,
                    &style,
                    &mut out,
                );
            }
            let saved = std::fs::create_dir_all(&dir)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    image::save_buffer(
                        &out_path,
                        &out,
                        frame.width,
                        frame.height,
                        image::ExtendedColorType::Rgb8,
                    )
                    .map_err(|e| e.to_string())
                });
            if let Err(e) = saved {
                tracing::error!("snapshot {}: {e}", out_path.display());
            }
        })?;
    Ok(path)
}

/// Asks egui for a screenshot of the window (once per `state`) and saves it as PNG.
pub fn request_window_snapshot(
    ctx: &egui::Context,
    path: &Path,
    state: &Arc<Mutex<SnapshotState>>,
) {
    let mut st = lock(state);
    if *st != SnapshotState::NotYet {
        return;
    }
    *st = SnapshotState::Requested;
    let (path, state, ctx2) = (path.to_path_buf(), state.clone(), ctx.clone());
    ctx.request_screenshot(move |img| {
        let rgba: Vec<u8> = img.pixels.iter().flat_map(|c| c.to_array()).collect();
        let saved = image::save_buffer(
            &path,
            &rgba,
            img.size[0] as u32,
            img.size[1] as u32,
            image::ExtendedColorType::Rgba8,
        );
        match saved {
            Ok(()) => tracing::info!("window snapshot: {}", path.display()),
            Err(e) => tracing::error!("window snapshot {}: {e}", path.display()),
        }
        *lock(&state) = SnapshotState::Saved;
        ctx2.request_repaint();
    });
}

/// True when the snapshot was not asked for or has been written.
pub fn done(state: &Mutex<SnapshotState>, asked: bool) -> bool {
    !asked || *lock(state) == SnapshotState::Saved
}
