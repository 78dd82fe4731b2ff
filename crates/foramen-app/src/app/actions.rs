//! What a key, a legend tap or the settings view does. Key presses change the case's
//! view only; the settings view is the one path that writes the settings file.

use eframe::egui;
use foramen_core::config::OverlayMode;
use foramen_data::timeline::nav::Direction;

use foramen_pipeline::error::error_chain;

use super::ForamenApp;
use crate::help::{SettingsDraft, SettingsRequest};
use crate::keys::Action;
use crate::legend::LegendRequest;
use crate::snapshot;
use crate::view_state::ViewState;

impl ForamenApp {
    /// Carries out one key's action.
    pub(super) fn apply(&mut self, ctx: &egui::Context, action: Action) {
        match action {
            Action::ToggleClass(i) => self.toggle_class(i),
            Action::ToggleOverlay => {
                self.view.overlay_on = !self.view.overlay_on;
                let msg = format!(
                    "overlay {}",
                    if self.view.overlay_on { "on" } else { "off" }
                );
                self.say(msg);
            }
            Action::Opacity(step) => self.step_opacity(step),
            Action::CycleMode => {
                self.view.mode = match self.view.mode {
                    OverlayMode::Fill => OverlayMode::Contour,
                    OverlayMode::Contour => OverlayMode::Both,
                    OverlayMode::Both => OverlayMode::Fill,
                };
                let msg = format!("mode: {:?}", self.view.mode).to_lowercase();
                self.say(msg);
                self.restyle();
            }
            Action::Reset => self.reset_view(),
            Action::Freeze => self.frozen = !self.frozen,
            Action::ToggleHud => self.view.hud = !self.view.hud,
            Action::ToggleLegend => self.view.legend = !self.view.legend,
            Action::ToggleFullscreen => self.toggle_fullscreen(ctx),
            Action::Help => self.help_open = !self.help_open,
            Action::Settings => self.open_settings(),
            Action::Back => self.back(ctx),
            Action::Snapshot => self.snapshot(),
            Action::ToggleRecording => self.toggle_recording(),
            _ if !self.is_review() => {}
            Action::PlayPause => self.session.set_paused(!self.session.is_paused()),
            Action::StepForward => {
                self.session.set_paused(true);
                self.session.step();
            }
            Action::StepBack => {
                if let Some(id) = self.shown.as_ref().map(|f| f.id) {
                    self.session.set_paused(true);
                    self.session.seek(id.saturating_sub(1));
                }
            }
            Action::NextMoment => self.jump_moment(Direction::Forward),
            Action::PrevMoment => self.jump_moment(Direction::Back),
            Action::MarkIn => self.mark(true),
            Action::MarkOut => self.mark(false),
            Action::ExportClip => self.export_clip(),
        }
    }

    /// A tap on the legend.
    pub(super) fn apply_legend(&mut self, r: LegendRequest) {
        match r {
            LegendRequest::ToggleClass(i) => self.toggle_class(i),
            LegendRequest::Help => self.help_open = !self.help_open,
            LegendRequest::Reset => self.reset_view(),
            LegendRequest::Settings => self.open_settings(),
        }
    }

    fn toggle_class(&mut self, index: usize) {
        let Some(c) = self.classes.classes.get(index).filter(|_| index > 0) else {
            return;
        };
        let name = c.name.clone();
        let shown = self.view.toggle_class(&name);
        self.say(format!(
            "{name}: {}",
            if shown { "shown" } else { "hidden" }
        ));
        self.restyle();
    }

    fn step_opacity(&mut self, step: i8) {
        self.view.step_opacity(step);
        let own: Vec<String> = self
            .view
            .class_opacity
            .iter()
            .map(|(n, o)| format!("{n} {:.0} %", o * 100.0))
            .collect();
        let mut msg = format!("fill {:.0} %", self.view.opacity * 100.0);
        if !own.is_empty() {
            msg.push_str(&format!(" ({})", own.join(", ")));
        }
        self.say(msg);
        self.restyle();
    }

    /// Back to the view the case started with (the settings file's).
    fn reset_view(&mut self) {
        self.view = ViewState::from_settings(&self.cfg.overlay, &self.cfg.display);
        self.frozen = false;
        self.say("view reset to the settings".into());
        self.restyle();
    }

    fn open_settings(&mut self) {
        self.help_open = false;
        self.settings = Some(SettingsDraft {
            overlay: self.cfg.overlay.clone(),
            display: self.cfg.display.clone(),
        });
    }

    /// Escape: close what is open, else leave full screen.
    fn back(&mut self, ctx: &egui::Context) {
        if self.help_open || self.settings.is_some() || !self.readiness.done {
            self.help_open = false;
            self.settings = None;
            self.readiness.done = true;
        } else if self.fullscreen {
            self.toggle_fullscreen(ctx);
        }
    }

    /// The settings view's answer: a save writes the edited keys, and only those, and
    /// this case takes the new settings too.
    pub(super) fn apply_settings(&mut self, r: SettingsRequest) {
        let Some(draft) = self.settings.take() else {
            return;
        };
        if r == SettingsRequest::Close {
            return;
        }
        let changed = draft.changed(&self.cfg.overlay, &self.cfg.display);
        self.cfg.overlay = draft.overlay;
        self.cfg.display = draft.display;
        self.view = ViewState::from_settings(&self.cfg.overlay, &self.cfg.display);
        self.restyle();
        let Some(path) = self.opts.config_path.clone() else {
            return;
        };
        match self.cfg.save_keys(&path, &changed) {
            Ok(()) => self.say(format!("settings saved ({} changed)", changed.len())),
            // An error is shown, not fatal.
            Err(e) => self.say(format!("settings not saved: {e}")),
        }
    }

    fn toggle_fullscreen(&mut self, ctx: &egui::Context) {
        self.fullscreen = !self.fullscreen;
        if let (true, Some(m)) = (self.fullscreen, self.cfg.display.monitor) {
            ctx.send_viewport_cmd(egui::ViewportCommand::SetMonitor(m));
        } else {
            ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(self.fullscreen));
        }
    }

    fn toggle_recording(&mut self) {
        let recording = self.session.recording().is_some_and(|r| !r.finished);
        if recording {
            self.session.stop_recording();
            self.say("recording stopped".into());
        } else {
            match self.session.start_recording() {
                Ok(dir) => self.say(format!("recording to {}", dir.display())),
                Err(e) => self.say(format!("cannot record: {}", error_chain(&e))),
            }
        }
    }

    /// The annotated frame at full resolution as PNG, written off the UI thread.
    fn snapshot(&mut self) {
        let Some(frame) = self.shown.clone() else {
            return;
        };
        let (mask, style) = (self.shown_mask.clone(), self.style.clone());
        match snapshot::save_annotated_frame(frame, mask, style, &self.opts.snapshot_dir) {
            Ok(path) => self.say(format!("snapshot: {}", path.display())),
            Err(e) => self.say(format!("snapshot failed: {e}")),
        }
    }
}
