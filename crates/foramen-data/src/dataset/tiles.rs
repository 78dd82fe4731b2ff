//! The report's tiles: a picture, its truth and a prediction side by side.

/// Picture, coloured truth and coloured prediction side by side (ignored pixels grey);
/// `None` when a file cannot be read or the picture is over the pixel limit (with saved
/// predictions nothing else reads the picture, so its size is checked here).
pub fn side_by_side(
    image_path: &std::path::Path,
    mask_path: &std::path::Path,
    pred: &[u8],
    colors: &[[u8; 3]],
) -> Option<image::RgbImage> {
    let truth = super::load_mask(mask_path).ok()?;
    let (w, h) = truth.dimensions();
    let (pw, ph) = image::image_dimensions(image_path).ok()?;
    foramen_core::limits::check_pixels("the picture", pw, ph).ok()?;
    let picture = image::open(image_path).ok()?.into_rgb8();
    let picture = image::imageops::resize(&picture, w, h, image::imageops::FilterType::Triangle);
    let paint = |v: u8| colors.get(v as usize).copied().unwrap_or([128, 128, 128]);
    let mut out = image::RgbImage::new(w * 3, h);
    for y in 0..h {
        for x in 0..w {
            out.put_pixel(x, y, *picture.get_pixel(x, y));
            out.put_pixel(w + x, y, image::Rgb(paint(truth.get_pixel(x, y).0[0])));
            out.put_pixel(2 * w + x, y, image::Rgb(paint(pred[(y * w + x) as usize])));
        }
    }
    Some(out)
}
