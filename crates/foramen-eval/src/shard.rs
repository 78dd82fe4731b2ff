//! Evaluation shards: one `foramen eval --shard I/N` writes what it accumulated (the
//! confusion counts, the ROC histograms, the flip counts, the worst images) to a file,
//! and `foramen eval --merge` adds the shards up into exactly the evaluation one run over
//! the whole list would have made, so an archive can be scored by any array-job
//! scheduler.
//!
//! File: the line `FORAMEN-EVAL-SHARD 2`, one line of JSON (classes, each sequence's
//! confusion counts and images, flip counts, worst images), then the ROC histograms as
//! LEB128 varints (most bins hold 0 or small counts: a few MB rather than 8 MB per
//! class), then the worst images' predictions.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::BinnedRoc;
use crate::evaluation::{Evaluation, WorstImage};
use crate::sequences::SequenceTally;

const MAGIC: &str = "FORAMEN-EVAL-SHARD 2";

/// A shard that cannot be written, read or merged.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// Reading or writing failed.
    #[error("shard file: {0}")]
    Io(#[from] std::io::Error),
    /// Not a shard file, or a damaged one.
    #[error("not a Foramen evaluation shard (or a damaged one): {0}")]
    Format(String),
    /// Shards of different evaluations.
    #[error("shards do not match: {0}")]
    Mismatch(String),
}

fn bad(what: impl Into<String>) -> ShardError {
    ShardError::Format(what.into())
}

fn put_varint(w: &mut impl Write, mut v: u64) -> std::io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        buf[n] = byte | if v == 0 { 0 } else { 0x80 };
        n += 1;
        if v == 0 {
            break;
        }
    }
    w.write_all(&buf[..n])
}

fn get_varint(r: &mut impl Read) -> Result<u64, ShardError> {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        if shift > 63 {
            return Err(bad("varint too long"));
        }
        v |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
}

impl Evaluation {
    /// Writes everything accumulated so far as shard `(i, n)` (I of N).
    pub fn write_shard(&self, shard: (usize, usize), mut w: impl Write) -> Result<(), ShardError> {
        let worst: Vec<Value> = self
            .worst
            .iter()
            .map(|x| {
                json!({"stem": x.stem, "miou": x.miou, "image": x.image, "mask": x.mask,
                       "pred_len": x.pred.len()})
            })
            .collect();
        let sequences: Vec<Value> = self
            .sequences
            .iter()
            .map(|(name, s)| json!({"name": name, "images": s.images, "confusion": s.cm.counts}))
            .collect();
        let head = json!({
            "names": self.names, "ignored": self.ignored,
            "flips": self.flips, "stable": self.stable,
            "roc_bins": self.rocs.first().map(|r| r.pos.len()), "worst": worst,
            "sequences": sequences, "shard": [shard.0, shard.1],
        });
        writeln!(w, "{MAGIC}\n{head}")?;
        for roc in &self.rocs {
            for &v in roc.pos.iter().chain(&roc.neg) {
                put_varint(&mut w, v)?;
            }
        }
        for x in &self.worst {
            w.write_all(&x.pred)?;
        }
        Ok(())
    }

