//! Label Studio interchange: its brush RLE codec (bit-exact with `label-studio-converter`'s
//! `brush` module), polygon rasterisation, reading JSON exports into class-index masks,
//! and writing tasks with model pre-annotations plus the labelling config.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Errors decoding a brush RLE.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RleError {
    /// The stream ended before the header or a run was complete.
    #[error("RLE truncated at bit {0}")]
    Truncated(usize),
    /// Values wider than 8 bits cannot be class masks.
    #[error("RLE word size {0} bits is not supported (at most 8)")]
    WordSize(u32),
    /// The stream's value count does not match the image.
    #[error("RLE holds {got} values, the image needs {want} ({width}x{height}x4)")]
    Length {
        /// Values in the stream.
        got: usize,
        /// Values needed.
        want: usize,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
}

struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn put(&mut self, value: u32, n: u32) {
        for k in (0..n).rev() {
            if self.bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if (value >> k) & 1 == 1 {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
    }
}

/// Encodes `values` as Label Studio's brush RLE, exactly as `label-studio-converter`'s
/// `encode_rle` does (word size 8, run-length field sizes 3, 4, 8 and 16 bits, single
/// values as one-element literal runs, and its padding: 1 to 8 zero bits, never 0).
pub fn rle_encode(values: &[u8]) -> Vec<u8> {
    let mut w = BitWriter {
        bytes: Vec::with_capacity(values.len() / 8 + 16),
        bits: 0,
    };
    w.put(values.len() as u32, 32);
    w.put(8 - 1, 5);
    for size in [3u32, 4, 8, 16] {
        w.put(size - 1, 4);
    }
    let mut i = 0;
    while i < values.len() {
        let v = values[i];
        let mut run = 1;
        while i + run < values.len() && values[i + run] == v {
            run += 1;
        }
        i += run;
        if run == 1 {
            w.put(0, 1);
            w.put(0, 2);
            w.put(0, 3);
            w.put(v as u32, 8);
            continue;
        }
        let mut left = run;
        while left > 1 << 16 {
            w.put(1, 1);
            w.put(3, 2);
            w.put((1 << 16) - 1, 16);
            w.put(v as u32, 8);
            left -= 1 << 16;
        }
        let (index, bits) = match left {
            0..=8 => (0, 3),
            9..=16 => (1, 4),
            17..=256 => (2, 8),
            _ => (3, 16),
        };
        w.put(1, 1);
        w.put(index, 2);
        w.put(left as u32 - 1, bits);
        w.put(v as u32, 8);
    }
    let pad = 8 - w.bits % 8;
    w.put(0, pad as u32);
    w.bytes
}

/// Decodes a brush RLE (the thi.ng `rle-pack` format Label Studio uses) into its values.
pub fn rle_decode(bytes: &[u8]) -> Result<Vec<u8>, RleError> {
    let total = bytes.len() * 8;
    let mut at = 0usize;
    let mut read = |n: u32| -> Result<u32, RleError> {
        if at + n as usize > total {
            return Err(RleError::Truncated(at));
        }
        let mut v = 0u32;
        for _ in 0..n {
            let bit = (bytes[at / 8] >> (7 - at % 8)) & 1;
            v = (v << 1) | bit as u32;
            at += 1;
        }
        Ok(v)
    };
    let num = read(32)? as usize;
    let word = read(5)? + 1;
    if word > 8 {
        return Err(RleError::WordSize(word));
    }
    let mut sizes = [0u32; 4];
    for s in &mut sizes {
        *s = read(4)? + 1;
    }
    // A corrupt header must not make us allocate gigabytes.
    let mut out = Vec::with_capacity(num.min(bytes.len() * 8 * 16));
    while out.len() < num {
        let repeat = read(1)? == 1;
        let size = sizes[read(2)? as usize];
        let n = (read(size)? as usize + 1).min(num - out.len());
        if repeat {
            let v = read(word)? as u8;
            out.extend(std::iter::repeat_n(v, n));
        } else {
            for _ in 0..n {
                out.push(read(word)? as u8);
            }
        }
    }
    Ok(out)
}

/// A Label Studio brush layer for a binary mask (`true` = painted): RGBA with the mask
/// in every channel, as `mask2rle` writes it.
pub fn mask_to_rle(mask: &[bool]) -> Vec<u8> {
    let rgba: Vec<u8> = mask
        .iter()
        .flat_map(|&m| [if m { 255 } else { 0 }; 4])
        .collect();
    rle_encode(&rgba)
}

/// The painted pixels of a brush layer (alpha > 0) of a `width` x `height` image.
pub fn rle_to_mask(rle: &[u8], width: u32, height: u32) -> Result<Vec<bool>, RleError> {
    let want = width as usize * height as usize * 4;
    // The header states how many values follow: a wrong count is refused before a
    // single value is decoded, so a small file cannot make us allocate gigabytes.
    if let [a, b, c, d, ..] = *rle {
        let declared = u32::from_be_bytes([a, b, c, d]) as usize;
        if declared != want {
            return Err(RleError::Length {
                got: declared,
                want,
                width,
                height,
            });
        }
    }
    let values = rle_decode(rle)?;
    if values.len() != want {
        return Err(RleError::Length {
            got: values.len(),
            want,
            width,
            height,
        });
    }
    Ok(values.chunks_exact(4).map(|p| p[3] > 0).collect())
}

/// Pixels whose centres lie inside `points` (x, y in percent of the image, Label
/// Studio's polygon convention), even-odd rule.
pub fn rasterize_polygon(points: &[[f64; 2]], width: u32, height: u32) -> Vec<bool> {
    let (w, h) = (width as usize, height as usize);
    let mut out = vec![false; w * h];
    if points.len() < 3 {
        return out;
    }
    let px: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p[0] / 100.0 * width as f64, p[1] / 100.0 * height as f64))
        .collect();
    let mut xs = Vec::new();
    for y in 0..h {
        let cy = y as f64 + 0.5;
        xs.clear();
        for k in 0..px.len() {
            let (a, b) = (px[k], px[(k + 1) % px.len()]);
            if (a.1 <= cy) != (b.1 <= cy) {
                xs.push(a.0 + (cy - a.1) / (b.1 - a.1) * (b.0 - a.0));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            // Pixel x is inside when its centre x + 0.5 lies in [pair[0], pair[1]).
            let x0 = (pair[0] - 0.5).ceil().max(0.0) as usize;
            let x1 = ((pair[1] - 0.5).ceil().max(0.0) as usize).min(w);
            for x in x0..x1 {
                out[y * w + x] = true;
            }
        }
    }
    out
}

