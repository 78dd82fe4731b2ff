//! Review of a recording (`foramen view RECORDING`): the review bar with the timeline
//! strip, jumps to the next or previous moment, and the in and out marks of a clip.

use eframe::egui;
use foramen_data::timeline::nav::Direction;

use super::ForamenApp;
use crate::clip_export::{ClipJob, clip_path};
use crate::review_bar::{self, ReviewBar, ReviewRequest};
use crate::scale::UiScale;
use crate::timeline_strip::StripMarks;

/// `mm:ss` of a second of the recording.
pub(super) fn mmss(second: usize) -> String {
    format!("{:02}:{:02}", second / 60, second % 60)
}

impl ForamenApp {
    /// The shown frame's index in the stream (for a recording: its `frames.csv` row).
    fn shown_row(&self) -> u64 {
        self.shown.as_ref().map_or(0, |f| f.id)
    }

    /// The second of frame `row`, when the timeline is there.
    pub(super) fn second_of(&self, row: u64) -> Option<usize> {
        self.timeline.timeline()?.second_of_row(row)
    }

    /// The line under the strip: the marks, or why there is no timeline.
    fn review_line(&self) -> Option<String> {
        self.timeline.dir.as_ref()?;
        if let Some(e) = self.timeline.error() {
            return Some(format!("no timeline: {e}"));
        }
        self.timeline.timeline()?;
        let mark = |m: Option<u64>| {
            m.and_then(|r| self.second_of(r))
                .map_or_else(|| "-".to_string(), mmss)
        };
        let mut line = format!(
            "in {} · out {} · [ ] mark, X save clip · N/B next/previous moment",
            mark(self.marks.0),
            mark(self.marks.1)
        );
        if let Some(job) = &self.clip_job {
            line.push_str(" · ");
            line.push_str(&job.status());
        }
        Some(line)
    }

    pub(super) fn review_bar(&mut self, ctx: &egui::Context, s: UiScale) {
        let total = self.session.info().frame_count.unwrap_or(0);
        let current = self.shown_row();
        let marks = StripMarks {
            seconds: self.timeline.timeline().map_or(0, |t| t.seconds.len()),
            cursor: self.second_of(current),
            mark_in: self.marks.0.and_then(|r| self.second_of(r)),
            mark_out: self.marks.1.and_then(|r| self.second_of(r)),
        };
        let line = self.review_line();
        let colors: Vec<[u8; 3]> = self.classes.classes.iter().map(|c| c.color).collect();
        let strip = self.timeline.texture(ctx, &colors).map(|t| (t, marks));
        let bar = ReviewBar {
            paused: self.session.is_paused(),
            current,
            total,
            strip,
            line,
        };
        let (request, strip_rect) = review_bar::review_bar(ctx, s, bar);
        self.strip_rect = strip_rect;
        match request {
            Some(ReviewRequest::Pause(p)) => self.session.set_paused(p),
            Some(ReviewRequest::Step) => {
                self.session.set_paused(true);
                self.session.step();
            }
            Some(ReviewRequest::Seek(pos)) => self.session.seek(pos),
            Some(ReviewRequest::SeekSecond(second)) => self.seek_second(second),
            None => {}
        }
    }

    /// Continues at the first frame of `second`.
    fn seek_second(&mut self, second: usize) {
        if let Some(row) = self
            .timeline
            .timeline()
            .and_then(|t| t.row_of_second(second))
        {
            self.session.seek(row);
        }
    }

    /// N / B: the next or previous moment where a shown class appears or the AI's
    /// state changes.
    pub(super) fn jump_moment(&mut self, dir: Direction) {
        let Some(t) = self.timeline.timeline().cloned() else {
            let why = match (&self.timeline.dir, self.timeline.error()) {
                (None, _) => "moments need a recording folder (foramen view RECORDING)",
                (_, Some(_)) => "no timeline for this recording",
                _ => "timeline still loading",
            };
            self.say(why.into());
            return;
        };
        let shown: Vec<usize> = (1..self.classes.classes.len())
            .filter(|&k| self.view.marks(&self.classes.classes[k].name))
            .collect();
        let from = t.second_of_row(self.shown_row()).unwrap_or(0);
        let Some(second) = t.moment(from, dir, &shown) else {
            let which = if dir == Direction::Forward {
                "later"
            } else {
                "earlier"
            };
            self.say(format!("no {which} moment"));
            return;
        };
        let (cur, prev) = (&t.seconds[second], &t.seconds[second - 1]);
        let what = if cur.state() != prev.state() {
            format!("AI {}", cur.state())
        } else {
            let names: Vec<&str> = shown
                .iter()
                .filter(|&&k| {
                    cur.share(k).unwrap_or(0.0) >= foramen_data::timeline::nav::APPEAR_SHARE
                        && prev.share(k).unwrap_or(0.0) < foramen_data::timeline::nav::APPEAR_SHARE
                })
                .map(|&k| self.classes.classes[k].name.as_str())
                .collect();
            format!("{} appears", names.join(", "))
        };
        self.say(format!("{}: {what}", mmss(second)));
        self.seek_second(second);
    }

    /// `[` / `]`: the clip starts or ends at the shown frame.
    pub(super) fn mark(&mut self, is_in: bool) {
        if self.timeline.dir.is_none() {
            self.say("clips need a recording folder (foramen view RECORDING)".into());
            return;
        }
        let row = self.shown_row();
        if is_in {
            self.marks.0 = Some(row);
        } else {
            self.marks.1 = Some(row);
        }
        let at = self
            .second_of(row)
            .map_or_else(|| format!("frame {row}"), mmss);
        self.say(format!(
            "clip {} at {at}",
            if is_in { "starts" } else { "ends" }
        ));
    }
}

impl ForamenApp {
    /// X: writes the marked span as an annotated clip, drawn with the overlay settings
    /// on screen now, into `[recording].dir/clips/`.
    pub(super) fn export_clip(&mut self) {
        let Some(dir) = self.timeline.dir.clone() else {
            self.say("clips need a recording folder (foramen view RECORDING)".into());
            return;
        };
        let (Some(a), Some(b)) = self.marks else {
            self.say("mark the clip's start ([) and end (]) first".into());
            return;
        };
        if b < a {
            self.say("the clip's end (]) is before its start ([)".into());
            return;
        }
        if self.clip_job.as_ref().is_some_and(|j| !j.finished()) {
            self.say("a clip is still being saved".into());
            return;
        }
        let rows = a..b + 1;
        let out = clip_path(&self.cfg.recording.dir, &dir, &rows);
        let mut settings = foramen_pipeline::clip::ClipSettings::from_config(&self.cfg);
        settings.overlay = self.view.overlay_config(&self.cfg.overlay);
        settings.draw_masks = self.view.overlay_on;
        match ClipJob::start(&dir, rows, out, settings) {
            Ok(job) => {
                self.say(format!("saving clip to {}", job.out().display()));
                self.clip_job = Some(job);
            }
            Err(e) => self.say(format!("clip not saved: {e}")),
        }
    }
}
