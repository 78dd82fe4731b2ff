//! Settings files: any text parses or errors; what parses round-trips through TOML.
#![no_main]
use foramen_core::Config;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = Config::parse(text, Path::new("fuzz.toml")) {
        let again = Config::parse(&cfg.to_toml(), Path::new("again.toml")).expect("round trip");
        assert_eq!(again, cfg);
    }
});
