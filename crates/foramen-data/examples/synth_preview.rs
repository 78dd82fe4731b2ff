//! Renders a contact sheet and prints appearance statistics (development aid).
//!
//! `synth_preview OUT.png [FIRST_SEED] [ONE_FRAME.png]`: the sheet of seeds FIRST..FIRST+8,
//! then per seed at 1080p the statistics inside the field of view (0.97 of the radius)
//! and over the whole lit area, rim and soft edge included.

use foramen_data::stats::{Appearance, measure};
use foramen_data::synth::{SceneSpec, contact_sheet, lit_radius, render_still};

fn line(a: &Appearance) -> String {
    format!(
        "rgb {:.0},{:.0},{:.0} r>b {:.2} warm {:.3} sat {:.2} val {:.2} >0.9 {:.2} white {:.3} std {:.1} lap {:.1}",
        a.mean_rgb[0],
        a.mean_rgb[1],
        a.mean_rgb[2],
        a.red_over_blue,
        a.warm_hue,
        a.mean_saturation,
        a.mean_value,
        a.bright,
        a.neutral_white,
        a.grey_std,
        a.laplacian_var
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args.get(1).map_or("preview.png", String::as_str);
    let first: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let seeds: Vec<u64> = (first..first + 8).collect();
    let (w, h, sheet) = contact_sheet(&seeds, 480, 270, 4);
    foramen_data::dataset::save_rgb(std::path::Path::new(out), w, h, sheet).expect("save");
    for s in &seeds {
        let spec = SceneSpec::from_seed(*s);
        let t = std::time::Instant::now();
        let r = render_still(&spec, 1920, 1080);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let (cx, cy, radius, lit) = lit_radius(&spec, 1920, 1080);
        let inner = measure(&r.rgb, 1920, 1080, cx, cy, radius * 0.97);
        let whole = measure(&r.rgb, 1920, 1080, cx, cy, lit);
        println!(
            "seed {s}: {ms:.0} ms\n  inside {}\n  lit    {}",
            line(&inner),
            line(&whole)
        );
    }
    if let Some(one) = args.get(3) {
        let r = render_still(&SceneSpec::from_seed(first), 1920, 1080);
        foramen_data::dataset::save_rgb(std::path::Path::new(one), 1920, 1080, r.rgb)
            .expect("save");
    }
}