/// One problem with one task of an export; the task is skipped, the rest imported.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskIssue {
    /// Label Studio's task id (or its position when it has none).
    pub task: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for TaskIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task {}: {}", self.task, self.message)
    }
}

/// A task turned into a class-index mask.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedTask {
    /// Task id.
    pub task: String,
    /// The image's file name with Label Studio's upload prefix (`1a2b3c4d-`) removed.
    pub image_name: String,
    /// Image size.
    pub width: u32,
    /// Image size.
    pub height: u32,
    /// Class index per pixel (0 = unlabelled background).
    pub mask: Vec<u8>,
}

/// Strips Label Studio's upload prefix (8 hex digits and a dash) and any URL path.
pub fn image_file_name(url: &str) -> String {
    // Local files (`/data/local-files/?d=images/a.png`): the path is the `d` parameter.
    let path = match url.split_once("?d=").or_else(|| url.split_once("&d=")) {
        Some((_, p)) => p.split(['&', '#']).next().unwrap_or(p),
        None => url.split(['?', '#']).next().unwrap_or(url),
    };
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let name = name.replace("%20", " ");
    // Only uploaded files carry Label Studio's 8-hex-digit prefix: a local file named
    // `20240131-case7.png` keeps its date.
    let uploaded = url.contains("/data/upload/");
    match name.split_once('-') {
        Some((prefix, rest))
            if uploaded
                && prefix.len() == 8
                && prefix.chars().all(|c| c.is_ascii_hexdigit())
                && !rest.is_empty() =>
        {
            rest.to_string()
        }
        _ => name,
    }
}