    /// Reads a shard back into an evaluation (to merge others into, then finish), with
    /// its `(i, n)`.
    pub fn read_shard(mut r: impl BufRead) -> Result<(Self, (usize, usize)), ShardError> {
        let mut line = String::new();
        r.read_line(&mut line)?;
        if line.trim_end() != MAGIC {
            let kind = MAGIC.rsplit_once(' ').map_or(MAGIC, |(k, _)| k);
            return Err(bad(match line.trim_end().strip_prefix(kind) {
                Some(v) => format!(
                    "format{v}, where this foramen reads {MAGIC:?}: score that shard again \
                     with this version"
                ),
                None => format!("first line {:?}", line.trim_end()),
            }));
        }
        line.clear();
        r.read_line(&mut line)?;
        let head: Value = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let names: Vec<String> = field(&head, "names")?;
        let ignored: Vec<bool> = field(&head, "ignored")?;
        let bins: Option<usize> = field(&head, "roc_bins")?;
        let shard: (usize, usize) = field(&head, "shard")?;
        let c = names.len();
        if ignored.len() != c {
            return Err(bad("class count and ignored flags disagree"));
        }
        let mut eval = Evaluation::new(names, ignored, bins.is_some());
        eval.flips = field(&head, "flips")?;
        eval.stable = field(&head, "stable")?;
        for s in field::<Vec<Value>>(&head, "sequences")? {
            let counts: Vec<u64> = field(&s, "confusion")?;
            if counts.len() != c * c {
                return Err(bad("a sequence's confusion counts"));
            }
            let mut tally = SequenceTally::new(c);
            tally.cm.counts = counts;
            tally.images = field(&s, "images")?;
            eval.sequences.insert(field(&s, "name")?, tally);
        }
        for roc in &mut eval.rocs {
            if Some(roc.pos.len()) != bins {
                return Err(bad("ROC histogram size"));
            }
            for v in roc.pos.iter_mut().chain(roc.neg.iter_mut()) {
                *v = get_varint(&mut r)?;
            }
        }
        let worst: Vec<Value> = field(&head, "worst")?;
        for x in worst {
            let len: usize = field(&x, "pred_len")?;
            let mut pred = vec![0u8; len];
            r.read_exact(&mut pred)?;
            eval.worst.push(WorstImage {
                stem: field(&x, "stem")?,
                miou: field(&x, "miou")?,
                image: field::<PathBuf>(&x, "image")?,
                mask: field::<PathBuf>(&x, "mask")?,
                pred,
            });
        }
        Ok((eval, shard))
    }

    /// Adds another shard of the same evaluation (same classes, ignored classes and
    /// probabilities or not). Flips are summed: each shard counted them between its
    /// own consecutive entries.
    pub fn merge(&mut self, other: Evaluation) -> Result<(), ShardError> {
        if other.names != self.names || other.ignored != self.ignored {
            return Err(ShardError::Mismatch(format!(
                "classes {:?} (ignored {:?}) against {:?} (ignored {:?})",
                other.names, other.ignored, self.names, self.ignored
            )));
        }
        if other.rocs.len() != self.rocs.len() {
            return Err(ShardError::Mismatch(
                "one shard has probabilities (ROC), another not".into(),
            ));
        }
        for (name, s) in other.sequences {
            let c = self.names.len();
            let mine = self
                .sequences
                .entry(name)
                .or_insert_with(|| SequenceTally::new(c));
            mine.cm.add_counts(&s.cm);
            mine.images += s.images;
        }
        for (a, b) in self.rocs.iter_mut().zip(&other.rocs) {
            BinnedRoc::merge(a, b);
        }
        self.flips += other.flips;
        self.stable += other.stable;
        for w in other.worst {
            self.keep_worst(w);
        }
        Ok(())
    }
}

/// Reads and adds up the shard files of one `I/N` split, checking that each of the N
/// shards is there once; returns the evaluation and N.
pub fn merge_files(paths: &[PathBuf]) -> Result<(Evaluation, usize), ShardError> {
    let (mut merged, mut ids): (Option<Evaluation>, Vec<(usize, usize)>) = (None, vec![]);
    for p in paths {
        let named = |e: ShardError| ShardError::Mismatch(format!("{}: {e}", p.display()));
        let f = std::fs::File::open(p).map_err(|e| named(e.into()))?;
        let (e, id) = Evaluation::read_shard(std::io::BufReader::new(f)).map_err(named)?;
        ids.push(id);
        match merged.as_mut() {
            None => merged = Some(e),
            Some(m) => m.merge(e).map_err(named)?,
        }
    }
    ids.sort();
    let n = ids.first().map_or(0, |i| i.1);
    if n == 0 || ids != (0..n).map(|i| (i, n)).collect::<Vec<_>>() {
        return Err(ShardError::Mismatch(format!(
            "the shards are {ids:?}: a merge needs each of 0/N ... N-1/N once"
        )));
    }
    Ok((merged.expect("at least one shard"), n))
}

