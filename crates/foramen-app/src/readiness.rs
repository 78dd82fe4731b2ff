//! The readiness panel at the start of a live case: the same checks and words as
//! `foramen check` (model on the intended provider, a warm inference within the budget,
//! the capture's size and rate, the recording folder), judged from the running session.
//! Green READY only when all pass; it then steps aside. Otherwise it says what failed
//! and stays until it passes or the staff close it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui::{self, Align2, Color32, RichText};
use foramen_core::{Config, lock};
use foramen_pipeline::check::recording::{DataRate, check_recording};
use foramen_pipeline::check::session::{SessionMeasures, session_items};
use foramen_pipeline::check::{CheckItem, Outcome, Readiness};

use crate::panels::panel;
use crate::scale::UiScale;

/// How long READY stays on screen once everything has passed.
pub const READY_SHOWN_US: u64 = 2_000_000;

/// The panel's state over a case.
#[derive(Default)]
pub struct ReadinessPanel {
    /// The recording folder's item, from a one-off check off the UI thread.
    recording: Arc<Mutex<Option<CheckItem>>>,
    started: bool,
    ready_at_us: Option<u64>,
    last_verdict: String,
    /// Closed by the staff, or READY shown long enough.
    pub done: bool,
}

impl ReadinessPanel {
    /// Starts the recording folder's check (thread `readiness`; it ends by itself,
    /// within its own time limit).
    fn start_recording_check(&mut self, cfg: &Config, rate: DataRate) {
        self.started = true;
        let (slot, rec) = (self.recording.clone(), cfg.recording.clone());
        let spawned = std::thread::Builder::new()
            .name("readiness".into())
            .spawn(move || {
                let item = check_recording(&rec, &rate, Duration::from_secs(5));
                *lock(&slot) = Some(item);
            });
        if let Err(e) = spawned {
            *lock(&self.recording) = Some(CheckItem::fail("recording", e.to_string()));
        }
    }

    /// This paint's readiness, or `None` once the panel is done.
    pub fn update(
        &mut self,
        cfg: &Config,
        m: &SessionMeasures<'_>,
        now_us: u64,
    ) -> Option<Readiness> {
        if self.done {
            return None;
        }
        if !self.started {
            let rate = DataRate {
                width: m.info.width,
                height: m.info.height,
                fps: m.info.fps,
                mask_size: None,
            };
            self.start_recording_check(cfg, rate);
        }
        let mut items: Vec<CheckItem> = session_items(cfg, m).into();
        items.push(lock(&self.recording).clone().unwrap_or_else(|| {
            CheckItem::skipped("recording", "waiting: checking the recording folder")
        }));
        let r = Readiness { items };
        let verdict = r.verdict();
        if verdict != self.last_verdict && !r.items.iter().any(|i| i.detail.starts_with("waiting"))
        {
            // Once per change, with every line, so the log tells what the panel said.
            let lines: Vec<String> = r.items.iter().map(CheckItem::line).collect();
            tracing::info!("readiness: {verdict}\n{}", lines.join("\n"));
            self.last_verdict = verdict;
        }
        match (r.ready(), self.ready_at_us) {
            (true, None) => self.ready_at_us = Some(now_us),
            (true, Some(t)) if now_us.saturating_sub(t) > READY_SHOWN_US => self.done = true,
            (false, _) => self.ready_at_us = None,
            _ => {}
        }
        Some(r)
    }
}

/// Draws the panel at the centre; true when the staff close it.
pub fn show(ctx: &egui::Context, s: UiScale, r: &Readiness) -> bool {
    let mut close = false;
    let waiting = r
        .items
        .iter()
        .any(|i| i.outcome == Outcome::Skipped && i.detail.starts_with("waiting"));
    let failed = r.items.iter().any(|i| i.outcome == Outcome::Fail);
    let (title, tone) = if r.ready() {
        ("READY".to_string(), Color32::from_rgb(80, 200, 120))
    } else if failed {
        (r.verdict(), Color32::from_rgb(230, 60, 50))
    } else if waiting {
        ("CHECKING...".to_string(), Color32::from_rgb(240, 170, 30))
    } else {
        (r.verdict(), Color32::from_rgb(230, 60, 50))
    };
    egui::Area::new(egui::Id::unique("readiness"))
        .anchor(Align2::CENTER_CENTER, [0.0, 0.0])
        .order(egui::Order::Foreground)
        .show(ctx, |ui| {
            panel(s, 235).show(ui, |ui| {
                ui.label(RichText::new(title).size(s.badge()).strong().color(tone));
                let size = s.small() * 1.1;
                for i in &r.items {
                    let (word, c) = match i.outcome {
                        Outcome::Pass => ("PASS", Color32::from_rgb(80, 200, 120)),
                        Outcome::Fail => ("FAIL", Color32::from_rgb(230, 60, 50)),
                        Outcome::Skipped => ("WAIT", Color32::from_gray(190)),
                    };
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(word).size(size).strong().color(c));
                        ui.label(RichText::new(&i.name).size(size).color(Color32::WHITE));
                        ui.label(
                            RichText::new(&i.detail)
                                .size(size)
                                .color(Color32::from_gray(220)),
                        );
                    });
                }
                if !r.ready() && ui.button(RichText::new("close").size(size)).clicked() {
                    close = true;
                }
            });
        });
    close
}
