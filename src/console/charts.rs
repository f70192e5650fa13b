//! Charts drawn on the server as inline SVG: pure functions from figures to markup, no script, no external
//! asset. Every chart is an `<svg role="img">` with an `aria-label` and a `<title>`, followed by the same
//! figures as a table (in a `<details>`), so a screen reader or a text browser loses nothing. Colours come
//! from classes in console.css (`.series-0` …), never from inline styles (the CSP forbids them).

use maud::{Markup, html};

/// Width of every chart's coordinate system; the SVG scales to the page (360 px and up).
const WIDTH: f64 = 400.0;

/// One bar: its label, the value that sets its length, and the text shown for it.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

/// A row of grouped bars: one label, one bar per series.
#[derive(Debug, Clone)]
pub struct Group {
    pub label: String,
    pub bars: Vec<(f64, String)>,
}

/// A line chart's data: x labels and, per series, one value per x (and the text shown for it).
#[derive(Debug, Clone)]
pub struct Lines {
    pub x_labels: Vec<String>,
    pub series: Vec<(String, Vec<(f64, String)>)>,
}

/// Length of a bar of `value` when `max` fills `span` (0 for non-positive or non-finite values).
pub fn scaled(value: f64, max: f64, span: f64) -> f64 {
    if !value.is_finite() || !max.is_finite() || value <= 0.0 || max <= 0.0 {
        0.0
    } else {
        (value / max * span).min(span)
    }
}

fn fmt(v: f64) -> String {
    format!("{:.1}", v)
}

/// The figures as a table, for whoever cannot see the drawing.
fn table(caption: &str, columns: &[&str], rows: &[(String, Vec<String>)]) -> Markup {
    html! {
        details class="chart-data" {
            summary { "Figures as a table" }
            div class="scroll" {
                table {
                    caption { (caption) }
                    thead { tr { @for c in columns { th scope="col" { (c) } } } }
                    tbody {
                        @for (label, cells) in rows {
                            tr { th scope="row" { (label) } @for c in cells { td { (c) } } }
                        }
                    }
                }
            }
        }
    }
}

fn legend(series: &[&str]) -> Markup {
    html! {
        ul class="legend" {
            @for (i, s) in series.iter().enumerate() {
                li { span class=(format!("swatch series-{}", i % 4)) aria-hidden="true" {} (s) }
            }
        }
    }
}

/// Horizontal bars, one per line, each labelled above and valued at its end.
pub fn bar_chart(title: &str, value_column: &str, bars: &[Bar]) -> Markup {
    let label_span = WIDTH - 110.0;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let row = 36.0;
    let height = (bars.len().max(1) as f64) * row + 4.0;
    let rows: Vec<(String, Vec<String>)> = bars
        .iter()
        .map(|b| (b.label.clone(), vec![b.shown.clone()]))
        .collect();
    html! {
        figure class="chart" {
            svg role="img" aria-label=(title) viewBox=(format!("0 0 {WIDTH} {}", fmt(height)))
                width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" {
                title { (title) }
                @if bars.is_empty() {
                    text x="0" y="20" class="chart-text" { "No figures yet" }
                }
                @for (i, b) in bars.iter().enumerate() {
                    @let y = i as f64 * row;
                    @let w = scaled(b.value, max, label_span);
                    text x="0" y=(fmt(y + 13.0)) class="chart-text" { (b.label) }
                    rect class="bar series-0" x="0" y=(fmt(y + 17.0)) width=(fmt(w)) height="14" {}
                    text x=(fmt(w + 4.0)) y=(fmt(y + 29.0)) class="chart-text" { (b.shown) }
                }
            }
            figcaption { (title) }
            (table(title, &["", value_column], &rows))
        }
    }
}

