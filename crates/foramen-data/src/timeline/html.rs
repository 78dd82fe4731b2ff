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
    folder name: no source path, no date, no image of the patient.";

impl Timeline {
    /// `report.html` with the figure `svg` inline. Names the recording by its folder name
    /// only: the source and the start time in `session.toml` are left out.
    pub fn html(&self, svg: &str) -> String {
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
             <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td{{padding:0 1em}}</style>\
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
             <p>Per-second values: timeline.csv.</p>\n<p><em>{note}</em></p>\n</body></html>\n",
            n = esc(&name),
            model = esc(&std::path::Path::new(&self.session.model)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()),
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
        )
    }
}