/// How labels become class indices.
#[derive(Clone, Debug)]
pub enum LabelMap {
    /// Fixed names for indices 1, 2, ... (`--classes bone,ligament,disc`); other labels are errors.
    Fixed(Vec<String>),
    /// Labels numbered 1, 2, ... in order of first appearance in the export.
    FirstSeen(Vec<String>),
}

impl LabelMap {
    /// Fixed class names for indices 1, 2, ...: at most 254 (255 is the ignore index),
    /// none empty, none repeated, none named `background` (index 0 is the background).
    pub fn fixed(names: Vec<String>) -> Result<Self, String> {
        if names.is_empty() || names.len() > 254 {
            return Err(format!("{} class names: give 1 to 254", names.len()));
        }
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() || n.eq_ignore_ascii_case("background") {
                return Err(format!(
                    "class name {n:?}: index 0 is the background, name the others"
                ));
            }
            if names[..i].contains(n) {
                return Err(format!("class name {n:?} is given twice"));
            }
        }
        Ok(Self::Fixed(names))
    }

    fn index(&mut self, label: &str) -> Result<u8, String> {
        match self {
            LabelMap::Fixed(names) => names
                .iter()
                .position(|n| n == label)
                .map(|i| i as u8 + 1)
                .ok_or_else(|| format!("unknown label {label:?} (classes: {})", names.join(", "))),
            LabelMap::FirstSeen(names) => {
                if let Some(i) = names.iter().position(|n| n == label) {
                    return Ok(i as u8 + 1);
                }
                if names.len() >= 254 {
                    return Err(format!("too many labels at {label:?}"));
                }
                if label.eq_ignore_ascii_case("background") {
                    return Err(format!(
                        "label {label:?}: index 0 is the background, not a label"
                    ));
                }
                names.push(label.to_string());
                Ok(names.len() as u8)
            }
        }
    }

    /// Class names, background first.
    pub fn names(&self) -> Vec<String> {
        let list = match self {
            LabelMap::Fixed(n) | LabelMap::FirstSeen(n) => n,
        };
        std::iter::once("background".to_string())
            .chain(list.iter().cloned())
            .collect()
    }
}

/// Reads a Label Studio JSON export (a list of tasks). For each task the last
/// annotation that was not cancelled is drawn; within it, results are painted in order,
/// so a later result covers an earlier one where they overlap. An annotation submitted
/// with no results is an all-background mask; a task with no annotation is an issue. `image_size` gives the
/// size of an image by file name, when the results do not carry it.
pub fn import_export(
    json_text: &str,
    labels: &mut LabelMap,
    image_size: &mut dyn FnMut(&str) -> Option<(u32, u32)>,
) -> Result<(Vec<ImportedTask>, Vec<TaskIssue>), String> {
    let export = ExportTasks::parse(json_text)?;
    let mut done = Vec::new();
    let mut issues = Vec::new();
    for i in 0..export.len() {
        match export.import(i, labels, image_size) {
            Ok(t) => done.push(t),
            Err(issue) => issues.push(issue),
        }
    }
    Ok((done, issues))
}

/// The tasks of a Label Studio export, imported one at a time: a caller that writes each
/// mask as it goes holds one mask in memory, however many tasks (a 1080p mask is 2 MB;
/// an export of thousands of them would otherwise be gigabytes).
pub struct ExportTasks {
    tasks: Vec<Value>,
}

