//! `report.html`: one self-contained file (inline CSS and SVG, no scripts, nothing fetched) a
//! reviewer can open offline: the decision, the model's identity, the tool and machine, the
//! methods and what each establishes, every property with its evidence, every stress scenario
//! with pass-rate-versus-severity plots and replay commands, the limitations, and the command
//! that reproduces the run.

use super::{esc, num, Counterexample, ImageShape, Outcome, Report, LIMITATIONS, METHODS};
use crate::stress::results::Curve;

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2733;background:#f5f7fa}
main{max-width:1080px;margin:0 auto;padding:24px}
h1{margin:0 0 4px 0;font-size:26px}h2{margin-top:32px;border-bottom:2px solid #d8dee6;padding-bottom:4px}
.banner{padding:18px 24px;border-radius:8px;color:#fff;margin-bottom:20px}
.allowed{background:#1e7d44}.blocked{background:#b3261e}.inconclusive{background:#a36a00}
.banner p{margin:6px 0 0 0}
table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0 16px 0;font-size:14px}
th,td{border:1px solid #d8dee6;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;word-break:break-all}
.holds,.pass{color:#1e7d44;font-weight:600}.violated,.fail{color:#b3261e;font-weight:600}
.unknown,.timeout{color:#a36a00;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plot{background:#fff;border:1px solid #d8dee6;border-radius:6px;padding:6px}
.muted{color:#5b6877;font-size:13px}
.pictures{display:flex;flex-wrap:wrap;gap:10px;margin-top:6px}.pictures figure{margin:0;text-align:center;font-size:12px}";

/// Colours of the plotted properties (colour-blind-safe palette).
const COLOURS: &[&str] = &[
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000",
];

/// Largest edge, in pixels, of one drawn channel.
const PICTURE_PX: usize = 90;

/// One channel of an image as an inline SVG, one `<rect>` per pixel: grey levels from `lo`
/// (black) to `hi` (white), or, with `diverging`, blue (negative) to white (0) to red (positive)
/// scaled by `hi = max |v|`.
fn picture(
    values: &[f64],
    shape: ImageShape,
    channel: usize,
    lo: f64,
    hi: f64,
    diverging: bool,
    title: &str,
) -> String {
    let (h, w) = (shape.height, shape.width);
    let cell = (PICTURE_PX / h.max(w)).max(1);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"ce-image\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {w} {h}\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"{}\">",
        w * cell,
        h * cell,
        esc(title)
    );
    let base = channel * h * w;
    for y in 0..h {
        for x in 0..w {
            let v = values[base + y * w + x];
            let (r, g, b) = if diverging {
                let t = if hi > 0.0 {
                    (v / hi).clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                let fade = |t: f64| (255.0 * (1.0 - t.abs())).round() as u8;
                if t >= 0.0 {
                    (255, fade(t), fade(t))
                } else {
                    (fade(t), fade(t), 255)
                }
            } else {
                let t = if hi > lo {
                    ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
                } else {
                    0.5
                };
                let g = (255.0 * t).round() as u8;
                (g, g, g)
            };
            s += &format!("<rect x=\"{x}\" y=\"{y}\" width=\"1\" height=\"1\" fill=\"#{r:02x}{g:02x}{b:02x}\"/>");
        }
    }
    s += "</svg>";
    s
}

/// The counterexample of an image model drawn per channel: the reference image (the centre of
/// a robustness property, when known), the counterexample, and their difference; grey levels
/// share one scale per channel.
fn pictures(ce: &Counterexample, shape: ImageShape) -> String {
    let n = shape.channels * shape.height * shape.width;
    if n == 0 || ce.input.len() != n || ce.centre.as_ref().is_some_and(|c| c.len() != n) {
        return String::new();
    }
    let plane = shape.height * shape.width;
    let mut s = String::from("<div class=\"pictures\">");
    for c in 0..shape.channels {
        let part = |v: &[f64]| v[c * plane..(c + 1) * plane].to_vec();
        let mut all = part(&ce.input);
        if let Some(centre) = &ce.centre {
            all.extend(part(centre));
        }
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let label = |what: &str| {
            if shape.channels > 1 {
                format!("{what}, channel {c}")
            } else {
                what.to_string()
            }
        };
        let figure = |svg: String, caption: String| {
            format!(
                "<figure>{svg}<figcaption>{}</figcaption></figure>",
                esc(&caption)
            )
        };
        if let Some(centre) = &ce.centre {
            s += &figure(
                picture(centre, shape, c, lo, hi, false, &label("reference")),
                label("reference (centre of the box)"),
            );
        }
        s += &figure(
            picture(&ce.input, shape, c, lo, hi, false, &label("counterexample")),
            format!("{} [{}, {}]", label("counterexample"), num(lo), num(hi)),
        );
        if let Some(centre) = &ce.centre {
            let diff: Vec<f64> = ce.input.iter().zip(centre).map(|(a, b)| a - b).collect();
            let m = diff[c * plane..(c + 1) * plane]
                .iter()
                .fold(0.0f64, |a, d| a.max(d.abs()));
            s += &figure(
                picture(&diff, shape, c, -m, m, true, &label("difference")),
                format!("{} (red +, blue −, ±{})", label("difference"), num(m)),
            );
        }
    }
    s += "</div>";
    s
}

/// An inline SVG (drawn with `plotters`' SVG backend): pass rate (0–1) versus severity for
/// every property under one perturbation, one coloured line with markers per property and a
/// legend.
fn plot(perturbation: &str, kind: &str, curves: &[&Curve]) -> String {
    use plotters::prelude::*;
    let smax = curves
        .iter()
        .flat_map(|c| c.severity.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let colour = |i: usize| {
        let h = COLOURS[i % COLOURS.len()].trim_start_matches('#');
        let c = |k: usize| u8::from_str_radix(&h[k..k + 2], 16).unwrap_or(0);
        RGBColor(c(0), c(2), c(4))
    };
    let mut svg = String::new();
    let drawn = (|| -> std::result::Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (560, 270)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, legend_area) = root.split_horizontally(390);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(
                format!("{perturbation} ({kind})"),
                ("sans-serif", 14).into_font().style(FontStyle::Bold),
            )
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..smax, 0f64..1.02f64)?;
        chart
            .configure_mesh()
            .x_desc("severity")
            .y_desc("pass rate")
            .light_line_style(RGBColor(0xee, 0xf2, 0xf6))
            .bold_line_style(RGBColor(0xe3, 0xe8, 0xee))
            .x_labels(6)
            .y_labels(6)
            .draw()?;
        for (i, c) in curves.iter().enumerate() {
            let pts: Vec<(f64, f64)> = c
                .severity
                .iter()
                .copied()
                .zip(c.pass_rate.iter().copied())
                .collect();
            let col = colour(i);
            chart.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))?;
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, col.filled())))?;
        }
        // The legend beside the plot: long property names stay readable.
        for (i, c) in curves.iter().enumerate() {
            let y = 40 + 18 * i as i32;
            legend_area.draw(&PathElement::new(
                vec![(4, y), (24, y)],
                colour(i).stroke_width(3),
            ))?;
            legend_area.draw(&Text::new(
                c.property.clone(),
                (30, y - 6),
                ("sans-serif", 12).into_font(),
            ))?;
        }
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"muted\">plot of {} not drawn: {}</p>",
            esc(perturbation),
            esc(&e.to_string())
        ),
    }
}

