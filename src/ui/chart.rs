//! Terminal charts: a per-day bar chart for `usage` and a sparkline for `show`.

use crate::core::model::UsageFigures;

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One character per value, scaled to the largest; zero is a blank baseline.
pub fn sparkline(values: &[u64]) -> String {
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                let i = ((v as f64 / max as f64) * 7.0).round() as usize;
                SPARKS[i.min(7)]
            }
        })
        .collect()
}

/// Bars of accepted (█) and rejected (░) requests per day, scaled to `width` cells.
pub fn bar_chart(days: &[(String, UsageFigures)], width: usize, color: bool) -> String {
    let max = days
        .iter()
        .map(|(_, u)| u.accepted + u.rejected)
        .max()
        .unwrap_or(0)
        .max(1);
    let cells = |n: u64| -> usize {
        if n == 0 {
            0
        } else {
            (((n as f64 / max as f64) * width as f64).round() as usize).max(1)
        }
    };
    let (green, red, reset) = if color {
        ("\x1b[32m", "\x1b[31m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let mut out = String::new();
    for (date, u) in days {
        let a = cells(u.accepted);
        let r = cells(u.rejected);
        let pad = (width + 1).saturating_sub(a + r);
        out.push_str(&format!(
            "{date}  {green}{}{reset}{red}{}{reset}{}{:>8} ok {:>6} rejected {:>8} {}\n",
            "█".repeat(a),
            "░".repeat(r),
            " ".repeat(pad),
            u.accepted,
            u.rejected,
            u.credits,
            // The noun follows its count; the numbers stay aligned.
            if u.credits == 1 { "credit" } else { "credits" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_maximum() {
        assert_eq!(sparkline(&[0, 1, 2, 4, 8]), " ▂▃▅█");
        assert_eq!(sparkline(&[0, 0]), "  ");
    }

    #[test]
    fn bars_scale_and_show_figures() {
        let days = vec![
            (
                "2026-11-22".to_string(),
                UsageFigures {
                    accepted: 10,
                    rejected: 0,
                    credits: 10,
                },
            ),
            (
                "2026-11-23".to_string(),
                UsageFigures {
                    accepted: 5,
                    rejected: 5,
                    credits: 5,
                },
            ),
        ];
        let chart = bar_chart(&days, 10, false);
        let lines: Vec<&str> = chart.lines().collect();
        assert!(lines[0].starts_with("2026-11-22  ██████████ "), "{chart}");
        assert!(lines[1].starts_with("2026-11-23  █████░░░░░ "), "{chart}");
        assert!(lines[1].contains("5 rejected"));
    }
}
