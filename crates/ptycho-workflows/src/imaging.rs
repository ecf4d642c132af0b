//! PNG output for people: figures of the amplitude and phase (title, axes in pixels, colour bar),
//! the loss curve (axes, labels, legend) and the ground-truth comparison; raw data PNGs. Files
//! are written atomically.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (crate `dejavu`), through plotters'
//! `ab_glyph` renderer: no system font is needed.

use std::path::Path;
use std::sync::Once;

use image::{ImageFormat, Rgb, RgbImage};
use ndarray::{Array2, ArrayView2};
use plotters::coord::Shift;
use plotters::element::BitMapElement;
use plotters::prelude::{
    BLACK, BitMapBackend, ChartBuilder, Color, DrawingArea, DrawingAreaErrorKind, DrawingBackend,
    EmptyElement, FontStyle, IntoDrawingArea, IntoFont, IntoLogRange, LabelAreaPosition,
    LineSeries, PathElement, RGBColor, Rectangle, TextStyle, WHITE,
};
use plotters::style::text_anchor::{HPos, Pos, VPos};

use ptycho_persist::write_bytes_atomic;

/// Font family name the embedded font is registered under (plotters' sans-serif).
const FONT: &str = "sans-serif";

/// Register the embedded DejaVu Sans (regular and bold) with plotters, once.
fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped in the crate; a failure would be a build
        // problem, reported when text is drawn (plotters: font not found).
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

type DrawResult<T> =
    Result<T, DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

/// How values map to colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colormap {
    /// Black (low) to white (high).
    Gray,
    /// A cyclic colormap for phase: −π and +π have the same colour.
    Cyclic,
    /// Perceptually uniform dark blue → green → yellow (matplotlib's viridis, 10 stops).
    Viridis,
    /// Diverging blue → white (middle) → red, for signed differences.
    Diverging,
}

const VIRIDIS: [[u8; 3]; 10] = [
    [68, 1, 84],
    [72, 40, 120],
    [62, 74, 137],
    [49, 104, 142],
    [38, 130, 142],
    [31, 158, 137],
    [53, 183, 121],
    [109, 205, 89],
    [180, 222, 44],
    [253, 231, 37],
];

fn lerp_rgb(stops: &[[u8; 3]], t: f64) -> [u8; 3] {
    let x = t * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    [0, 1, 2].map(|k| (a[k] as f64 + (b[k] as f64 - a[k] as f64) * f).round() as u8)
}

impl Colormap {
    /// Colour of `t ∈ [0, 1]`.
    pub fn rgb(self, t: f64) -> [u8; 3] {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        match self {
            Colormap::Gray => {
                let v = (t * 255.0).round() as u8;
                [v, v, v]
            }
            Colormap::Cyclic => {
                // Three phase-shifted cosines: smooth and periodic in t with period 1.
                let c = |shift: f64| {
                    let v = 0.5 + 0.42 * (2.0 * std::f64::consts::PI * (t + shift)).cos();
                    (v * 255.0).round().clamp(0.0, 255.0) as u8
                };
                [c(0.0), c(-1.0 / 3.0), c(-2.0 / 3.0)]
            }
            Colormap::Viridis => lerp_rgb(&VIRIDIS, t),
            Colormap::Diverging => lerp_rgb(&[[33, 102, 172], [247, 247, 247], [178, 24, 43]], t),
        }
    }

    /// Colour of pixels without data (not covered by any scan position): one the colormap does
    /// not use.
    pub fn missing(self) -> [u8; 3] {
        match self {
            Colormap::Gray => [150, 180, 215],
            _ => [128, 128, 128],
        }
    }
}

fn encode_png(img: &RgbImage) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(std::io::Error::other)?;
    Ok(bytes)
}

/// Render a 2-D array `[row, col]` as an RGB image. `range` = (low, high) mapped to the ends of the
/// colormap (values outside are clipped); `None` uses [`robust_range`]. Non-finite values are
/// drawn black.
pub fn render(data: ArrayView2<f32>, cmap: Colormap, range: Option<(f64, f64)>) -> RgbImage {
    let range = range.unwrap_or_else(|| robust_range(data));
    render_masked(data, None, cmap, range)
}

/// [`render`] with a coverage mask (`false`: no data, drawn in [`Colormap::missing`]).
pub fn render_masked(
    data: ArrayView2<f32>,
    mask: Option<ArrayView2<bool>>,
    cmap: Colormap,
    (lo, hi): (f64, f64),
) -> RgbImage {
    let (h, w) = data.dim();
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut img = RgbImage::new(w as u32, h as u32);
    for ((r, c), &v) in data.indexed_iter() {
        let px = if mask.is_some_and(|m| !m[[r, c]]) {
            cmap.missing()
        } else if v.is_finite() {
            cmap.rgb((v as f64 - lo) / span)
        } else {
            [0, 0, 0]
        };
        img.put_pixel(c as u32, r as u32, Rgb(px));
    }
    img
}

