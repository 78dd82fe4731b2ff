//! Foramen's operating-room window: the eframe/egui app over a live session
//! (`foramen-pipeline`), its wgpu video view (the overlay shader from `foramen-overlay`),
//! and the runner that opens the window.
//!
//! Each concern in its file: `keys` (key -> action table, `[keys]`), `view_state` (what
//! the staff change during a case), `overlay` (whether a mask may be drawn), `badge`
//! (the one status state, pure), `hud` (the engineering HUD's text, pure), `scale`
//! (sizes from the window height), `panels` and `legend` (drawing them), `review_bar`
//! (play, step, slider), `timeline_strip` (a recording's timeline under the slider),
//! `clip_export` (the marked clip, saved on its own thread), `help` (key card, settings
//! view), `tags` (class letters on regions), `present_log` (display latency),
//! `snapshot`, `video_view` (paint callback), `app` (one paint, wiring the above),
//! `window` (eframe's native window).

mod app;
pub mod badge;
pub mod clip_export;
mod help;
pub mod hud;
pub mod keys;
mod legend;
pub mod overlay;
mod panels;
pub mod present_log;
pub mod readiness;
mod review_bar;
pub mod scale;
mod snapshot;
pub mod tags;
pub mod timeline_strip;
mod video_view;
pub mod view_state;
mod window;

pub use app::{AppOptions, ForamenApp};
pub use window::{WindowError, WindowSettings, run_window};