impl ExportTasks {
    /// Parses the export's JSON (a list of tasks).
    pub fn parse(json_text: &str) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(json_text).map_err(|e| format!("not JSON: {e}"))?;
        match doc {
            Value::Array(tasks) => Ok(Self { tasks }),
            _ => Err("a Label Studio export is a JSON list of tasks".into()),
        }
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when the export has no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Imports task `i` (as [`import_export`] does; the same task imported twice with
    /// the same label map gives the same mask).
    pub fn import(
        &self,
        i: usize,
        labels: &mut LabelMap,
        image_size: &mut dyn FnMut(&str) -> Option<(u32, u32)>,
    ) -> Result<ImportedTask, TaskIssue> {
        let task = &self.tasks[i];
        let id = task
            .get("id")
            .map(|v| v.to_string().trim_matches('"').to_string())
            .unwrap_or_else(|| format!("#{i}"));
        match import_task(task, labels, image_size) {
            Ok(t) => Ok(ImportedTask { task: id, ..t }),
            Err(message) => Err(TaskIssue { task: id, message }),
        }
    }
}

/// The pixels one brush or polygon result paints (`None` for kinds without a mask).
fn paint_result(
    kind: &str,
    r: &Value,
    value: &Value,
    k: usize,
    width: u32,
    height: u32,
) -> Result<Option<Vec<bool>>, String> {
    Ok(Some(match kind {
        "brushlabels" => {
            let rle = value
                .get("rle")
                .or_else(|| r.get("rle"))
                .and_then(Value::as_array)
                .ok_or_else(|| format!("result {k}: brush without rle"))?;
            let bytes: Vec<u8> = rle
                .iter()
                .map(|v| v.as_u64().filter(|&b| b < 256).map(|b| b as u8))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("result {k}: rle holds a value that is not a byte"))?;
            rle_to_mask(&bytes, width, height).map_err(|e| format!("result {k}: {e}"))?
        }
        "polygonlabels" => {
            let pts = value
                .get("points")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("result {k}: polygon without points"))?;
            let pts: Vec<[f64; 2]> = pts
                .iter()
                .map(|p| Some([p.get(0)?.as_f64()?, p.get(1)?.as_f64()?]))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("result {k}: malformed polygon points"))?;
            rasterize_polygon(&pts, width, height)
        }
        _ => return Ok(None),
    }))
}

fn import_task(
    task: &Value,
    labels: &mut LabelMap,
    image_size: &mut dyn FnMut(&str) -> Option<(u32, u32)>,
) -> Result<ImportedTask, String> {
    let url = task
        .pointer("/data/image")
        .and_then(Value::as_str)
        .ok_or("no data.image")?;
    let image_name = image_file_name(url);
    let annotation = task
        .get("annotations")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter().rev().find(|x| {
                !x.get("was_cancelled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
        })
        .ok_or("no annotation")?;
    // An empty result list is a submitted "nothing to label": all background.
    let results = annotation
        .get("result")
        .and_then(Value::as_array)
        .ok_or("the annotation has no result list")?;
    let size = results
        .iter()
        .find_map(|r| {
            Some((
                r.get("original_width")?.as_u64()?,
                r.get("original_height")?.as_u64()?,
            ))
        })
        .map(|(w, h)| match (u32::try_from(w), u32::try_from(h)) {
            (Ok(w), Ok(h)) => Ok((w, h)),
            _ => Err(format!(
                "original_width x original_height {w}x{h} is not a picture size"
            )),
        })
        .transpose()?;
    let (width, height) = size
        .or_else(|| image_size(&image_name))
        .ok_or_else(|| format!("image {image_name} not found and no size in the results"))?;
    if let Some((iw, ih)) = image_size(&image_name) {
        if (iw, ih) != (width, height) {
            return Err(format!(
                "image {image_name} is {iw}x{ih}, the annotation is for {width}x{height}"
            ));
        }
    } else {
        return Err(format!("image {image_name} not found"));
    }
    foramen_core::limits::check_pixels(&format!("image {image_name}"), width, height)
        .map_err(|e| e.to_string())?;
    let mut mask = vec![0u8; width as usize * height as usize];
    for (k, r) in results.iter().enumerate() {
        let kind = r
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        let value = r.get("value").unwrap_or(&Value::Null);
        let names = value
            .get(&kind)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str);
        let Some(painted) = paint_result(&kind, r, value, k, width, height)? else {
            // Other result kinds (relations, text areas, ...) carry no mask.
            continue;
        };
        let name = names.ok_or_else(|| format!("result {k}: no label"))?;
        let class = labels.index(name).map_err(|e| format!("result {k}: {e}"))?;
        for (m, p) in mask.iter_mut().zip(painted) {
            if p {
                *m = class;
            }
        }
    }
    Ok(ImportedTask {
        task: String::new(),
        image_name,
        width,
        height,
        mask,
    })
}

