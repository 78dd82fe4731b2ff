// Foramen's GPU compositor: the video frame and the newest class mask, blended in one
// pass inside the window's render pass. It follows the CPU reference (`Compositor`)
// rule for rule, so that a frame drawn 1:1 matches it to rounding:
//   - the video is packed RGB8, uploaded as is (no conversion on the CPU): a Rgba8Uint
//     texture whose texels each hold 4 consecutive bytes of a row; pixels are
//     reassembled here and filtered bilinearly (pixel centres aligned, edges clamped);
//   - the class of a display pixel is the bilinear-weighted vote of its 4 nearest mask
//     pixels (first candidate wins ties), so small masks get smooth borders;
//   - a contour is drawn on the inside of each region where a pixel within
//     `contour_radius` display pixels along an axis has another class;
//   - pixels darker than the black level (outside the scope's field stop) are never
//     annotated; hidden classes are drawn as video.

struct Params {
    frame_size: vec2<u32>,     // video width, height (pixels)
    mask_size: vec2<u32>,      // mask width, height; 0 x 0 = no overlay this frame
    view_origin: vec2<f32>,    // viewport top-left in framebuffer pixels
    view_size: vec2<f32>,      // viewport size in framebuffer pixels
    contour_radius: f32,       // display pixels checked on each side for a contour
    black_level: f32,          // 0..255, brightest channel below it is never annotated
    mode: u32,                 // bit 0: fill, bit 1: contour
    srgb_target: u32,          // 1: the framebuffer encodes sRGB itself
    texel_width: u32,          // width of the video texture in texels
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    color: array<vec4<f32>, 32>,      // rgb 0..1 per class; a = 1 when the class is drawn
    fill_alpha: array<vec4<f32>, 8>,  // fill opacity per class, 4 classes per vec4
};

@group(0) @binding(0) var video: texture_2d<u32>;
@group(0) @binding(1) var classes: texture_2d<u32>;
@group(0) @binding(2) var<uniform> p: Params;

struct VsOut {
    @builtin(position) pos: vec4<f32>,
};

// One triangle that covers the viewport.
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> VsOut {
    let x = f32((i << 1u) & 2u);
    let y = f32(i & 2u);
    var o: VsOut;
    o.pos = vec4<f32>(x * 2.0 - 1.0, 1.0 - y * 2.0, 0.0, 1.0);
    return o;
}

// The 4 bytes of texel `t` of row `y` as one little-endian word.
fn video_word(t: u32, y: u32) -> u32 {
    let v = textureLoad(video, vec2<u32>(min(t, p.texel_width - 1u), y), 0);
    return v.x | (v.y << 8u) | (v.z << 16u) | (v.w << 24u);
}

// Byte `i` (0..11) of the 12 bytes held in words a, b, c.
fn byte_of(a: u32, b: u32, c: u32, i: u32) -> f32 {
    let w = select(select(c, b, i < 8u), a, i < 4u);
    return f32((w >> ((i & 3u) * 8u)) & 255u);
}

// Pixels x and x + 1 (clamped) of row y, in 0..255 units, from at most 3 texel loads
// (a software rasterizer pays for every load).
fn video_pair(x: u32, y: u32, last: bool) -> mat2x3<f32> {
    let b = x * 3u;
    let t = b >> 2u;
    let a = video_word(t, y);
    let bb = video_word(t + 1u, y);
    let c = video_word(t + 2u, y);
    let o = b & 3u;
    let p0 = vec3<f32>(byte_of(a, bb, c, o), byte_of(a, bb, c, o + 1u), byte_of(a, bb, c, o + 2u));
    if last {
        return mat2x3<f32>(p0, p0);
    }
    let p1 = vec3<f32>(byte_of(a, bb, c, o + 3u), byte_of(a, bb, c, o + 4u), byte_of(a, bb, c, o + 5u));
    return mat2x3<f32>(p0, p1);
}

// Bilinear sample in 0..255 units; uv in 0..1 over the frame.
fn video_bilinear(uv: vec2<f32>) -> vec3<f32> {
    let size = vec2<f32>(p.frame_size);
    let s = clamp(uv * size - 0.5, vec2<f32>(0.0), size - 1.0);
    let f = floor(s);
    let t = s - f;
    let i0 = vec2<u32>(f);
    let last = i0.x + 1u >= p.frame_size.x;
    let y1 = min(i0.y + 1u, p.frame_size.y - 1u);
    let top = video_pair(i0.x, i0.y, last);
    let bottom = video_pair(i0.x, y1, last);
    return mix(mix(top[0], top[1], t.x), mix(bottom[0], bottom[1], t.x), t.y);
}