/// The `lo`-th and `hi`-th quantiles (fractions in [0, 1]) of the finite values of `data` where
/// `mask` is true (all pixels without a mask); `None` if there are none. When they are equal the
/// range is widened by ±0.5 (or ±|v|/2) so a constant image still has a colour bar.
pub fn percentile_range(
    data: ArrayView2<f32>,
    mask: Option<ArrayView2<bool>>,
    lo: f64,
    hi: f64,
) -> Option<(f64, f64)> {
    let mut v: Vec<f32> = data
        .indexed_iter()
        .filter(|(ix, v)| v.is_finite() && mask.is_none_or(|m| m[*ix]))
        .map(|(_, &v)| v)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64;
    let (a, b) = (at(lo), at(hi));
    if b > a {
        Some((a, b))
    } else {
        let d = if a == 0.0 { 0.5 } else { a.abs() / 2.0 };
        Some((a - d, a + d))
    }
}

/// Display percentiles of the image figures: the 1st and 99th of the covered pixels.
pub const DISPLAY_PERCENTILES: (f64, f64) = (0.01, 0.99);

/// Display range of the data: its 0.5th and 99.5th percentiles over finite values (so a few
/// outliers — an uncovered border, a hot pixel — do not wash out the image); (0, 1) if empty.
pub fn robust_range(data: ArrayView2<f32>) -> (f64, f64) {
    let mut v: Vec<f32> = data.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f32::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64;
    let (lo, hi) = (at(0.005), at(0.995));
    if hi > lo {
        (lo, hi)
    } else {
        (v[0] as f64, v[v.len() - 1] as f64)
    }
}

/// Write `data` as a PNG with the given colormap (atomic).
pub fn write_png(
    path: &Path,
    data: ArrayView2<f32>,
    cmap: Colormap,
    range: Option<(f64, f64)>,
) -> std::io::Result<()> {
    write_bytes_atomic(path, &encode_png(&render(data, cmap, range))?)
}

/// One image panel of a figure: the data, which pixels hold data, how to colour it, and text.
#[derive(Debug, Clone)]
pub struct ImagePanel<'a> {
    /// Values `[row, col]`.
    pub data: ArrayView2<'a, f32>,
    /// Pixels with data (`None`: all). Pixels without are drawn in [`Colormap::missing`] and take
    /// no part in the range.
    pub mask: Option<ArrayView2<'a, bool>>,
    /// Colormap.
    pub cmap: Colormap,
    /// Values at the ends of the colour bar (clipped outside).
    pub range: (f64, f64),
    /// Title above the panel.
    pub title: String,
    /// Label of the colour bar (the quantity and its unit).
    pub unit: String,
}

// Layout of a panel, pixels.
const TITLE_H: u32 = 30;
const AXIS_LEFT: u32 = 58;
const AXIS_BOTTOM: u32 = 46;
const GAP: u32 = 16;
const BAR_W: u32 = 18;
const BAR_LABELS: u32 = 86;
const PAD: u32 = 12;

/// Displayed size `(width, height)` of an `h × w` image: whole-pixel zoom up to `target` pixels on
/// the long side for small images, shrunk to `target` for large ones.
pub fn display_size(h: usize, w: usize, target: u32) -> (u32, u32) {
    let long = h.max(w).max(1) as f64;
    let scale = if long <= target as f64 {
        (target as f64 / long).floor()
    } else {
        target as f64 / long
    };
    (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    )
}

/// Long side of the displayed image in a single-image figure, pixels.
pub const FIGURE_IMAGE_SIZE: u32 = 480;
/// Long side of each displayed image in the comparison figure, pixels.
pub const COMPARISON_IMAGE_SIZE: u32 = 300;

/// Size `(width, height)` of a panel whose image is displayed `disp` pixels large.
fn panel_size(disp: (u32, u32)) -> (u32, u32) {
    (
        PAD + AXIS_LEFT + disp.0 + GAP + BAR_W + BAR_LABELS + PAD,
        TITLE_H + PAD + disp.1 + AXIS_BOTTOM,
    )
}

/// Size `(width, height)` of the single-image figure of an `h × w` image.
pub fn image_figure_size(h: usize, w: usize) -> (u32, u32) {
    panel_size(display_size(h, w, FIGURE_IMAGE_SIZE))
}

/// Where the image of the single-image figure of an `h × w` image lies: `(x, y, width, height)`
/// in figure pixels (nearest-neighbour zoom of the data, row 0 at the top).
pub fn image_figure_rect(h: usize, w: usize) -> (u32, u32, u32, u32) {
    let (dw, dh) = display_size(h, w, FIGURE_IMAGE_SIZE);
    (PAD + AXIS_LEFT, TITLE_H + PAD, dw, dh)
}

/// Size `(width, height)` of the comparison figure of `h × w` images (2 rows × 3 panels).
pub fn comparison_figure_size(h: usize, w: usize) -> (u32, u32) {
    let (pw, ph) = panel_size(display_size(h, w, COMPARISON_IMAGE_SIZE));
    (3 * pw, 2 * ph)
}