/// Grouped horizontal bars: per label, one bar per series, on one common scale.
pub fn grouped_bar_chart(title: &str, series: &[&str], groups: &[Group]) -> Markup {
    let span = WIDTH - 110.0;
    let max = groups
        .iter()
        .flat_map(|g| g.bars.iter().map(|b| b.0))
        .fold(0.0, f64::max);
    let bar_h = 12.0;
    let row = 18.0 + bar_h * series.len() as f64 + 6.0;
    let height = (groups.len().max(1) as f64) * row + 4.0;
    let mut columns = vec![""];
    columns.extend_from_slice(series);
    let rows: Vec<(String, Vec<String>)> = groups
        .iter()
        .map(|g| (g.label.clone(), g.bars.iter().map(|b| b.1.clone()).collect()))
        .collect();
    html! {
        figure class="chart" {
            svg role="img" aria-label=(title) viewBox=(format!("0 0 {WIDTH} {}", fmt(height)))
                width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" {
                title { (title) }
                @if groups.is_empty() {
                    text x="0" y="20" class="chart-text" { "No figures yet" }
                }
                @for (i, g) in groups.iter().enumerate() {
                    @let y = i as f64 * row;
                    text x="0" y=(fmt(y + 13.0)) class="chart-text" { (g.label) }
                    @for (j, (value, shown)) in g.bars.iter().enumerate() {
                        @let by = y + 17.0 + j as f64 * bar_h;
                        @let w = scaled(*value, max, span);
                        rect class=(format!("bar series-{}", j % 4)) x="0" y=(fmt(by)) width=(fmt(w)) height=(fmt(bar_h - 2.0)) {}
                        text x=(fmt(w + 4.0)) y=(fmt(by + 9.0)) class="chart-text small" { (shown) }
                    }
                }
            }
            figcaption { (title) }
            (legend(series))
            (table(title, &columns, &rows))
        }
    }
}

