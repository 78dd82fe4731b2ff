//! The model contract read from ONNX metadata: any JSON is accepted or rejected with a
//! message, never a panic.
#![no_main]
use foramen_segment::ModelContract;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = ModelContract::parse(text) {
            let _ = c.class_set();
        }
    }
});