/// Nearest-neighbour resampling of `img` to `size`, as a packed RGB buffer.
fn resample(img: &RgbImage, (dw, dh): (u32, u32)) -> Vec<u8> {
    let (w, h) = img.dimensions();
    let mut out = Vec::with_capacity((dw * dh * 3) as usize);
    for y in 0..dh {
        let sy = ((y as u64 * h as u64) / dh as u64) as u32;
        for x in 0..dw {
            let sx = ((x as u64 * w as u64) / dw as u64) as u32;
            out.extend_from_slice(&img.get_pixel(sx, sy).0);
        }
    }
    out
}

/// Tick label of `v` on an axis spanning `lo..hi` with about `ticks` labels: as many decimals as
/// the tick step needs (values within 1e-9 of the span of 0 print as 0), scientific notation for
/// very large or very small spans.
fn fmt_tick(v: f64, (lo, hi): (f64, f64), ticks: usize) -> String {
    let span = (hi - lo).abs();
    if !(span > 0.0 && span.is_finite()) {
        return fmt_value(v);
    }
    if v.abs() < span * 1e-9 {
        return "0".into();
    }
    let step = span / ticks.max(1) as f64;
    let mag = lo.abs().max(hi.abs());
    if !(1e-3..1e5).contains(&mag) || step < 1e-4 {
        // The drawn ticks may sit closer than span / ticks: size the mantissa for half that step,
        // so that neighbouring labels never print alike (-3.56e6, -3.62e6, not -3.6e6 twice).
        let digits = ((2.0 * mag / step).log10().ceil() as i32).clamp(1, 6) as usize;
        return format!("{v:.digits$e}", digits = digits.saturating_sub(1).max(1));
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

fn text(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// Format a colour-bar or axis value with about 3 significant digits.
fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Draw one panel into `area` (exactly [`panel_size`] large): title, the image with axes in
/// pixels (column → x, row → y, row 0 at the top), a colour bar with ticks and its label.
fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    panel: &ImagePanel<'_>,
    disp: (u32, u32),
) -> DrawResult<()> {
    let (h, w) = panel.data.dim();
    let (aw, _) = area.dim_in_pixel();
    let title_style = (FONT, 17.0)
        .into_font()
        .style(FontStyle::Bold)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(
        &panel.title,
        &title_style,
        ((aw / 2) as i32, (TITLE_H / 2 + 4) as i32),
    )?;
    let body = area.margin(TITLE_H + PAD, 0, PAD, PAD);
    let (img_area, bar_area) = body.split_horizontally(AXIS_LEFT + disp.0 + GAP);

    let mut chart = ChartBuilder::on(&img_area)
        .margin_right(GAP)
        .set_label_area_size(LabelAreaPosition::Left, AXIS_LEFT)
        .set_label_area_size(LabelAreaPosition::Bottom, AXIS_BOTTOM)
        .build_cartesian_2d(0.0..w as f64, h as f64..0.0)?;
    let tick = |v: &f64| format!("{v:.0}");
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(text(13.0))
        .axis_desc_style(text(14.0))
        .x_desc("column (pixels)")
        .y_desc("row (pixels)")
        .draw()?;
    let rgb = render_masked(panel.data, panel.mask, panel.cmap, panel.range);
    let buf = resample(&rgb, disp);
    if let Some(el) = BitMapElement::with_owned_buffer((0.0, 0.0), disp, buf) {
        chart.draw_series(std::iter::once(el))?;
    }

    let (lo, hi) = panel.range;
    let mut bar = ChartBuilder::on(&bar_area)
        .set_label_area_size(LabelAreaPosition::Right, BAR_LABELS)
        .set_label_area_size(LabelAreaPosition::Bottom, AXIS_BOTTOM)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    let fmt = |v: &f64| fmt_tick(*v, (lo, hi), 6);
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&fmt)
        .label_style(text(13.0))
        .axis_desc_style(text(14.0))
        .y_desc(panel.unit.as_str())
        .draw()?;
    let bar_h = disp.1;
    let gradient: Vec<u8> = (0..bar_h)
        .flat_map(|y| {
            let t = 1.0 - y as f64 / (bar_h.max(2) - 1) as f64;
            let c = panel.cmap.rgb(t);
            (0..BAR_W).flat_map(move |_| c)
        })
        .collect();
    if let Some(el) = BitMapElement::with_owned_buffer((0.0, hi), (BAR_W, bar_h), gradient) {
        bar.draw_series(std::iter::once(el))?;
    }
    Ok(())
}

/// Render a one-panel figure (see [`ImagePanel`]); its size is [`image_figure_size`].
pub fn render_image_figure(panel: &ImagePanel<'_>) -> std::io::Result<RgbImage> {
    register_fonts();
    let (h, w) = panel.data.dim();
    let disp = display_size(h, w, FIGURE_IMAGE_SIZE);
    let size = panel_size(disp);
    let mut img = RgbImage::new(size.0, size.1);
    {
        let root = BitMapBackend::with_buffer(&mut img, size).into_drawing_area();
        (|| -> DrawResult<()> {
            root.fill(&WHITE)?;
            draw_panel(&root, panel, disp)?;
            root.present()
        })()
        .map_err(std::io::Error::other)?;
    }
    Ok(img)
}

/// Write [`render_image_figure`] as a PNG (atomic).
pub fn write_image_figure(path: &Path, panel: &ImagePanel<'_>) -> std::io::Result<()> {
    write_bytes_atomic(path, &encode_png(&render_image_figure(panel)?)?)
}

/// Render panels on a grid of `cols` columns (rows filled in order); all images must have the
/// same shape. The size is [`comparison_figure_size`] for 2 × 3 panels.
pub fn render_panel_grid(panels: &[ImagePanel<'_>], cols: usize) -> std::io::Result<RgbImage> {
    register_fonts();
    let Some(first) = panels.first() else {
        return Ok(RgbImage::new(1, 1));
    };
    let (h, w) = first.data.dim();
    let disp = display_size(h, w, COMPARISON_IMAGE_SIZE);
    let (pw, ph) = panel_size(disp);
    let cols = cols.max(1);
    let rows = panels.len().div_ceil(cols);
    let size = (pw * cols as u32, ph * rows as u32);
    let mut img = RgbImage::new(size.0, size.1);
    {
        let root = BitMapBackend::with_buffer(&mut img, size).into_drawing_area();
        (|| -> DrawResult<()> {
            root.fill(&WHITE)?;
            let areas = root.split_evenly((rows, cols));
            for (area, panel) in areas.iter().zip(panels) {
                draw_panel(area, panel, disp)?;
            }
            root.present()
        })()
        .map_err(std::io::Error::other)?;
    }
    Ok(img)
}

/// Write [`render_panel_grid`] as a PNG (atomic).
pub fn write_panel_grid(
    path: &Path,
    panels: &[ImagePanel<'_>],
    cols: usize,
) -> std::io::Result<()> {
    write_bytes_atomic(path, &encode_png(&render_panel_grid(panels, cols)?)?)
}

/// Pixels of a stitched object that some patch covered (uncovered pixels are exactly 0).
pub fn coverage(object: ArrayView2<num_complex::Complex32>) -> Array2<bool> {
    object.map(|z| z.re != 0.0 || z.im != 0.0)
}

/// Panels of the amplitude and phase figures of a stitched object (`amplitude`, `phase` and
/// `covered` of equal shape, see [`coverage`]): amplitude in grey on the 1st–99th percentiles of
/// the covered pixels; phase (radians) on the same percentiles with viridis, or on [−π, π] with
/// the cyclic map when the covered phases span more than 1.5π (wrapped phase). Uncovered pixels
/// set no range and are drawn in [`Colormap::missing`].
pub fn object_panels<'a>(
    amplitude: ArrayView2<'a, f32>,
    phase: ArrayView2<'a, f32>,
    covered: ArrayView2<'a, bool>,
) -> [ImagePanel<'a>; 2] {
    let (plo, phi) = DISPLAY_PERCENTILES;
    let amp_range = percentile_range(amplitude, Some(covered), plo, phi).unwrap_or((0.0, 1.0));
    let pi = std::f64::consts::PI;
    let (phase_cmap, phase_range) = match percentile_range(phase, Some(covered), plo, phi) {
        Some((lo, hi)) if hi - lo <= 1.5 * pi => (Colormap::Viridis, (lo, hi)),
        _ => (Colormap::Cyclic, (-pi, pi)),
    };
    [
        ImagePanel {
            data: amplitude,
            mask: Some(covered),
            cmap: Colormap::Gray,
            range: amp_range,
            title: "Reconstructed amplitude".into(),
            unit: "amplitude |O| (1st–99th percentile)".into(),
        },
        ImagePanel {
            data: phase,
            mask: Some(covered),
            cmap: phase_cmap,
            range: phase_range,
            title: "Reconstructed phase".into(),
            unit: "phase (rad)".into(),
        },
    ]
}

/// The 2 × 3 comparison panels (ground truth | reconstruction | difference; amplitude row, phase
/// row) of the images the metrics compare. Ground truth and reconstruction share the colour range
/// of the ground truth's 1st–99th percentiles widened to the reconstruction's; the difference
/// (reconstruction − ground truth) is shown on a symmetric range (99th percentile of its
/// absolute value).
pub fn comparison_panels<'a>(
    amp_t: ArrayView2<'a, f32>,
    amp_p: ArrayView2<'a, f32>,
    amp_d: ArrayView2<'a, f32>,
    phi_t: ArrayView2<'a, f32>,
    phi_p: ArrayView2<'a, f32>,
    phi_d: ArrayView2<'a, f32>,
    subtitle: &str,
) -> Vec<ImagePanel<'a>> {
    let (plo, phi) = DISPLAY_PERCENTILES;
    let joint = |t: ArrayView2<f32>, p: ArrayView2<f32>| {
        let a = percentile_range(t, None, plo, phi).unwrap_or((0.0, 1.0));
        let b = percentile_range(p, None, plo, phi).unwrap_or(a);
        (a.0.min(b.0), a.1.max(b.1))
    };
    let symmetric = |d: ArrayView2<f32>| {
        let abs = d.mapv(f32::abs);
        let m = percentile_range(abs.view(), None, phi, phi)
            .map(|(_, m)| m)
            .unwrap_or(1.0);
        let m = if m > 0.0 { m } else { 1.0 };
        (-m, m)
    };
    let (ra, rp) = (joint(amp_t, amp_p), joint(phi_t, phi_p));
    let panel = |data, cmap, range, title: &str, unit: &str| ImagePanel {
        data,
        mask: None,
        cmap,
        range,
        title: format!("{title}{subtitle}"),
        unit: unit.into(),
    };
    vec![
        panel(
            amp_t,
            Colormap::Gray,
            ra,
            "Ground truth amplitude",
            "amplitude",
        ),
        panel(
            amp_p,
            Colormap::Gray,
            ra,
            "Reconstructed amplitude",
            "amplitude (scaled to truth mean)",
        ),
        panel(
            amp_d,
            Colormap::Diverging,
            symmetric(amp_d),
            "Amplitude difference",
            "reconstruction − truth",
        ),
        panel(
            phi_t,
            Colormap::Viridis,
            rp,
            "Ground truth phase",
            "phase (rad, plane removed)",
        ),
        panel(
            phi_p,
            Colormap::Viridis,
            rp,
            "Reconstructed phase",
            "phase (rad, plane removed)",
        ),
        panel(
            phi_d,
            Colormap::Diverging,
            symmetric(phi_d),
            "Phase difference",
            "reconstruction − truth (rad)",
        ),
    ]
}

