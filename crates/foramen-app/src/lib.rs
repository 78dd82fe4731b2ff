//! Foramen's operating-room window: the eframe/egui app over a live session
//! (`foramen-pipeline`), its wgpu video view (the overlay shader from `foramen-overlay`),
//! and the runner that opens the window.
//!
//! Each concern in its file: `keys` (key -> action table), `overlay` (whether a mask
//! may be drawn), `status` (status and HUD text, pure), `panels` (drawing them),
//! `present_log` (display latency), `snapshot`, `video_view` (paint callback), `app`
//! (one paint, wiring the above), `window` (eframe's native window).

mod app;
pub mod keys;
pub mod overlay;
mod panels;
pub mod present_log;
mod snapshot;
pub mod status;
mod video_view;
mod window;

pub use app::{AppOptions, ForamenApp};
pub use window::{WindowError, WindowSettings, run_window};