fn field<T: serde::de::DeserializeOwned>(v: &Value, key: &str) -> Result<T, ShardError> {
    let x = v.get(key).ok_or_else(|| bad(format!("no field {key}")))?;
    serde_json::from_value(x.clone()).map_err(|e| bad(format!("{key}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::ImageResult;
    use std::path::Path;

    fn add(e: &mut Evaluation, i: usize) {
        // Deterministic, varied images: 3 classes, 64 pixels, probabilities included.
        let n = 64;
        let truth: Vec<u8> = (0..n).map(|p| ((p * 7 + i * 3) % 3) as u8).collect();
        let pred: Vec<u8> = (0..n).map(|p| ((p * 5 + i) % 3) as u8).collect();
        let probs: Vec<f32> = (0..3 * n)
            .map(|k| ((k * 37 + i * 11) % 101) as f32 / 100.0)
            .collect();
        let stem = format!("img{i}");
        // Sequences that straddle the shards: each shard holds part of each.
        let sequence = format!("seq{}", i % 4);
        e.add(ImageResult {
            stem: &stem,
            image: Path::new("i.png"),
            mask: Path::new("m.png"),
            size: (8, 8),
            sequence: &sequence,
            truth,
            pred,
            probs: Some(&probs),
        })
        .expect("add");
    }

    fn new() -> Evaluation {
        Evaluation::new(
            vec!["a".into(), "b".into(), "c".into()],
            vec![false; 3],
            true,
        )
    }

    #[test]
    fn shards_merged_equal_one_run_over_the_whole_list() {
        let mut whole = new();
        let mut shards = [new(), new(), new()];
        for i in 0..10 {
            add(&mut whole, i);
            add(&mut shards[i % 3], i);
        }
        let mut merged: Option<Evaluation> = None;
        for (i, s) in shards.iter().enumerate() {
            let mut file = Vec::new();
            s.write_shard((i, 3), &mut file).expect("write");
            let (back, id) = Evaluation::read_shard(&file[..]).expect("read");
            assert_eq!(id, (i, 3));
            match merged.as_mut() {
                None => merged = Some(back),
                Some(m) => m.merge(back).expect("merge"),
            }
        }
        let (a, b) = (whole.finish(), merged.expect("merged").finish());
        assert_eq!(a.matrix, b.matrix);
        assert_eq!(a.aucs, b.aucs);
        assert_eq!(a.images, b.images);
        assert_eq!(a.sequences.len(), 4);
        assert_eq!(a.sequences, b.sequences);
        for (ra, rb) in a.rocs.iter().zip(&b.rocs) {
            assert_eq!((&ra.pos, &ra.neg), (&rb.pos, &rb.neg));
        }
        let stems =
            |r: &crate::EvalReport| r.worst.iter().map(|w| w.stem.clone()).collect::<Vec<_>>();
        assert_eq!(stems(&a), stems(&b));
        assert_eq!(a.worst[0].pred, b.worst[0].pred);
    }

    #[test]
    fn a_damaged_or_foreign_shard_is_refused() {
        let mut e = new();
        add(&mut e, 1);
        let mut file = Vec::new();
        e.write_shard((0, 1), &mut file).expect("write");
        let cut = &file[..file.len() / 2];
        assert!(Evaluation::read_shard(cut).is_err());
        assert!(Evaluation::read_shard(&b"hello\n"[..]).is_err());
        // A shard of an older format (before sequences) names both formats.
        let old = String::from_utf8_lossy(&file).replacen("SHARD 2", "SHARD 1", 1);
        let err = Evaluation::read_shard(old.as_bytes())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("format 1, where this foramen reads \"FORAMEN-EVAL-SHARD 2\""),
            "{err}"
        );
        let other = Evaluation::new(
            vec!["x".into(), "y".into(), "z".into()],
            vec![false; 3],
            true,
        );
        assert!(matches!(e.merge(other), Err(ShardError::Mismatch(_))));
    }
}