/// Lines over x (time), all series on one scale from zero to the largest value.
pub fn line_chart(title: &str, data: &Lines) -> Markup {
    let (left, top, plot_w, plot_h) = (4.0, 20.0, WIDTH - 8.0, 150.0);
    let height = top + plot_h + 24.0;
    let max = data
        .series
        .iter()
        .flat_map(|s| s.1.iter().map(|v| v.0))
        .fold(0.0, f64::max);
    let n = data.x_labels.len();
    let x_at = |i: usize| {
        if n <= 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y_at = |v: f64| top + plot_h - scaled(v, max, plot_h);
    let names: Vec<&str> = data.series.iter().map(|s| s.0.as_str()).collect();
    let mut columns = vec![""];
    columns.extend_from_slice(&names);
    let rows: Vec<(String, Vec<String>)> = data
        .x_labels
        .iter()
        .enumerate()
        .map(|(i, x)| {
            (
                x.clone(),
                data.series
                    .iter()
                    .map(|s| s.1.get(i).map(|v| v.1.clone()).unwrap_or_default())
                    .collect(),
            )
        })
        .collect();
    html! {
        figure class="chart" {
            svg role="img" aria-label=(title) viewBox=(format!("0 0 {WIDTH} {}", fmt(height)))
                width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" {
                title { (title) }
                line class="axis" x1=(fmt(left)) y1=(fmt(top + plot_h)) x2=(fmt(left + plot_w)) y2=(fmt(top + plot_h)) {}
                @if n == 0 {
                    text x="0" y="40" class="chart-text" { "No movements yet" }
                } @else {
                    @for (i, (_, values)) in data.series.iter().enumerate() {
                        @let points = values.iter().enumerate()
                            .map(|(k, v)| format!("{},{}", fmt(x_at(k)), fmt(y_at(v.0))))
                            .collect::<Vec<_>>().join(" ");
                        polyline class=(format!("line series-{}", i % 4)) points=(points) {}
                        // The latest value as a dot: a history of one day is a point, which no line would show.
                        @if let Some(last) = values.len().checked_sub(1).and_then(|k| values.get(k).map(|v| (k, v.0))) {
                            circle class=(format!("dot series-{}", i % 4)) cx=(fmt(x_at(last.0))) cy=(fmt(y_at(last.1))) r="4" {}
                        }
                    }
                    text x=(fmt(left)) y=(fmt(top + plot_h + 18.0)) class="chart-text small" { (data.x_labels[0]) }
                    @if n > 1 {
                        text x=(fmt(left + plot_w)) y=(fmt(top + plot_h + 18.0)) text-anchor="end" class="chart-text small" { (data.x_labels[n - 1]) }
                    }
                }
            }
            figcaption { (title) }
            (legend(&names))
            (table(title, &columns, &rows))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: f64) -> Bar {
        Bar {
            label: label.into(),
            value,
            shown: format!("{value}"),
        }
    }

    /// The widths of the `rect`s in the markup, in order.
    fn widths(svg: &str) -> Vec<f64> {
        svg.split("<rect")
            .skip(1)
            .map(|r| {
                let start = r.find("width=\"").unwrap() + 7;
                r[start..].split('"').next().unwrap().parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn bar_lengths_are_proportional_to_the_values() {
        let svg = bar_chart(
            "Proposals by state",
            "Proposals",
            &[bar("approved", 4.0), bar("draft", 2.0), bar("rejected", 1.0)],
        )
        .into_string();
        let w = widths(&svg);
        assert_eq!(w.len(), 3);
        assert!((w[0] - 2.0 * w[1]).abs() < 0.2, "{w:?}");
        assert!((w[1] - 2.0 * w[2]).abs() < 0.2, "{w:?}");
        assert!((w[0] - (WIDTH - 110.0)).abs() < 0.1, "the largest fills the span");
    }

    #[test]
    fn charts_are_accessible_images_with_a_table_of_the_same_figures() {
        let svg = bar_chart("Proposals by state", "Proposals", &[bar("approved", 3.0)]).into_string();
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"aria-label="Proposals by state""#));
        assert!(svg.contains("<title>Proposals by state</title>"));
        assert!(svg.contains("<table>") && svg.contains("<th scope=\"row\">approved</th><td>3</td>"));
        assert!(!svg.contains("style="), "no inline style (CSP)");
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn grouped_bars_share_one_scale() {
        let svg = grouped_bar_chart(
            "Committed and disbursed by sector",
            &["Committed", "Disbursed"],
            &[
                Group {
                    label: "WSH".into(),
                    bars: vec![(100.0, "100.00".into()), (50.0, "50.00".into())],
                },
                Group {
                    label: "EDU".into(),
                    bars: vec![(25.0, "25.00".into()), (0.0, "0.00".into())],
                },
            ],
        )
        .into_string();
        let w = widths(&svg);
        assert_eq!(w.len(), 4);
        assert!(
            (w[0] - 2.0 * w[1]).abs() < 0.2 && (w[0] - 4.0 * w[2]).abs() < 0.2,
            "{w:?}"
        );
        assert_eq!(w[3], 0.0);
        assert!(svg.contains("<th scope=\"col\">Disbursed</th>"));
        assert!(svg.contains("series-1"));
    }

    #[test]
    fn lines_run_from_zero_to_the_largest_value() {
        let svg = line_chart(
            "Balances over time",
            &Lines {
                x_labels: vec!["2026-01-01".into(), "2026-02-01".into()],
                series: vec![(
                    "Unallocated".into(),
                    vec![(0.0, "0.00".into()), (100.0, "100.00".into())],
                )],
            },
        )
        .into_string();
        // x from 4 to 396; y from the baseline (170) up to the top (20).
        assert!(svg.contains(r#"points="4.0,170.0 396.0,20.0""#), "{svg}");
        assert!(svg.contains("<td>100.00</td>"));
    }

    #[test]
    fn a_history_of_one_day_is_drawn_as_a_dot() {
        let svg = line_chart(
            "Balances over time",
            &Lines {
                x_labels: vec!["2026-11-29".into()],
                series: vec![("Unallocated".into(), vec![(50.0, "50.00".into())])],
            },
        )
        .into_string();
        // One point, in the middle, at the top of the scale: visible as a dot, not an invisible one-point line.
        assert!(
            svg.contains(r#"<circle class="dot series-0" cx="200.0" cy="20.0" r="4">"#),
            "{svg}"
        );
    }

    #[test]
    fn empty_and_odd_values_draw_nothing_wrong() {
        assert_eq!(scaled(f64::NAN, 10.0, 100.0), 0.0);
        assert_eq!(scaled(-3.0, 10.0, 100.0), 0.0);
        assert_eq!(scaled(3.0, 0.0, 100.0), 0.0);
        let svg = bar_chart("Nothing", "n", &[]).into_string();
        assert!(svg.contains("No figures yet"));
        let svg = line_chart(
            "Nothing",
            &Lines {
                x_labels: vec![],
                series: vec![],
            },
        )
        .into_string();
        assert!(svg.contains("No movements yet"));
    }
}