/// One curve of a line chart.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// y value at x = 1, 2, … (epochs); non-finite values are left out.
    pub values: &'a [f64],
    /// Line colour.
    pub color: [u8; 3],
    /// Legend entry (a series with no finite value has none).
    pub label: &'a str,
}

/// Size of the line chart, pixels.
pub const LINE_CHART_SIZE: (u32, u32) = (800, 500);

/// How the y axis of a line chart shows the values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YScale {
    /// Linear in the values.
    Linear,
    /// Logarithmic in the values (all finite values > 0 and spanning more than a decade).
    Log,
    /// Logarithmic in `value − min + δ`, `δ` = 1e-3 of the range (the losses here are large and
    /// negative, ~ −3.9e6: what matters is how far each epoch is above the best).
    LogAboveMin {
        /// The smallest finite value.
        min: f64,
        /// The offset δ.
        delta: f64,
    },
}

/// The y scale [`render_line_chart`] chooses for these values: [`YScale::Log`] when every
/// finite value is positive and they span more than a factor 10; [`YScale::LogAboveMin`] when they
/// span more than a factor 10 above their minimum otherwise (i.e. the first epochs would squash
/// the rest on a linear axis, judged by `(max − min)/(median − min) > 10`); else linear.
pub fn choose_y_scale(values: &[f64]) -> YScale {
    let mut v: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if v.len() < 3 {
        return YScale::Linear;
    }
    v.sort_by(f64::total_cmp);
    let (lo, hi, med) = (v[0], v[v.len() - 1], v[v.len() / 2]);
    if hi <= lo {
        return YScale::Linear;
    }
    if lo > 0.0 && hi / lo > 10.0 {
        return YScale::Log;
    }
    if med > lo && (hi - lo) / (med - lo) > 10.0 {
        return YScale::LogAboveMin {
            min: lo,
            delta: (hi - lo) * 1e-3,
        };
    }
    YScale::Linear
}

