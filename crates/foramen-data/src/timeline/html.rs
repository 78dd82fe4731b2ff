//! `report.html`: the timeline figure, the model, the duration and the integrity
//! summary of one recording, in one self-contained page.

use std::fmt::Write as _;

use super::Timeline;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The line every report carries.
pub const NO_PATIENT_DATA: &str = "This report carries no patient data beyond the recording's \
    folder name: no source path, no date. Its key frames are the endoscope's picture as \
    recorded; a video tower set to burn patient details into its output puts them there too.";

/// A key frame of the report: a still of the largest exposure of a class.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyFrame {
    /// The class.
    pub class: String,
    /// The second of the recording.
    pub second: usize,
    /// The class's share of the picture in that second.
    pub share: f64,
    /// The PNG, relative to the report.
    pub file: String,
}

/// The key frames' section: per class, its stills with time and share.
fn key_frames_html(keys: &[KeyFrame]) -> String {
    if keys.is_empty() {
        return "<p>No class covered 2 % of the picture in any second: no key frames.</p>".into();
    }
    let mut out = String::new();
    let mut last: Option<&str> = None;
    for k in keys {
        if last != Some(k.class.as_str()) {
            if last.is_some() {
                out.push_str("</div>");
            }
            let _ = write!(out, "<h3>{}</h3><div class=\"keys\">", esc(&k.class));
            last = Some(&k.class);
        }
        let _ = write!(
            out,
            "<figure><img src=\"{f}\" alt=\"{c} at {m:02}:{s:02}\"><figcaption>{m:02}:{s:02} · {c} \
             {p:.0} % of the picture</figcaption></figure>",
            f = esc(&k.file),
            c = esc(&k.class),
            m = k.second / 60,
            s = k.second % 60,
            p = k.share * 100.0,
        );
    }
    out.push_str("</div>");
    out
}

impl Timeline {
    /// `report.html` with the figure `svg` inline and the key frames `keys` (grouped by
    /// class, in order). Names the recording by its folder name only: the source and the
    /// start time in `session.toml` are left out.
    pub fn html(&self, svg: &str, keys: &[KeyFrame]) -> String {
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (frames, lost, missing) = self.totals();
        let span = match self.missing_span() {
            Some((a, b)) => format!("seconds {a} to {b}"),
            None => "none".into(),
        };
        let mut states = String::new();
        for (a, b, state) in self.bands() {
            let _ = write!(states, "<li>{a}–{b} s: {state}</li>");
        }
        if states.is_empty() {
            states.push_str("<li>none: the AI was on throughout</li>");
        }
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Foramen report: {n}</title>\
             <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td{{padding:0 1em}}\
             .keys{{display:flex;flex-wrap:wrap;gap:1em}}figure{{margin:0;max-width:18em}}img{{width:100%}}</style>\
             </head><body>\n<h1>Recording {n}</h1>\n{svg}\n<table>\
             <tr><td>model</td><td>{model}</td></tr>\
             <tr><td>duration</td><td>{dur} s ({fps} fps)</td></tr>\
             <tr><td>frames recorded</td><td>{frames}</td></tr>\
             <tr><td>masks readable</td><td>{masks}</td></tr>\
             <tr><td>frames lost</td><td>{lost}</td></tr>\
             <tr><td>frames whose mask is unreadable</td><td>{missing}</td></tr>\
             <tr><td>missing span</td><td>{span}</td></tr>\
             <tr><td>damaged regions of masks.bin</td><td>{damaged}{cut}</td></tr>\
             </table>\n<h2>When the AI was not on</h2><ul>{states}</ul>\n\
             <h2>Key frames: the largest exposure of each class, spread over the case</h2>{keys}\n\
             <p>Per-second values: timeline.csv.</p>\n<p><em>{note}</em></p>\n</body></html>\n",
            n = esc(&name),
            model = esc(&format!(
                "{}{}",
                std::path::Path::new(&self.session.model)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                match self.session.model_fingerprint.as_str() {
                    "" => String::new(),
                    f => format!(" ({f})"),
                }
            )),
            dur = self.seconds.len(),
            fps = self.session.fps,
            masks = self.masks.records,
            damaged = self.masks.damaged_regions,
            cut = if self.masks.cut {
                ", last record cut"
            } else {
                ""
            },
            note = NO_PATIENT_DATA,
            keys = key_frames_html(keys),
        )
    }
}