/// The source video of a frame named `<video-stem>_<frame>.<ext>` (as `foramen extract`
/// names them); the whole stem when there is no `_<digits>` suffix.
pub fn source_video(file_name: &str) -> String {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
    match stem.rsplit_once('_') {
        Some((video, frame)) if !frame.is_empty() && frame.chars().all(|c| c.is_ascii_digit()) => {
            video.to_string()
        }
        _ => stem.to_string(),
    }
}

/// Assigns whole source videos to train/val/test with the given ratios, deterministic
/// for a seed: videos shuffled, then filled greedily by frame count.
pub fn split_by_video(names: &[String], ratios: [f64; 3], seed: u64) -> BTreeMap<String, usize> {
    let mut videos: BTreeMap<String, usize> = BTreeMap::new();
    for n in names {
        *videos.entry(source_video(n)).or_default() += 1;
    }
    let mut order: Vec<(String, usize)> = videos.into_iter().collect();
    let mut rng = crate::noise::Rng::new(seed);
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let total: usize = order.iter().map(|v| v.1).sum();
    let sum: f64 = ratios.iter().sum::<f64>().max(1e-9);
    let want: Vec<f64> = ratios.iter().map(|r| r / sum * total as f64).collect();
    let mut have = [0usize; 3];
    let mut out = BTreeMap::new();
    for (video, n) in order {
        // The split furthest below its share takes the next video.
        let s = (0..3)
            .filter(|&s| want[s] > 0.0)
            .max_by(|&a, &b| {
                let da = (want[a] - have[a] as f64) / want[a];
                let db = (want[b] - have[b] as f64) / want[b];
                da.total_cmp(&db).then(b.cmp(&a))
            })
            .unwrap_or(0);
        have[s] += n;
        out.insert(video, s);
    }
    out
}

/// Label Studio's labelling config for `classes` (index 0, background, is not a label).
pub fn labeling_config_xml(classes: &foramen_core::ClassSet) -> String {
    let mut s = String::from(
        "<View>\n  <Image name=\"image\" value=\"$image\" zoom=\"true\"/>\n  <BrushLabels name=\"tag\" toName=\"image\">\n",
    );
    for c in classes.classes.iter().skip(1) {
        let [r, g, b] = c.color;
        let name = c
            .name
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;");
        s.push_str(&format!(
            "    <Label value=\"{name}\" background=\"#{r:02x}{g:02x}{b:02x}\"/>\n"
        ));
    }
    s.push_str("  </BrushLabels>\n</View>\n");
    s
}