// The classes of mask texels i0, right of it, below it and diagonal (edges clamped).
fn mask_quad(i0: vec2<u32>) -> vec4<u32> {
    let i1 = min(i0 + 1u, p.mask_size - 1u);
    return vec4<u32>(
        textureLoad(classes, vec2<u32>(i0.x, i0.y), 0).r,
        textureLoad(classes, vec2<u32>(i1.x, i0.y), 0).r,
        textureLoad(classes, vec2<u32>(i0.x, i1.y), 0).r,
        textureLoad(classes, vec2<u32>(i1.x, i1.y), 0).r,
    );
}

fn class_at(uv: vec2<f32>) -> u32 {
    let size = vec2<f32>(p.mask_size);
    let s = clamp(uv * size - 0.5, vec2<f32>(0.0), size - 1.0);
    let f = floor(s);
    let t = s - f;
    let q = mask_quad(vec2<u32>(f));
    let q0 = q.x;
    let q1 = q.y;
    let q2 = q.z;
    let q3 = q.w;
    if q0 == q1 && q1 == q2 && q2 == q3 {
        return q0;
    }
    // Bilinear-weighted vote, unrolled (no local arrays: they are slow on lavapipe).
    let w0 = (1.0 - t.x) * (1.0 - t.y);
    let w1 = t.x * (1.0 - t.y);
    let w2 = (1.0 - t.x) * t.y;
    let w3 = t.x * t.y;
    let s0 = w0 + select(0.0, w1, q1 == q0) + select(0.0, w2, q2 == q0) + select(0.0, w3, q3 == q0);
    let s1 = w1 + select(0.0, w0, q0 == q1) + select(0.0, w2, q2 == q1) + select(0.0, w3, q3 == q1);
    let s2 = w2 + select(0.0, w0, q0 == q2) + select(0.0, w1, q1 == q2) + select(0.0, w3, q3 == q2);
    let s3 = w3 + select(0.0, w0, q0 == q3) + select(0.0, w1, q1 == q3) + select(0.0, w2, q2 == q3);
    var best = q0;
    var best_w = s0;
    if s1 > best_w {
        best = q1;
        best_w = s1;
    }
    if s2 > best_w {
        best = q2;
        best_w = s2;
    }
    if s3 > best_w {
        best = q3;
    }
    return best;
}

// False when every position the contour test would look at falls inside one mask cell
// whose four texels agree: then no neighbour can have another class, and the 16 texture
// loads of the test are skipped (most pixels of an upscaled mask).
fn near_border(px: vec2<f32>) -> bool {
    let size = vec2<f32>(p.mask_size);
    let r = p.contour_radius;
    let lo = floor(clamp((px - vec2<f32>(r)) / p.view_size * size - 0.5, vec2<f32>(0.0), size - 1.0));
    let hi = floor(clamp((px + vec2<f32>(r)) / p.view_size * size - 0.5, vec2<f32>(0.0), size - 1.0));
    if any(lo != hi) {
        return true;
    }
    let q = mask_quad(vec2<u32>(lo));
    return !(q.x == q.y && q.y == q.z && q.z == q.w);
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let lo = c / 12.92;
    let hi = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(hi, lo, c <= vec3<f32>(0.04045));
}

fn finish(rgb255: vec3<f32>) -> vec4<f32> {
    var c = clamp(rgb255 / 255.0, vec3<f32>(0.0), vec3<f32>(1.0));
    if p.srgb_target == 1u {
        c = srgb_to_linear(c);
    }
    return vec4<f32>(c, 1.0);
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    // Pixel centres, measured from the viewport (not interpolated), so that a 1:1 view
    // samples exactly one video pixel and one mask vote per display pixel.
    let px = in.pos.xy - p.view_origin;
    let uv = px / p.view_size;
    let src = video_bilinear(uv);
    if p.mask_size.x == 0u || p.mask_size.y == 0u {
        return finish(src);
    }
    let c = class_at(uv);
    if c >= 32u || p.color[c].a < 0.5 || max(src.r, max(src.g, src.b)) < p.black_level {
        return finish(src);
    }
    let col = p.color[c].rgb * 255.0;
    if (p.mode & 2u) != 0u && near_border(px) {
        let r = i32(p.contour_radius);
        for (var d = 1; d <= r; d++) {
            let o = f32(d);
            let left = px.x - o >= 0.0 && class_at((px - vec2<f32>(o, 0.0)) / p.view_size) != c;
            let right = px.x + o < p.view_size.x && class_at((px + vec2<f32>(o, 0.0)) / p.view_size) != c;
            let up = px.y - o >= 0.0 && class_at((px - vec2<f32>(0.0, o)) / p.view_size) != c;
            let down = px.y + o < p.view_size.y && class_at((px + vec2<f32>(0.0, o)) / p.view_size) != c;
            if left || right || up || down {
                return finish(col);
            }
        }
    }
    if (p.mode & 1u) != 0u {
        let a = p.fill_alpha[c >> 2u][c & 3u];
        return finish(src * (1.0 - a) + col * a);
    }
    return finish(src);
}
