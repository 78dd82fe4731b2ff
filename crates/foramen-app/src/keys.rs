//! The keyboard (and foot pedals, which send keys): one table from key to action, the
//! built-in keys plus those `[keys]` in the settings file adds, so that what a key does
//! is read in one place (and listed on the `?` card and in the README's key table).

use std::collections::BTreeMap;

use eframe::egui::{self, Key};

/// What the OR staff can ask of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Show or hide class `n` (1-9; 0 is the background).
    ToggleClass(usize),
    /// Overlay on or off.
    ToggleOverlay,
    /// Fill opacity up (+1) or down (-1) by 10 points, every class's.
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
    /// Leave full screen, close the key card or the settings (Escape).
    Back,
    /// Save the annotated frame at full resolution.
    Snapshot,
    /// Start or stop recording.
    ToggleRecording,
    /// The key card.
    Help,
    /// Back to the case's starting view (the settings file's).
    Reset,
    /// The settings view (lasting changes).
    Settings,
    /// Review: pause or play.
    PlayPause,
    /// Review: one frame forward (pauses).
    StepForward,
    /// Review: one frame back (pauses).
    StepBack,
    /// Review of a recording: the next moment (a shown class appears, the AI's state
    /// changes) on the timeline.
    NextMoment,
    /// Review of a recording: the previous moment.
    PrevMoment,
    /// Review of a recording: the clip starts at the shown frame.
    MarkIn,
    /// Review of a recording: the clip ends at the shown frame.
    MarkOut,
    /// Review of a recording: write the marked span as an annotated clip.
    ExportClip,
}

/// Every action with its `[keys]` name and what the key card says of it.
pub const ACTIONS: &[(&str, Action, &str)] = &[
    ("overlay", Action::ToggleOverlay, "overlay on / off"),
    ("class_1", Action::ToggleClass(1), "show / hide class 1"),
    ("class_2", Action::ToggleClass(2), "show / hide class 2"),
    ("class_3", Action::ToggleClass(3), "show / hide class 3"),
    ("class_4", Action::ToggleClass(4), "show / hide class 4"),
    ("class_5", Action::ToggleClass(5), "show / hide class 5"),
    ("class_6", Action::ToggleClass(6), "show / hide class 6"),
    ("class_7", Action::ToggleClass(7), "show / hide class 7"),
    ("class_8", Action::ToggleClass(8), "show / hide class 8"),
    ("class_9", Action::ToggleClass(9), "show / hide class 9"),
    (
        "opacity_up",
        Action::Opacity(1),
        "fill stronger (up to 60 %)",
    ),
    ("opacity_down", Action::Opacity(-1), "fill lighter"),
    ("mode", Action::CycleMode, "fill / outline / both"),
    ("reset", Action::Reset, "reset the view to the settings"),
    ("freeze", Action::Freeze, "freeze / resume the picture"),
    ("record", Action::ToggleRecording, "start / stop recording"),
    ("snapshot", Action::Snapshot, "save the annotated frame"),
    ("legend", Action::ToggleLegend, "legend on / off"),
    ("hud", Action::ToggleHud, "engineering HUD on / off"),
    ("fullscreen", Action::ToggleFullscreen, "full screen"),
    ("help", Action::Help, "this card"),
    (
        "settings",
        Action::Settings,
        "settings (saved for every case)",
    ),
    ("back", Action::Back, "close / leave full screen"),
    ("play_pause", Action::PlayPause, "review: play / pause"),
    ("step_forward", Action::StepForward, "review: next frame"),
    ("step_back", Action::StepBack, "review: previous frame"),
    (
        "next_moment",
        Action::NextMoment,
        "review: next moment (a shown class appears, AI state changes)",
    ),
    ("prev_moment", Action::PrevMoment, "review: previous moment"),
    ("mark_in", Action::MarkIn, "review: clip starts here"),
    ("mark_out", Action::MarkOut, "review: clip ends here"),
    (
        "export_clip",
        Action::ExportClip,
        "review: save the marked clip",
    ),
];

/// The built-in keys. Review actions do nothing on a live source.
pub const DEFAULT_KEYS: &[(Key, Action)] = &[
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
    (Key::Num0, Action::Reset),
    (Key::F, Action::Freeze),
    (Key::H, Action::ToggleHud),
    (Key::L, Action::ToggleLegend),
    (Key::F11, Action::ToggleFullscreen),
    (Key::Escape, Action::Back),
    (Key::S, Action::Snapshot),
    (Key::R, Action::ToggleRecording),
    (Key::Questionmark, Action::Help),
    (Key::Slash, Action::Help),
    (Key::F1, Action::Help),
    (Key::F2, Action::Settings),
    (Key::P, Action::PlayPause),
    (Key::K, Action::PlayPause),
    (Key::ArrowRight, Action::StepForward),
    (Key::Period, Action::StepForward),
    (Key::ArrowLeft, Action::StepBack),
    (Key::Comma, Action::StepBack),
    (Key::N, Action::NextMoment),
    (Key::PageDown, Action::NextMoment),
    (Key::B, Action::PrevMoment),
    (Key::PageUp, Action::PrevMoment),
    (Key::OpenBracket, Action::MarkIn),
    (Key::CloseBracket, Action::MarkOut),
    (Key::X, Action::ExportClip),
];

