//! Label Studio interchange: its brush RLE codec (bit-exact with `label-studio-converter`'s
//! `brush` module), polygon rasterisation, reading JSON exports into class-index masks,
//! and writing tasks with model pre-annotations plus the labelling config.

mod brush;
mod images;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub use brush::{RleError, mask_to_rle, rasterize_polygon, rle_decode, rle_encode, rle_to_mask};
pub use images::{ImageFiles, image_file_name, image_url, local_files_path};

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
    /// The image's file name ([`image_file_name`] of its URL).
    pub image_name: String,
    /// The task's image URL (`data.image`), which [`ImageFiles::find`] resolves.
    pub image_url: String,
    /// Image size.
    pub width: u32,
    /// Image size.
    pub height: u32,
    /// Class index per pixel (0 = unlabelled background).
    pub mask: Vec<u8>,
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

/// Refuses what would silently lose or garble a label when the tasks are written as a
/// data set: two tasks for one image, two images whose masks would be one file (`a.png`,
/// `a.jpg`), and names with white space (list lines are `image mask`, split on spaces).
pub fn check_task_names<'a>(
    tasks: impl IntoIterator<Item = &'a ImportedTask>,
) -> Result<(), String> {
    let mut stems: BTreeMap<String, &ImportedTask> = BTreeMap::new();
    for t in tasks {
        if t.image_name.chars().any(char::is_whitespace) {
            return Err(format!(
                "task {}: image name {:?} has white space, which the data set's lists cannot hold; rename it",
                t.task, t.image_name
            ));
        }
        let stem = std::path::Path::new(&t.image_name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(first) = stems.insert(stem.clone(), t) {
            let what = if first.image_name == t.image_name {
                format!("both label {}", t.image_name)
            } else {
                format!(
                    "{} and {} would both write masks/{stem}.png",
                    first.image_name, t.image_name
                )
            };
            return Err(format!("tasks {} and {}: {what}", first.task, t.task));
        }
    }
    Ok(())
}

/// The `dataset.toml` of a data set imported from `source` (an export file): classes in
/// index order (`names`, background first) and where it came from, the split ratios as
/// given (80,10,10 or 0.8,0.1,0.1) in percent of their sum.
pub fn imported_dataset_info(
    name: &str,
    source: &str,
    names: &[String],
    split: [f64; 3],
    seed: u64,
) -> crate::DatasetInfo {
    let total: f64 = split.iter().sum();
    let pct = split.map(|r| r / total * 100.0);
    let listed: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i} {n}"))
        .collect();
    crate::DatasetInfo {
        name: name.to_string(),
        description: format!(
            "Imported from the Label Studio export {source} by foramen import. Class indices: {}. Unlabelled pixels are 0 (background); where results overlap, the later result wins. Split by source video ({:.0}/{:.0}/{:.0}, seed {seed}).",
            listed.join(", "),
            pct[0],
            pct[1],
            pct[2]
        ),
        ignore_index: 255,
        classes: foramen_core::ClassSet::from_names(names).classes,
        ignore_classes: Vec::new(),
    }
}

/// Reads a Label Studio JSON export (a list of tasks). For each task the last
/// annotation that was not cancelled is drawn; within it, results are painted in order,
/// so a later result covers an earlier one where they overlap. An annotation submitted
/// with no results is an all-background mask; a task with no annotation is an issue.
/// `image_size` gives the size of the image a task's URL (`data.image`) names, `None`
/// when there is no such file.
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

/// The result list of a task's latest annotation that was not cancelled.
fn latest_results(task: &Value) -> Result<&Vec<Value>, String> {
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
    Ok(annotation
        .get("result")
        .and_then(Value::as_array)
        .ok_or("the annotation has no result list")?)
}

/// The picture size the results were drawn on; the image (found by `url`) must exist
/// and have that size.
fn task_size(
    results: &[Value],
    image_name: &str,
    url: &str,
    image_size: &mut dyn FnMut(&str) -> Option<(u32, u32)>,
) -> Result<(u32, u32), String> {
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
        .or_else(|| image_size(url))
        .ok_or_else(|| format!("image {image_name} not found and no size in the results"))?;
    match image_size(url) {
        Some((iw, ih)) if (iw, ih) != (width, height) => Err(format!(
            "image {image_name} is {iw}x{ih}, the annotation is for {width}x{height}"
        )),
        Some(_) => Ok((width, height)),
        None => Err(format!("image {image_name} not found (URL {url:?})")),
    }
}

/// The class mask the results paint, later results over earlier ones.
fn paint_results(
    results: &[Value],
    labels: &mut LabelMap,
    (width, height): (u32, u32),
) -> Result<Vec<u8>, String> {
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
    Ok(mask)
}

/// One exported task as a class mask, or why it cannot be imported.
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
    if image_name.is_empty() {
        return Err(format!("image URL {url:?} names no file"));
    }
    let results = latest_results(task)?;
    let (width, height) = task_size(results, &image_name, url, image_size)?;
    foramen_core::limits::check_pixels(&format!("image {image_name}"), width, height)
        .map_err(|e| e.to_string())?;
    let mask = paint_results(results, labels, (width, height))?;
    Ok(ImportedTask {
        task: String::new(),
        image_name,
        image_url: url.to_string(),
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
