//! The keyboard: one table from key to action, so what a key does is read in one place
//! (and listed in the README's key table).

use eframe::egui::{self, Key};

/// What the OR staff can ask of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Show or hide class `n` (1-9; 0 is the background).
    ToggleClass(usize),
    /// Overlay on or off.
    ToggleOverlay,
    /// Opacity up (+1) or down (-1) by 10 %.
    Opacity(i8),
    /// Fill, contour, both.
    CycleMode,
    /// Freeze the picture (with its mask) or resume.
    Freeze,
    /// HUD on or off.
    ToggleHud,
    /// Legend on or off.
    ToggleLegend,
    /// Full screen on or off.
    ToggleFullscreen,
    /// Leave full screen (Escape; only while full screen).
    LeaveFullscreen,
    /// Save the annotated frame at full resolution.
    Snapshot,
    /// Start or stop recording.
    ToggleRecording,
    /// Review: pause or play.
    PlayPause,
    /// Review: one frame forward (pauses).
    StepForward,
    /// Review: one frame back (pauses).
    StepBack,
}

/// Every key and its action. Review actions do nothing on a live source.
pub const KEYMAP: &[(Key, Action)] = &[
    (Key::Num1, Action::ToggleClass(1)),
    (Key::Num2, Action::ToggleClass(2)),
    (Key::Num3, Action::ToggleClass(3)),
    (Key::Num4, Action::ToggleClass(4)),
    (Key::Num5, Action::ToggleClass(5)),
    (Key::Num6, Action::ToggleClass(6)),
    (Key::Num7, Action::ToggleClass(7)),
    (Key::Num8, Action::ToggleClass(8)),
    (Key::Num9, Action::ToggleClass(9)),
    (Key::Space, Action::ToggleOverlay),
    (Key::O, Action::ToggleOverlay),
    (Key::Plus, Action::Opacity(1)),
    (Key::Equals, Action::Opacity(1)),
    (Key::Minus, Action::Opacity(-1)),
    (Key::M, Action::CycleMode),
    (Key::F, Action::Freeze),
    (Key::H, Action::ToggleHud),
    (Key::L, Action::ToggleLegend),
    (Key::F11, Action::ToggleFullscreen),
    (Key::Escape, Action::LeaveFullscreen),
    (Key::S, Action::Snapshot),
    (Key::R, Action::ToggleRecording),
    (Key::P, Action::PlayPause),
    (Key::K, Action::PlayPause),
    (Key::ArrowRight, Action::StepForward),
    (Key::Period, Action::StepForward),
    (Key::ArrowLeft, Action::StepBack),
    (Key::Comma, Action::StepBack),
];

/// The actions of the keys pressed since the last frame, each once, in table order.
pub fn pressed(ctx: &egui::Context) -> Vec<Action> {
    let mut out: Vec<Action> = vec![];
    for &(key, action) in KEYMAP {
        if ctx.input(|i| i.key_pressed(key)) && !out.contains(&action) {
            out.push(action);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_action_and_every_action_a_key() {
        for (i, (k, _)) in KEYMAP.iter().enumerate() {
            assert!(
                KEYMAP[i + 1..].iter().all(|(k2, _)| k2 != k),
                "{k:?} is bound twice"
            );
        }
        let all = [
            Action::ToggleOverlay,
            Action::Opacity(1),
            Action::Opacity(-1),
            Action::CycleMode,
            Action::Freeze,
            Action::ToggleHud,
            Action::ToggleLegend,
            Action::ToggleFullscreen,
            Action::LeaveFullscreen,
            Action::Snapshot,
            Action::ToggleRecording,
            Action::PlayPause,
            Action::StepForward,
            Action::StepBack,
        ];
        for a in all.into_iter().chain((1..=9).map(Action::ToggleClass)) {
            assert!(KEYMAP.iter().any(|(_, b)| *b == a), "{a:?} has no key");
        }
    }

    #[test]
    fn a_key_press_gives_its_action_once() {
        let ctx = egui::Context::default();
        let press = |key| egui::Event::Key {
            key,
            physical_key: None,
            pressed: true,
            repeat: false,
            modifiers: egui::Modifiers::NONE,
        };
        let input = egui::RawInput {
            events: vec![press(Key::Space), press(Key::O), press(Key::Num3)],
            ..Default::default()
        };
        let mut got = vec![];
        let mut out = ctx.run_ui(input, |ui| got = pressed(ui.ctx()));
        // No renderer here: the font atlas upload is dropped on purpose.
        out.textures_delta.clear();
        assert_eq!(got, [Action::ToggleClass(3), Action::ToggleOverlay]);
    }
}
