use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

#[test]
fn empty_file_gives_defaults_and_round_trips() {
    let c = parse("").expect("defaults");
    assert_eq!(c, Config::default());
    assert_eq!(parse(&c.to_toml()).expect("round trip"), c);
}

#[test]
fn save_writes_what_load_reads() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("foramen.toml");
    let mut c = Config::default();
    c.overlay.opacity = 0.7;
    c.overlay.class_opacity.insert("disc".into(), 0.2);
    c.display.monitor = Some(1);
    c.save(&path).expect("save");
    assert_eq!(Config::load(&path).expect("load"), c);
    assert!(!dir.path().join("foramen.toml.tmp").exists());
}

#[test]
fn save_keys_changes_only_those_keys_and_keeps_comments_and_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("or.toml");
    let text = "# Theatre 3 settings\n[recording]\ndir = \"/srv/rec\" # the RAID\n\n[overlay]\n# agreed with Dr. K\nopacity = 0.4 # not darker\nmode = \"fill\"\n";
    std::fs::write(&path, text).expect("write");
    let mut c = Config::load(&path).expect("load");
    c.overlay.opacity = 0.6;
    c.overlay.hidden_classes = vec!["disc".into()];
    // A one-off from the command line: not among the keys saved.
    c.recording.dir = "/tmp/one-off".into();
    c.save_keys(
        &path,
        &[("overlay", "opacity"), ("overlay", "hidden_classes")],
    )
    .expect("save");
    let saved = std::fs::read_to_string(&path).expect("read");
    assert!(
        saved.starts_with("# Theatre 3 settings\n[recording]\ndir = \"/srv/rec\" # the RAID\n"),
        "{saved}"
    );
    assert!(
        saved.contains("# agreed with Dr. K\nopacity = 0.6 # not darker\nmode = \"fill\"\n"),
        "{saved}"
    );
    let back = Config::load(&path).expect("reload");
    assert_eq!(back.overlay.hidden_classes, vec!["disc".to_string()]);
    assert_eq!(back.recording.dir, std::path::PathBuf::from("/srv/rec"));
    // A new file gets the keys alone.
    let fresh = dir.path().join("new.toml");
    c.display.hud = true;
    c.save_keys(&fresh, &[("display", "hud")]).expect("save");
    assert_eq!(
        std::fs::read_to_string(&fresh).expect("read"),
        "[display]\nhud = true\n"
    );
}

#[test]
fn reads_values() {
    let c = parse(
        "[inference]\nmax_mask_age_ms = 120\nlatency_budget_ms = 40.5\n[overlay]\nmode = \"contour\"\nopacity = 0.3\n[model]\nexecution_provider = \"cuda\"\n",
    )
    .expect("valid");
    assert_eq!(c.inference.max_mask_age_ms, 120.0);
    assert_eq!(c.overlay.mode, OverlayMode::Contour);
    assert_eq!(c.model.execution_provider, ExecutionProvider::Cuda);
}

#[test]
fn errors_name_key_and_line() {
    let msg = parse("[inference]\n\nmax_mask_age_ms = -5\n")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("test.toml") && msg.contains("line 3") && msg.contains("out of range"),
        "{msg}"
    );

    for (key, bad) in [
        ("temporal_alpha", "1.0"),
        ("temporal_hysteresis", "1.5"),
        ("temporal_motion", "2"),
        ("min_confidence", "-0.1"),
        ("scene_cut_threshold", "0.0"),
    ] {
        let msg = parse(&format!("[inference]\n{key} = {bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("line 2") && msg.contains(key) && msg.contains("out of range"),
            "{msg}"
        );
    }
    let c = parse("[inference]\ntemporal_alpha = 0\nmin_confidence = 0.4\n").expect("valid");
    assert_eq!(
        (c.inference.temporal_alpha, c.inference.min_confidence),
        (0.0, 0.4)
    );

    let msg = parse("[overlay]\nopacity = \"half\"\n")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("line 2") && msg.contains("opacity"), "{msg}");

    let msg = parse("[overlay.class_opacity]\nbone = 0.5\ndisc = 1.5\n")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("disc") && msg.contains("out of range"),
        "{msg}"
    );

    // Issue 18, item 15: values that were accepted and wrecked the screen or the disk.
    for (text, line) in [
        ("[overlay]\ncontour_px = 1000000\n", 2),
        ("[overlay]\n\ncontour_px = 0\n", 3),
        ("[capture]\nfps = -5\n", 2),
        ("[capture]\nfps = nan\n", 2),
        ("[recording]\nsegment_s = 1e-300\n", 2),
    ] {
        let msg = parse(text).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("line {line}")) && msg.contains("out of range"),
            "{text}: {msg}"
        );
    }

    let msg = parse("[recording]\nsegment_s = 0\n")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("line 2") && msg.contains("out of range"),
        "{msg}"
    );

    let msg = parse("[overlay]\nopacty = 0.5\n").unwrap_err().to_string();
    assert!(
        msg.contains("unknown field") && msg.contains("opacty"),
        "{msg}"
    );
}
