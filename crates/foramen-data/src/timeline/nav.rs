//! Moving about a recording by its timeline, as the review window does: which second a
//! video frame is in, where a second starts in the video, and the next or previous
//! *moment* (a chosen class appears, or the AI's state changes).

use super::Timeline;

/// A class must cover at least this share of the mask for its appearance to be a moment:
/// below it, a few stray pixels would make every second one.
pub const APPEAR_SHARE: f64 = 0.02;

/// Which way to look for a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Later in the recording.
    Forward,
    /// Earlier.
    Back,
}

impl Timeline {
    /// The second that holds video frame `row` (0-based over all segments): the last
    /// second whose first frame is at or before it. `None` before the first frame.
    pub fn second_of_row(&self, row: u64) -> Option<usize> {
        self.seconds
            .iter()
            .enumerate()
            .rev()
            .find(|(_, s)| s.first_row.is_some_and(|r| r <= row))
            .map(|(i, _)| i)
    }

    /// The video frame where `second` starts: its first frame, or for a second without
    /// frames (a gap) the next recorded one. `None` past the last frame.
    pub fn row_of_second(&self, second: usize) -> Option<u64> {
        self.seconds.iter().skip(second).find_map(|s| s.first_row)
    }

    /// True when second `i` is a moment for `classes`: its state differs from the second
    /// before, or one of `classes` covers at least [`APPEAR_SHARE`] after covering less.
    pub fn is_moment(&self, i: usize, classes: &[usize]) -> bool {
        let (Some(prev), Some(cur)) = (
            i.checked_sub(1).and_then(|p| self.seconds.get(p)),
            self.seconds.get(i),
        ) else {
            return false;
        };
        cur.state() != prev.state()
            || classes.iter().any(|&k| {
                cur.share(k).unwrap_or(0.0) >= APPEAR_SHARE
                    && prev.share(k).unwrap_or(0.0) < APPEAR_SHARE
            })
    }

    /// Up to `n` seconds of the largest exposure of class `k`, spread over the recording:
    /// the recording cut into `n` equal parts, in each the second where `k` covers most
    /// of the picture (at least [`APPEAR_SHARE`]), earliest first. The report's key frames.
    pub fn key_seconds(&self, k: usize, n: usize) -> Vec<usize> {
        let len = self.seconds.len();
        let n = n.min(len);
        (0..n)
            .filter_map(|part| {
                let span = part * len / n..((part + 1) * len / n).max(part * len / n + 1);
                span.map(|i| (i, self.seconds[i].share(k).unwrap_or(0.0)))
                    .filter(|&(_, share)| share >= APPEAR_SHARE)
                    .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                    .map(|(i, _)| i)
            })
            .collect()
    }

    /// The nearest moment strictly after (or before) second `from`.
    pub fn moment(&self, from: usize, dir: Direction, classes: &[usize]) -> Option<usize> {
        match dir {
            Direction::Forward => {
                (from + 1..self.seconds.len()).find(|&i| self.is_moment(i, classes))
            }
            Direction::Back => (1..from.min(self.seconds.len()))
                .rev()
                .find(|&i| self.is_moment(i, classes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::MaskScan;
    use crate::timeline::{Second, SessionInfo};

    /// Seconds of 10 frames each (rows 0, 10, 20, ...), with class 1's share per second
    /// (`None`: no frames, a gap) and every frame `on` unless `stale` lists the second.
    fn timeline(share1: &[Option<f64>], stale: &[usize]) -> Timeline {
        let mut row = 0;
        let seconds = share1
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                None => Second {
                    class_pixels: vec![0; 3],
                    ..Second::default()
                },
                Some(v) => {
                    let px = (v * 1000.0).round() as u64;
                    let second = Second {
                        frames: 10,
                        on: if stale.contains(&i) { 0 } else { 10 },
                        stale: if stale.contains(&i) { 10 } else { 0 },
                        masks: 10,
                        pixels: 1000,
                        class_pixels: vec![1000 - px, px, 0],
                        first_row: Some(row),
                        ..Second::default()
                    };
                    row += 10;
                    second
                }
            })
            .collect();
        Timeline {
            dir: "rec".into(),
            session: SessionInfo::default(),
            seconds,
            masks: MaskScan::default(),
        }
    }

    #[test]
    fn frames_map_to_their_second_and_back_across_a_gap() {
        let t = timeline(&[Some(0.0), Some(0.0), None, Some(0.0)], &[]);
        assert_eq!(t.second_of_row(0), Some(0));
        assert_eq!(t.second_of_row(9), Some(0));
        assert_eq!(t.second_of_row(10), Some(1));
        // Second 2 had no frames: frame 20 is the first of second 3.
        assert_eq!(t.second_of_row(20), Some(3));
        assert_eq!(t.second_of_row(25), Some(3));
        assert_eq!(t.row_of_second(1), Some(10));
        assert_eq!(t.row_of_second(2), Some(20));
        assert_eq!(t.row_of_second(4), None);
    }

    #[test]
    fn moments_are_appearances_of_the_chosen_classes_and_state_changes() {
        // Class 1 appears at 2 (0.01 -> 0.30), stays, goes, appears again at 6; the AI
        // is stale in second 4.
        let shares = [0.0, 0.01, 0.30, 0.40, 0.40, 0.0, 0.05, 0.05];
        let t = timeline(&shares.map(Some), &[4]);
        let forward = |from, classes: &[usize]| t.moment(from, Direction::Forward, classes);
        let back = |from, classes: &[usize]| t.moment(from, Direction::Back, classes);
        assert_eq!(
            forward(0, &[1]),
            Some(2),
            "a share under 2 % is not an appearance"
        );
        assert_eq!(forward(2, &[1]), Some(4), "on -> stale");
        assert_eq!(forward(4, &[1]), Some(5), "stale -> on");
        assert_eq!(forward(5, &[1]), Some(6));
        assert_eq!(forward(6, &[1]), None);
        // Class 2 never appears: only the state changes are moments.
        assert_eq!(forward(0, &[2]), Some(4));
        assert_eq!(back(7, &[1]), Some(6));
        assert_eq!(back(4, &[1]), Some(2));
        assert_eq!(back(2, &[1]), None);
        assert_eq!(back(100, &[]), Some(5));
    }

    #[test]
    fn key_seconds_are_the_largest_exposure_in_each_part_of_the_case() {
        let shares = [0.1, 0.5, 0.2, 0.0, 0.01, 0.03, 0.3, 0.3, 0.2];
        let t = timeline(&shares.map(Some), &[]);
        // Thirds: 0-2 (0.5 at 1), 3-5 (0.03 at 5), 6-8 (0.3 at 6 and 7: the earlier).
        assert_eq!(t.key_seconds(1, 3), [1, 5, 6]);
        assert_eq!(t.key_seconds(1, 1), [1]);
        // A class never over 2 % has no key frame; more parts than seconds: one each.
        assert!(t.key_seconds(2, 3).is_empty());
        assert_eq!(t.key_seconds(1, 20), [0, 1, 2, 5, 6, 7, 8]);
    }

    #[test]
    fn a_gap_is_a_moment_on_both_sides() {
        let t = timeline(&[Some(0.0), None, Some(0.0)], &[]);
        assert_eq!(t.seconds[1].state(), "gap");
        assert_eq!(t.moment(0, Direction::Forward, &[]), Some(1));
        assert_eq!(t.moment(1, Direction::Forward, &[]), Some(2));
    }
}