/// One task for import into Label Studio: the image URL and, when given, the model's
/// mask as brush pre-annotations (one result per class present).
pub fn task_json(
    image_url: &str,
    prediction: Option<(&[u8], u32, u32, &foramen_core::ClassSet, &str)>,
) -> Value {
    let mut task = json!({ "data": { "image": image_url } });
    if let Some((mask, width, height, classes, model)) = prediction {
        let mut results = Vec::new();
        for c in classes.classes.iter().skip(1) {
            let layer: Vec<bool> = mask.iter().map(|&m| m == c.index).collect();
            if !layer.iter().any(|&p| p) {
                continue;
            }
            results.push(json!({
                "from_name": "tag",
                "to_name": "image",
                "type": "brushlabels",
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "value": { "format": "rle", "rle": mask_to_rle(&layer), "brushlabels": [c.name] },
            }));
        }
        task["predictions"] = json!([{ "model_version": model, "result": results }]);
    }
    task
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng_mask(w: usize, h: usize, seed: u64) -> Vec<u8> {
        let mut r = crate::noise::Rng::new(seed);
        // Blobs with long runs and isolated pixels, as real masks have.
        let mut v = vec![0u8; w * h];
        let mut cur = 0u8;
        for x in &mut v {
            if r.next_u64().is_multiple_of(23) {
                cur = (r.next_u64() % 4) as u8;
            }
            *x = if r.next_u64().is_multiple_of(97) {
                9
            } else {
                cur
            };
        }
        v
    }

    #[test]
    fn rle_round_trips_runs_of_every_length_class() {
        let mut v = vec![7u8];
        for len in [2, 8, 9, 16, 17, 256, 257, 65_536, 65_537, 140_000] {
            v.extend(std::iter::repeat_n((len % 251) as u8, len));
            v.push(1);
        }
        assert_eq!(rle_decode(&rle_encode(&v)).expect("decode"), v);
        for (w, h) in [(1, 1), (3, 5), (37, 11), (101, 67)] {
            let m = rng_mask(w, h, (w * h) as u64);
            assert_eq!(rle_decode(&rle_encode(&m)).expect("decode"), m, "{w}x{h}");
        }
        assert_eq!(
            rle_decode(&rle_encode(&[])).expect("empty"),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn rle_header_and_padding_match_label_studio() {
        // Two values 5, 5: header 32 + 5 + 16 bits, one run (1 + 2 + 3 + 8 bits) = 67
        // bits, padded with 5 zeros to 72.
        let b = rle_encode(&[5, 5]);
        assert_eq!(b.len(), 9);
        assert_eq!(&b[..4], &[0, 0, 0, 2]);
        // One run of 20 fills exactly 72 bits: Label Studio still appends 8 zero bits.
        assert_eq!(rle_encode(&[4; 20]).len(), 10);
    }

    #[test]
    fn bad_rle_is_an_error_not_a_panic() {
        let b = rle_encode(&[1, 2, 3, 4]);
        assert_eq!(rle_decode(&b[..5]), Err(RleError::Truncated(37)));
        let err = rle_to_mask(&rle_encode(&[0; 12]), 2, 2).expect_err("length");
        assert!(err.to_string().contains("2x2x4"), "{err}");
        // A header claiming a huge count with no data behind it.
        assert!(matches!(
            rle_decode(&[255, 255, 255, 255, 0x38, 0, 0]),
            Err(RleError::Truncated(_))
        ));
        // Issue 18, item 7: a header declaring 4 billion values in front of runs that
        // would decode to gigabytes is refused before decoding, by its count.
        let mut huge = rle_encode(&[0; 64]);
        huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        let t = std::time::Instant::now();
        let err = rle_to_mask(&huge, 4, 4).expect_err("count");
        assert!(
            matches!(err, RleError::Length { got, want: 64, .. } if got == u32::MAX as usize),
            "{err}"
        );
        assert!(t.elapsed() < std::time::Duration::from_millis(50));
    }

    #[test]
    fn class_lists_that_would_write_a_broken_data_set_are_refused() {
        // Issue 18, item 14: more than 254 names wrapped into 255/0; duplicates and a
        // class named background wrote a dataset.toml that eval rejects.
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(LabelMap::fixed(names(&["bone", "ligament", "disc"])).is_ok());
        let many: Vec<String> = (0..255).map(|i| format!("c{i}")).collect();
        assert!(
            LabelMap::fixed(many)
                .expect_err("255")
                .contains("255 class names")
        );
        assert!(
            LabelMap::fixed(names(&["bone", "bone"]))
                .expect_err("dup")
                .contains("twice")
        );
        let bg = LabelMap::fixed(names(&["Background", "bone"])).expect_err("bg");
        assert!(bg.contains("background"), "{bg}");
        let mut first_seen = LabelMap::FirstSeen(Vec::new());
        assert!(first_seen.index("background").is_err());
        for i in 0..254 {
            first_seen.index(&format!("c{i}")).expect("room");
        }
        assert!(
            first_seen
                .index("one more")
                .expect_err("full")
                .contains("too many")
        );
    }

    #[test]
    fn sizes_beyond_32_bits_or_the_pixel_limit_are_refused_per_task() {
        // Issue 18, item 15: original_width 2^32 + 160 was read as 160.
        let task = |w: u64, h: u64| {
            format!(
                r#"[{{"id": 9, "data": {{"image": "/data/local-files/?d=images/a.png"}},
                "annotations": [{{"result": [{{"type": "polygonlabels", "original_width": {w}, "original_height": {h},
                "value": {{"points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["bone"]}}}}]}}]}}]"#
            )
        };
        let mut labels = LabelMap::FirstSeen(Vec::new());
        let mut size = |_: &str| Some((160u32, 90u32));
        let (ok, issues) = import_export(&task(160, 90), &mut labels, &mut size).expect("json");
        assert_eq!((ok.len(), issues.len()), (1, 0));
        let (ok, issues) =
            import_export(&task((1u64 << 32) + 160, 90), &mut labels, &mut size).expect("json");
        assert!(ok.is_empty());
        assert!(
            issues[0].message.contains("is not a picture size"),
            "{}",
            issues[0].message
        );
        let mut huge = |_: &str| Some((60_000u32, 60_000u32));
        let (_, issues) =
            import_export(&task(60_000, 60_000), &mut labels, &mut huge).expect("json");
        assert!(
            issues[0].message.contains("over the limit"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn polygons_cover_pixel_centres_inside() {
        // A square from 25% to 75% of a 8x4 image: x 2..6, y 1..3.
        let m = rasterize_polygon(
            &[[25.0, 25.0], [75.0, 25.0], [75.0, 75.0], [25.0, 75.0]],
            8,
            4,
        );
        let on: Vec<(usize, usize)> = (0..32).filter(|&i| m[i]).map(|i| (i % 8, i / 8)).collect();
        let want: Vec<(usize, usize)> = (1..3).flat_map(|y| (2..6).map(move |x| (x, y))).collect();
        assert_eq!(on, want);
    }

    #[test]
    fn file_names_lose_the_upload_prefix_only() {
        assert_eq!(
            image_file_name("/data/upload/3/1a2b3c4d-case7_000120.png"),
            "case7_000120.png"
        );
        assert_eq!(
            image_file_name("s3://b/x/case-7_000120.png"),
            "case-7_000120.png"
        );
        assert_eq!(image_file_name("http://h/img/abc.png?x=1"), "abc.png");
        // Issue 18, item 19: a date prefix is not an upload prefix; local files are
        // named by their `d` parameter.
        assert_eq!(
            image_file_name("/data/local-files/?d=images/20240131-case7.png"),
            "20240131-case7.png"
        );
        assert_eq!(
            image_file_name("s3://b/20240131-case7.png"),
            "20240131-case7.png"
        );
        assert_eq!(source_video("case7_000120.png"), "case7");
        assert_eq!(source_video("still.png"), "still");
    }

    #[test]
    fn splits_keep_videos_whole_and_follow_the_ratios() {
        let names: Vec<String> = (0..10)
            .flat_map(|v| (0..10).map(move |f| format!("vid{v}_{f:04}.png")))
            .collect();
        let split = split_by_video(&names, [0.8, 0.1, 0.1], 3);
        assert_eq!(split.len(), 10);
        let count = |s| split.values().filter(|&&x| x == s).count();
        assert_eq!((count(0), count(1), count(2)), (8, 1, 1));
        assert_eq!(
            split,
            split_by_video(&names, [0.8, 0.1, 0.1], 3),
            "deterministic"
        );
    }

    #[test]
    fn exports_import_with_overlaps_resolved_by_order_and_errors_per_task() {
        let (w, h) = (6u32, 4u32);
        let left: Vec<bool> = (0..24).map(|i| i % 6 < 3).collect();
        let export = json!([
            { "id": 1, "data": { "image": "/data/upload/1/deadbeef-v1_0001.png" },
              "annotations": [{ "result": [
                { "type": "brushlabels", "original_width": w, "original_height": h,
                  "value": { "format": "rle", "rle": mask_to_rle(&left), "brushlabels": ["bone"] } },
                { "type": "polygonlabels", "original_width": w, "original_height": h,
                  "value": { "points": [[0, 0], [100, 0], [100, 50], [0, 50]], "polygonlabels": ["disc"] } }
              ]}]},
            { "id": 2, "data": { "image": "v1_0002.png" }, "annotations": [] },
            { "id": 3, "data": { "image": "v1_0003.png" },
              "annotations": [{ "result": [{ "type": "polygonlabels", "original_width": w, "original_height": h,
                  "value": { "points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["tumour"] } }]}]},
            { "id": 4, "data": { "image": "v1_0004.png" },
              "annotations": [{ "result": [{ "type": "brushlabels", "original_width": w, "original_height": h,
                  "value": { "rle": mask_to_rle(&[true; 5]), "brushlabels": ["bone"] } }]}]},
            { "id": 5, "data": { "image": "missing.png" },
              "annotations": [{ "result": [{ "type": "brushlabels", "original_width": w, "original_height": h,
                  "value": { "rle": mask_to_rle(&left), "brushlabels": ["bone"] } }]}]}
        ]);
        let mut labels = LabelMap::Fixed(vec!["bone".into(), "ligament".into(), "disc".into()]);
        let mut size = |n: &str| (n != "missing.png").then_some((w, h));
        let (done, issues) =
            import_export(&export.to_string(), &mut labels, &mut size).expect("parse");
        assert_eq!(done.len(), 1);
        let t = &done[0];
        assert_eq!(
            (t.task.as_str(), t.image_name.as_str()),
            ("1", "v1_0001.png")
        );
        // Top half: disc (painted last) over bone; bottom-left: bone; bottom-right: background.
        assert_eq!(
            t.mask,
            vec![
                3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0
            ]
        );
        let msgs: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(msgs[0].starts_with("task 2: no annotation"), "{msgs:?}");
        assert!(msgs[1].contains("task 3") && msgs[1].contains("unknown label \"tumour\""));
        assert!(
            msgs[2].contains("task 4") && msgs[2].contains("6x4x4"),
            "{msgs:?}"
        );
        assert!(msgs[3].contains("task 5") && msgs[3].contains("missing.png not found"));
    }

    #[test]
    fn labels_are_numbered_by_first_appearance_without_a_class_list() {
        let mut l = LabelMap::FirstSeen(vec![]);
        assert_eq!(l.index("disc"), Ok(1));
        assert_eq!(l.index("bone"), Ok(2));
        assert_eq!(l.index("disc"), Ok(1));
        assert_eq!(l.names(), vec!["background", "disc", "bone"]);
    }

    #[test]
    fn predictions_carry_one_brush_layer_per_class_present() {
        let classes = foramen_core::ClassSet::lumbar();
        let mask = vec![0, 1, 1, 3, 0, 3];
        let t = task_json("/img/a.png", Some((&mask, 3, 2, &classes, "m")));
        let res = t
            .pointer("/predictions/0/result")
            .and_then(Value::as_array)
            .expect("results");
        assert_eq!(res.len(), 2);
        let rle: Vec<u8> = res[1]["value"]["rle"]
            .as_array()
            .expect("rle")
            .iter()
            .map(|v| v.as_u64().expect("byte") as u8)
            .collect();
        assert_eq!(res[1]["value"]["brushlabels"][0], "disc");
        assert_eq!(
            rle_to_mask(&rle, 3, 2).expect("decode"),
            vec![false, false, false, true, false, true]
        );
        let xml = labeling_config_xml(&classes);
        assert!(
            xml.contains("<Label value=\"bone\" background=\"#"),
            "{xml}"
        );
        assert!(
            !xml.contains("background\" background"),
            "index 0 is not a label"
        );
    }
}