/// Draw curves against the epoch (x = 1, 2, …) on a white [`LINE_CHART_SIZE`] chart with a
/// title, axes, ticks, axis labels and a legend; the y scale is [`choose_y_scale`]'s. Drawn with
/// `plotters` into an in-memory bitmap (an error only if plotters reports one).
pub fn render_line_chart(
    series: &[Series<'_>],
    title: &str,
    y_label: &str,
) -> std::io::Result<RgbImage> {
    register_fonts();
    let mut img = RgbImage::new(LINE_CHART_SIZE.0, LINE_CHART_SIZE.1);
    let size = img.dimensions();
    draw_line_chart(&mut img, size, series, title, y_label).map_err(std::io::Error::other)?;
    Ok(img)
}

fn draw_line_chart(
    buf: &mut [u8],
    size: (u32, u32),
    series: &[Series<'_>],
    title: &str,
    y_label: &str,
) -> DrawResult<()> {
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let scale = choose_y_scale(&all);
    let map = |v: f64| match scale {
        YScale::LogAboveMin { min, delta } => v - min + delta,
        _ => v,
    };
    let lo = all.iter().copied().map(map).fold(f64::INFINITY, f64::min);
    let hi = all
        .iter()
        .copied()
        .map(map)
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        match scale {
            YScale::Linear => {
                let pad = (hi - lo) * 0.05;
                (lo - pad, hi + pad)
            }
            _ => (lo / 1.5, hi * 1.5),
        }
    } else if lo.is_finite() {
        (lo - lo.abs().max(1.0) * 0.5, lo + lo.abs().max(1.0) * 0.5)
    } else {
        (0.0, 1.0)
    };
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let x_range = 1.0..n as f64;

    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    root.fill(&WHITE)?;
    let y_desc = match scale {
        YScale::Linear => y_label.to_string(),
        YScale::Log => format!("{y_label} (log scale)"),
        YScale::LogAboveMin { min, delta } => format!(
            "{y_label} − min + δ (log; min = {}, δ = {})",
            fmt_value(min),
            fmt_value(delta)
        ),
    };
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, (FONT, 20).into_font().style(FontStyle::Bold))
        .margin(12)
        .set_label_area_size(LabelAreaPosition::Left, 90)
        .set_label_area_size(LabelAreaPosition::Bottom, 50);
    let x_fmt = |v: &f64| format!("{v:.0}");
    let y_fmt = |v: &f64| match scale {
        YScale::Linear => fmt_tick(*v, (lo, hi), 8),
        _ => format!("{v:.0e}"),
    };
    let light = RGBColor(225, 225, 225);
    // The two axis kinds have different coordinate types: one closure per kind.
    macro_rules! finish {
        ($chart:ident) => {{
            $chart
                .configure_mesh()
                .light_line_style(WHITE)
                .bold_line_style(light)
                .x_labels(10.min(n))
                .y_labels(8)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .label_style(text(13.0))
                .axis_desc_style(text(14.0))
                .x_desc("epoch")
                .y_desc(y_desc.as_str())
                .draw()?;
            for s in series {
                let color = RGBColor(s.color[0], s.color[1], s.color[2]);
                let pts: Vec<(f64, f64)> = s
                    .values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(i, &v)| ((i + 1) as f64, map(v)))
                    .collect();
                $chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
                $chart.draw_series(pts.iter().map(|&p| {
                    EmptyElement::at(p) + Rectangle::new([(-2, -2), (2, 2)], color.filled())
                }))?;
            }
        }};
    }
    match scale {
        YScale::Linear => {
            let mut chart = builder.build_cartesian_2d(x_range, lo..hi)?;
            finish!(chart);
        }
        _ => {
            let mut chart = builder.build_cartesian_2d(x_range, (lo..hi).log_scale())?;
            finish!(chart);
        }
    }
    draw_legend(&root, series)?;
    root.present()
}

