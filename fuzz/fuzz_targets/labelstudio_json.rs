//! Label Studio exports: any text is imported or reported per task, never a panic.
#![no_main]
use foramen_data::labelstudio::{LabelMap, import_export};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut labels = LabelMap::FirstSeen(Vec::new());
    // Every image "exists" at a small size, so the mask paths are exercised.
    let mut size = |_: &str| Some((7u32, 5u32));
    let _ = import_export(text, &mut labels, &mut size);
});