fn verdict_class(v: &str) -> &'static str {
    match v {
        "holds" => "holds",
        "violated" => "violated",
        "timeout" => "timeout",
        _ => "unknown",
    }
}

pub fn render(r: &Report) -> String {
    let class = match r.decision.outcome {
        Outcome::ReleaseAllowed => "allowed",
        Outcome::Blocked => "blocked",
        Outcome::Inconclusive => "inconclusive",
    };
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>beacons report: {} — {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&r.policy_name),
        r.decision.outcome.title()
    );
    s += &format!(
        "<div class=\"banner {class}\"><h1>{}</h1><p>Policy <b>{}</b> on model <code style=\"color:#fff\">{}</code> — exit code {}</p>",
        r.decision.outcome.title(),
        esc(&r.policy_name),
        esc(&r.model.file.path),
        r.decision.exit_code
    );
    for reason in &r.decision.reasons {
        s += &format!("<p>• {}</p>", esc(reason));
    }
    s += "</div>\n";
    if !r.policy_description.is_empty() {
        s += &format!("<p>{}</p>\n", esc(&r.policy_description));
    }

    s += "<h2>Identity</h2>\n<table>\n";
    let rows = [
        (
            "Model",
            format!(
                "<code>{}</code> ({})",
                esc(&r.model.file.path),
                esc(&r.model.format)
            ),
        ),
        (
            "Model SHA-256",
            format!("<code>{}</code>", r.model.file.sha256),
        ),
        ("Inputs", esc(&r.model.inputs.join("; "))),
        ("Outputs", esc(&r.model.outputs.join("; "))),
        (
            "Policy",
            format!(
                "<code>{}</code> (SHA-256 <code>{}</code>)",
                esc(&r.policy.path),
                r.policy.sha256
            ),
        ),
        (
            "Tool",
            format!(
                "{} {} (commit <code>{}</code>)",
                esc(&r.tool.name),
                esc(&r.tool.version),
                esc(&r.tool.commit)
            ),
        ),
        (
            "Machine",
            format!(
                "{}, {} cores, {}; GPU: {}",
                esc(&r.machine.cpu),
                r.machine.cores,
                esc(&r.machine.os),
                esc(&r.machine.gpu)
            ),
        ),
        (
            "Run",
            format!("{} UTC, {:.1} s", esc(&r.generated_at), r.duration_seconds),
        ),
    ];
    for (k, v) in rows {
        s += &format!("<tr><th>{k}</th><td>{v}</td></tr>\n");
    }
    s += "</table>\n<h2>Methods and what they establish</h2>\n<table>\n";
    for (m, what) in METHODS {
        s += &format!("<tr><th>{}</th><td>{}</td></tr>\n", esc(m), esc(what));
    }
    s += "</table>\n";

    if !r.properties.is_empty() {
        s += "<h2>Formal properties</h2>\n<table>\n<tr><th>property</th><th>specification (SHA-256)</th><th>verdict</th><th>time</th><th>evidence</th></tr>\n";
        for p in &r.properties {
            let evidence = if let Some(c) = &p.certificate {
                let again = if p.certificate_check.starts_with("accepted") {
                    format!(
                        "; re-check with <code>beacons check-cert {} {} {}</code>",
                        esc(&r.model.file.path),
                        esc(&p.spec.path),
                        esc(c)
                    )
                } else {
                    String::new()
                };
                format!(
                    "certificate <code>{}</code>: {}{again}",
                    esc(c),
                    esc(&p.certificate_check)
                )
            } else if let Some(ce) = &p.counterexample {
                let x: Vec<String> = ce.input.iter().map(|v| num(*v)).collect();
                let y: Vec<String> = ce.output.iter().map(|v| num(*v)).collect();
                match r.model.image {
                    // An image: the picture, and the outputs (the 784+ numbers are in the JSON).
                    Some(shape) => format!(
                        "counterexample (input box {}):{}Y = [{}]",
                        ce.region,
                        pictures(ce, shape),
                        esc(&y.join(", "))
                    ),
                    None => format!(
                        "counterexample (input box {}):<br>X = [{}]<br>Y = [{}]",
                        ce.region,
                        esc(&x.join(", ")),
                        esc(&y.join(", "))
                    ),
                }
            } else {
                esc(&p.reason)
            };
            s += &format!(
                "<tr><td>{}</td><td><code>{}</code><br><span class=\"muted\">{}</span></td><td class=\"{}\">{}</td><td>{:.2} s (budget {} s)</td><td>{evidence}</td></tr>\n",
                esc(&p.name),
                esc(&p.spec.path),
                &p.spec.sha256[..16.min(p.spec.sha256.len())],
                verdict_class(&p.verdict),
                esc(&p.verdict),
                p.seconds,
                num(p.timeout_seconds)
            );
        }
        s += "</table>\n";
    }

    for sc in &r.scenarios {
        let res = &sc.results;
        s += &format!(
            "<h2>Stress scenario {} — <span class=\"{}\">{}</span></h2>\n<p class=\"muted\"><code>{}</code> (SHA-256 {}); {} samples from the <code>{}</code> generator, seed {}; {:.1} s. Tested, not proven.</p>\n",
            esc(&res.scenario),
            if res.passed { "pass" } else { "fail" },
            if res.passed { "pass" } else { "FAIL" },
            esc(&sc.file.path),
            &sc.file.sha256[..16.min(sc.file.sha256.len())],
            res.samples,
            esc(&res.generator),
            res.seed,
            sc.seconds
        );
        s += "<table>\n<tr><th>property</th><th>clean cohort</th><th>result</th><th>smallest failure and replay</th></tr>\n";
        for p in &res.properties {
            let clean = res
                .baseline
                .iter()
                .find(|b| b.property == p.name)
                .map_or("".into(), |b| {
                    format!(
                        "{} ({})",
                        num(b.metric),
                        if b.pass { "pass" } else { "fail" }
                    )
                });
            let fails: Vec<String> = p
                .failures
                .iter()
                .map(|f| {
                    format!(
                        "under <b>{}</b> from severity {} on {} sample(s) (metric {})<br><code>{}</code>",
                        esc(&f.perturbation),
                        num(f.severity),
                        f.samples.len(),
                        num(f.metric),
                        esc(&f.replay)
                    )
                })
                .collect();
            s += &format!(
                "<tr><td>{} <span class=\"muted\">({})</span></td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>\n",
                esc(&p.name),
                esc(&p.kind),
                clean,
                if p.passed { "pass" } else { "fail" },
                if p.passed { "pass" } else { "FAIL" },
                fails.join("<br>")
            );
        }
        s += "</table>\n<div class=\"plots\">\n";
        let mut seen: Vec<&str> = Vec::new();
        for c in &res.curves {
            if seen.contains(&c.perturbation.as_str()) {
                continue;
            }
            seen.push(&c.perturbation);
            let group: Vec<&Curve> = res
                .curves
                .iter()
                .filter(|d| d.perturbation == c.perturbation)
                .collect();
            s += &format!(
                "<div class=\"plot\">{}</div>\n",
                plot(&c.perturbation, &c.perturbation_kind, &group)
            );
        }
        s += "</div>\n";
    }

    s += "<h2>Limitations</h2>\n<ul>\n";
    for l in LIMITATIONS {
        s += &format!("<li>{}</li>\n", esc(l));
    }
    s += &format!(
        "</ul>\n<h2>Reproduce</h2>\n<p><code>{}</code></p>\n<p class=\"muted\">Report schema version {}; written by beacons {}.</p>\n</main>\n</body>\n</html>\n",
        esc(&r.reproduce),
        r.schema_version,
        esc(&r.tool.version)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_svg_with_one_line_per_property_and_escaped_text() {
        let curve = |name: &str, rates: [f64; 3]| Curve {
            perturbation: "a<b".into(),
            perturbation_kind: "gaussian_noise".into(),
            property: name.into(),
            severity: vec![0.0, 0.5, 1.0],
            pass_rate: rates.to_vec(),
            metric_mean: vec![0.0; 3],
            metric_worst: vec![0.0; 3],
        };
        let (a, b) = (
            curve("x&y", [1.0, 0.5, 0.0]),
            curve("stable", [1.0, 1.0, 1.0]),
        );
        let svg = plot("a<b", "gaussian_noise", &[&a, &b]);
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        // One data line (stroke width 2) and one legend line (3) per property, in its colour.
        for colour in ["#0072B2", "#D55E00"] {
            let line = format!("stroke=\"{colour}\" stroke-width=\"2\"");
            let legend = format!("stroke=\"{colour}\" stroke-width=\"3\"");
            assert_eq!(svg.matches(&line).count(), 1, "{colour}: {svg}");
            assert_eq!(svg.matches(&legend).count(), 1, "{colour}");
        }
        assert_eq!(svg.matches("<circle").count(), 6, "one marker per point");
        assert!(
            !svg.contains("a<b") && !svg.contains("x&y"),
            "unescaped text"
        );
        assert!(svg.contains("severity") && svg.contains("pass rate"));
    }

    #[test]
    fn image_counterexamples_are_drawn_with_reference_and_difference() {
        let shape = ImageShape {
            channels: 2,
            height: 3,
            width: 4,
        };
        let centre: Vec<f64> = (0..24).map(|i| i as f64).collect();
        let mut input = centre.clone();
        input[5] += 2.0;
        input[17] -= 1.0;
        let ce = Counterexample {
            region: 0,
            input,
            output: vec![0.0, 1.0],
            centre: Some(centre),
        };
        let html = pictures(&ce, shape);
        // Three pictures per channel, one rect per pixel each.
        assert_eq!(html.matches("<svg ").count(), 6, "{html}");
        assert_eq!(html.matches("<rect ").count(), 6 * 12);
        assert!(html.contains("difference, channel 1"));
        // The changed pixel of channel 0 is pure red in the difference, unchanged ones white.
        assert!(html.contains("fill=\"#ff0000\""));
        assert!(html.contains("fill=\"#0000ff\""));
        assert!(html.contains("fill=\"#ffffff\""));
        // Darkest and brightest values of channel 0 map to black and white.
        assert!(html.contains("fill=\"#000000\"") && html.contains("fill=\"#ffffff\""));
        // A mismatched length draws nothing rather than garbage.
        let bad = Counterexample {
            input: vec![0.0; 5],
            ..ce.clone()
        };
        assert_eq!(pictures(&bad, shape), "");
        // Without a centre: only the counterexample.
        let alone = Counterexample { centre: None, ..ce };
        assert_eq!(pictures(&alone, shape).matches("<svg ").count(), 2);
    }
}