/// A `[keys]` entry the window cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeysError {
    /// The action name is not one of [`ACTIONS`].
    #[error("[keys].{0}: no such action (known: {1})")]
    UnknownAction(String, String),
    /// The key name is not one egui knows.
    #[error(
        "[keys].{action}: unknown key {key:?} (names like \"F13\", \"PageDown\", \"Space\", \"A\")"
    )]
    UnknownKey {
        /// The action.
        action: String,
        /// The key as written.
        key: String,
    },
}

/// The key table in use.
#[derive(Clone, Debug, PartialEq)]
pub struct Keymap {
    /// Key and action, in the order actions are carried out.
    pub bindings: Vec<(Key, Action)>,
}

impl Default for Keymap {
    fn default() -> Self {
        Self {
            bindings: DEFAULT_KEYS.to_vec(),
        }
    }
}

impl Keymap {
    /// The built-in keys plus `[keys]`; a key named there is taken from whatever it
    /// did before, so a pedal can be given any key.
    pub fn from_config(keys: &BTreeMap<String, Vec<String>>) -> Result<Self, KeysError> {
        let mut map = Self::default();
        for (name, key_names) in keys {
            let Some(&(_, action, _)) = ACTIONS.iter().find(|(n, _, _)| n == name) else {
                let known: Vec<&str> = ACTIONS.iter().map(|(n, _, _)| *n).collect();
                return Err(KeysError::UnknownAction(name.clone(), known.join(", ")));
            };
            for k in key_names {
                let key = Key::from_name(k).ok_or_else(|| KeysError::UnknownKey {
                    action: name.clone(),
                    key: k.clone(),
                })?;
                map.bindings.retain(|(b, _)| *b != key);
                map.bindings.push((key, action));
            }
        }
        Ok(map)
    }

    /// The keys of `action`, as the key card shows them.
    pub fn keys_of(&self, action: Action) -> Vec<&'static str> {
        self.bindings
            .iter()
            .filter(|(_, a)| *a == action)
            .map(|(k, _)| k.symbol_or_name())
            .collect()
    }

    /// The actions of the keys pressed since the last frame, each once, in table order.
    pub fn pressed(&self, ctx: &egui::Context) -> Vec<Action> {
        let mut out: Vec<Action> = vec![];
        for &(key, action) in &self.bindings {
            if ctx.input(|i| i.key_pressed(key)) && !out.contains(&action) {
                out.push(action);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_action_and_every_action_a_key_and_a_name() {
        for (i, (k, _)) in DEFAULT_KEYS.iter().enumerate() {
            assert!(
                DEFAULT_KEYS[i + 1..].iter().all(|(k2, _)| k2 != k),
                "{k:?} is bound twice"
            );
        }
        for (name, a, _) in ACTIONS {
            assert!(DEFAULT_KEYS.iter().any(|(_, b)| b == a), "{a:?} has no key");
            assert_eq!(ACTIONS.iter().filter(|(n, _, _)| n == name).count(), 1);
        }
        for (_, a) in DEFAULT_KEYS {
            assert!(ACTIONS.iter().any(|(_, b, _)| b == a), "{a:?} has no name");
        }
    }

    #[test]
    fn a_pedal_key_is_mapped_and_takes_the_key_from_its_old_action() {
        let mut keys = BTreeMap::new();
        keys.insert("overlay".to_string(), vec!["F13".to_string()]);
        keys.insert("reset".to_string(), vec!["M".to_string()]);
        let map = Keymap::from_config(&keys).expect("keys");
        assert_eq!(map.keys_of(Action::ToggleOverlay), ["Space", "O", "F13"]);
        assert_eq!(map.keys_of(Action::Reset), ["0", "M"]);
        assert!(map.keys_of(Action::CycleMode).is_empty());
        let bad = |k: &str, v: &str| {
            let mut m = BTreeMap::new();
            m.insert(k.to_string(), vec![v.to_string()]);
            Keymap::from_config(&m).expect_err("bad").to_string()
        };
        let e = bad("overlay", "Pedal1");
        assert!(
            e.starts_with("[keys].overlay: unknown key \"Pedal1\""),
            "{e}"
        );
        let e = bad("overlai", "F13");
        assert!(e.starts_with("[keys].overlai: no such action"), "{e}");
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
        let map = Keymap::default();
        let mut out = ctx.run_ui(input, |ui| got = map.pressed(ui.ctx()));
        // No renderer here: the font atlas upload is dropped on purpose.
        out.textures_delta.clear();
        assert_eq!(got, [Action::ToggleClass(3), Action::ToggleOverlay]);
    }
}