/// The legend, in the header band right of the title (outside the plot: it never hides a
/// curve): a line sample and the label of each series with a finite value, right-aligned.
fn draw_legend(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    series: &[Series<'_>],
) -> DrawResult<()> {
    let font = text(14.0);
    let (w, _) = area.dim_in_pixel();
    let mut x = w as i32 - 14;
    let y = 20;
    for s in series.iter().rev() {
        if !s.values.iter().any(|v| v.is_finite()) {
            continue;
        }
        let (tw, _) = area.estimate_text_size(s.label, &font)?;
        x -= tw as i32;
        area.draw_text(
            s.label,
            &font.pos(Pos::new(HPos::Left, VPos::Center)),
            (x, y),
        )?;
        let color = RGBColor(s.color[0], s.color[1], s.color[2]);
        x -= 30;
        area.draw(&PathElement::new(
            vec![(x, y), (x + 24, y)],
            color.stroke_width(3),
        ))?;
        x -= 18;
    }
    Ok(())
}

/// Write a line chart PNG (atomic).
pub fn write_line_chart(
    path: &Path,
    series: &[Series<'_>],
    title: &str,
    y_label: &str,
) -> std::io::Result<()> {
    write_bytes_atomic(
        path,
        &encode_png(&render_line_chart(series, title, y_label)?)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn cyclic_colormap_wraps() {
        assert_eq!(Colormap::Cyclic.rgb(0.0), Colormap::Cyclic.rgb(1.0));
        assert_ne!(Colormap::Cyclic.rgb(0.0), Colormap::Cyclic.rgb(0.5));
        assert_eq!(Colormap::Gray.rgb(1.0), [255, 255, 255]);
    }

    #[test]
    fn png_round_trips_through_image() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        let data = Array2::from_shape_fn((5, 7), |(r, c)| (r * 7 + c) as f32);
        write_png(&p, data.view(), Colormap::Gray, None).unwrap();
        let back = image::open(&p).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (7, 5));
        assert_eq!(back.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(back.get_pixel(6, 4).0, [255, 255, 255]);
    }

    /// Pixels of colour `c` or of `c` blended with the white background (anti-aliased lines).
    fn tinted(img: &RgbImage, c: [u8; 3]) -> usize {
        let (k, _) = (0..3)
            .map(|i| (i, 255 - c[i] as i32))
            .max_by_key(|&(_, d)| d)
            .unwrap();
        img.pixels()
            .filter(|px| {
                let alpha = (255 - px.0[k] as i32) as f64 / (255 - c[k] as i32) as f64;
                alpha > 0.1
                    && (0..3).all(|i| {
                        let want = alpha * c[i] as f64 + (1.0 - alpha) * 255.0;
                        (px.0[i] as f64 - want).abs() <= 3.0
                    })
            })
            .count()
    }

    #[test]
    fn line_chart_draws_series() {
        let v = [3.0, 2.0, 1.5, 1.2];
        let img = render_line_chart(
            &[Series {
                values: &v,
                color: [255, 0, 0],
                label: "training",
            }],
            "Loss",
            "loss",
        )
        .unwrap();
        assert!(tinted(&img, [255, 0, 0]) > 600);
    }

    #[test]
    fn line_chart_png_is_written_and_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("loss_curve.png");
        let loss = [5.0, 4.0, 3.5, f64::NAN, 3.2];
        let val = [f64::NAN; 5];
        let blue = [f64::NAN, 4.5, 3.9, 3.6, 3.4];
        write_line_chart(
            &p,
            &[
                Series {
                    values: &loss,
                    color: [214, 39, 40],
                    label: "training",
                },
                Series {
                    values: &val,
                    color: [0, 200, 0],
                    label: "nothing",
                },
                Series {
                    values: &blue,
                    color: [31, 119, 180],
                    label: "validation",
                },
            ],
            "Loss per epoch",
            "loss",
        )
        .unwrap();
        // Written atomically: only the PNG is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), LINE_CHART_SIZE);
        let white = img.pixels().filter(|px| px.0 == [255, 255, 255]).count();
        assert!(white > 800 * 500 / 2, "mostly white background");
        let (red, blue) = (tinted(&img, [214, 39, 40]), tinted(&img, [31, 119, 180]));
        eprintln!("red {red}, blue {blue}");
        assert!(red > 400, "red curve drawn");
        assert!(blue > 400, "blue curve drawn");
        assert_eq!(
            tinted(&img, [0, 200, 0]),
            0,
            "an all-NaN series draws nothing"
        );
        // The y axis is a vertical black line left of the plotting area, after the tick labels.
        let left_axis = (0..800)
            .find(|&x| (100..400).all(|y| img.get_pixel(x, y).0 == [0, 0, 0]))
            .expect("a vertical black axis");
        assert!((60..160).contains(&left_axis), "y axis at x = {left_axis}");
        // Text (title, tick labels, axis labels): dark anti-aliased pixels left of the axis.
        let text_px = (0..left_axis)
            .flat_map(|x| (0..500).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 128))
            .count();
        assert!(text_px > 200, "tick labels and axis label drawn: {text_px}");
    }

    #[test]
    fn y_scale_follows_the_values() {
        // Losses of this model: large, negative, a steep first epoch then a slow decline.
        let loss: Vec<f64> = (0..20)
            .map(|i| -3.93e6 + 2.0e5 * (-(i as f64) * 1.5).exp() + 500.0 * (20 - i) as f64)
            .collect();
        match choose_y_scale(&loss) {
            YScale::LogAboveMin { min, delta } => {
                assert_eq!(min, loss[19]);
                assert!(delta > 0.0 && delta < 1e3, "{delta}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(choose_y_scale(&[100.0, 10.0, 3.0, 1.0, 0.5]), YScale::Log);
        assert_eq!(choose_y_scale(&[5.0, 4.5, 4.2, 4.0]), YScale::Linear);
        assert_eq!(choose_y_scale(&[f64::NAN, 1.0]), YScale::Linear);
        // Drawn on that scale without error.
        let img = render_line_chart(
            &[Series {
                values: &loss,
                color: [214, 39, 40],
                label: "training",
            }],
            "Loss",
            "loss",
        )
        .unwrap();
        assert!(tinted(&img, [214, 39, 40]) > 400);
    }

    /// A stitched-like object: a 40-pixel uncovered (zero) border around a covered region whose
    /// amplitudes lie in 0.9..1.1 (the case where min..max scaling put 99 % of the covered
    /// pixels at 248–254 of 255).
    fn stitched_like() -> Array2<num_complex::Complex32> {
        Array2::from_shape_fn((160, 150), |(r, c)| {
            if !(40..120).contains(&r) || !(40..110).contains(&c) {
                return num_complex::Complex32::new(0.0, 0.0);
            }
            let a = 1.0 + 0.1 * ((r as f32 * 0.23).sin() * (c as f32 * 0.17).cos());
            num_complex::Complex32::from_polar(a, 0.3 * (c as f32 * 0.05).sin())
        })
    }

    fn grey_percentiles(grey: &mut [u8]) -> (u8, u8) {
        grey.sort_unstable();
        let at = |q: f64| grey[((grey.len() - 1) as f64 * q).round() as usize];
        (at(0.05), at(0.95))
    }

    #[test]
    fn covered_amplitude_spans_the_grey_range() {
        let obj = stitched_like();
        let amp = obj.mapv(|z| z.norm());
        let phase = obj.mapv(|z| z.arg());
        let covered = coverage(obj.view());
        assert_eq!(covered.iter().filter(|&&c| c).count(), 80 * 70);
        let [amp_panel, phase_panel] = object_panels(amp.view(), phase.view(), covered.view());
        let img = render_masked(
            amp.view(),
            Some(covered.view()),
            Colormap::Gray,
            amp_panel.range,
        );
        let mut grey: Vec<u8> = covered
            .indexed_iter()
            .filter(|(_, c)| **c)
            .map(|((r, c), _)| img.get_pixel(c as u32, r as u32).0[0])
            .collect();
        let (p5, p95) = grey_percentiles(&mut grey);
        assert!(
            (p95 - p5) as f64 >= 0.6 * 255.0,
            "covered pixels span {p5}..{p95} of 0..255"
        );
        // Uncovered pixels are drawn in the "no data" colour, not grey.
        assert_eq!(img.get_pixel(0, 0).0, Colormap::Gray.missing());
        // The old scaling (all finite pixels) would not: the zeros set the low end.
        let old = render(amp.view(), Colormap::Gray, Some((0.0, 1.1)));
        let mut grey_old: Vec<u8> = covered
            .indexed_iter()
            .filter(|(_, c)| **c)
            .map(|((r, c), _)| old.get_pixel(c as u32, r as u32).0[0])
            .collect();
        let (o5, o95) = grey_percentiles(&mut grey_old);
        assert!(((o95 - o5) as f64) < 0.3 * 255.0, "{o5}..{o95}");
        // Small phase range: viridis on the covered percentiles, not the full circle.
        assert_eq!(phase_panel.cmap, Colormap::Viridis);
        assert!(phase_panel.range.1 - phase_panel.range.0 < 0.7);
    }

    #[test]
    fn image_figure_has_its_size_title_and_colour_bar() {
        let obj = stitched_like();
        let amp = obj.mapv(|z| z.norm());
        let phase = obj.mapv(|z| z.arg());
        let covered = coverage(obj.view());
        let [amp_panel, _] = object_panels(amp.view(), phase.view(), covered.view());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("amp.png");
        write_image_figure(&p, &amp_panel).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), image_figure_size(160, 150));
        // 160 rows → zoom 3: the image is 450 × 480 pixels.
        assert_eq!(fmt_tick(-2.78e-17, (-0.25, 0.25), 6), "0");
        assert_eq!(fmt_tick(0.8, (0.0, 1.05), 6), "0.8");
        assert_eq!(fmt_tick(0.95, (0.9, 1.1), 6), "0.95");
        assert_eq!(fmt_tick(-3.95e6, (-4.2e6, -3.9e6), 8), "-3.95e6");
        // A loss axis of −4.05e6 … −3.56e6 with 8 labels: every label distinct.
        let labels: Vec<String> = (0..8)
            .map(|i| fmt_tick(-4.05e6 + 0.49e6 * i as f64 / 7.0, (-4.05e6, -3.56e6), 8))
            .collect();
        let distinct: std::collections::BTreeSet<&String> = labels.iter().collect();
        assert_eq!(distinct.len(), 8, "{labels:?}");
        assert_eq!(display_size(160, 150, FIGURE_IMAGE_SIZE), (450, 480));
        // Title: dark pixels in the top strip.
        let title = (0..img.width())
            .flat_map(|x| (0..TITLE_H).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 100))
            .count();
        assert!(title > 100, "title drawn: {title}");
        // The colour bar: a column right of the image running from white (top) to black.
        let x_bar = PAD + AXIS_LEFT + 450 + GAP + BAR_W / 2;
        let top = img.get_pixel(x_bar, TITLE_H + PAD + 3).0;
        let bottom = img.get_pixel(x_bar, TITLE_H + PAD + 480 - 3).0;
        assert!(top[0] > 240 && bottom[0] < 15, "{top:?} {bottom:?}");
        // The image: its centre pixel is a covered grey pixel, its corner the "no data" colour.
        let (x0, y0, dw, dh) = image_figure_rect(160, 150);
        assert_eq!((x0, y0, dw, dh), (PAD + AXIS_LEFT, TITLE_H + PAD, 450, 480));
        assert_eq!(img.get_pixel(x0 + 1, y0 + 1).0, Colormap::Gray.missing());
        let centre = img.get_pixel(x0 + 225, y0 + 240).0;
        assert!(
            centre[0] == centre[1] && centre[1] == centre[2],
            "{centre:?}"
        );
    }

    #[test]
    fn comparison_grid_has_six_panels() {
        let a = Array2::from_shape_fn((40, 50), |(r, c)| (r as f32 * 0.1).sin() + c as f32 * 0.01);
        let b = a.mapv(|v| v * 1.05);
        let d = &b - &a;
        let panels = comparison_panels(
            a.view(),
            b.view(),
            d.view(),
            a.view(),
            b.view(),
            d.view(),
            "",
        );
        assert_eq!(panels.len(), 6);
        assert_eq!(panels[2].cmap, Colormap::Diverging);
        assert!(
            (panels[2].range.0 + panels[2].range.1).abs() < 1e-12,
            "symmetric"
        );
        let img = render_panel_grid(&panels, 3).unwrap();
        assert_eq!(img.dimensions(), comparison_figure_size(40, 50));
    }
}
