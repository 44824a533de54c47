//! The results as tables: aligned text for the terminal, Markdown for the report, CSV.

use super::results::PointResult;

/// A column of the terminal and Markdown tables.
struct Column {
    header: &'static str,
    cell: fn(&PointResult) -> String,
}

const COLUMNS: &[Column] = &[
    Column {
        header: "point",
        cell: |r| r.point.clone(),
    },
    Column {
        header: "method",
        cell: |r| join(r.method, &r.method_parameters),
    },
    Column {
        header: "params",
        cell: |r| number(r.parameters.map(|n| n as f64), 0),
    },
    Column {
        header: "GFLOP/step",
        cell: |r| significant(r.flops_per_step.map(|f| f / 1e9)),
    },
    Column {
        header: "FLOP ratio",
        cell: |r| number(r.flop_ratio, 2),
    },
    Column {
        header: "mean s/step",
        cell: |r| number(r.mean_step_seconds, 3),
    },
    Column {
        header: "tokens/s",
        cell: |r| number(r.median_tokens_per_second, 0),
    },
    Column {
        header: "speedup",
        cell: |r| number(r.speedup, 2),
    },
    Column {
        header: "train s",
        cell: |r| number(r.wall_seconds, 1),
    },
    Column {
        header: "val loss",
        cell: |r| number(r.final_loss, 4),
    },
    Column {
        header: "val acc",
        cell: |r| number(r.final_accuracy, 4),
    },
    Column {
        header: "target",
        cell: |r| number(r.target_loss, 4),
    },
    Column {
        header: "s to target",
        cell: |r| number(r.seconds_to_target, 1),
    },
    Column {
        header: "GFLOP to target",
        cell: |r| significant(r.flops_to_target.map(|f| f / 1e9)),
    },
    Column {
        header: "build s",
        cell: |r| number(r.build_seconds, 1),
    },
    Column {
        header: "status",
        cell: |r| match &r.error {
            Some(error) => format!("{}: {error}", r.status),
            None => r.status.to_owned(),
        },
    },
];

fn join(method: &str, parameters: &str) -> String {
    if parameters.is_empty() {
        method.to_owned()
    } else {
        format!("{method} {parameters}")
    }
}

/// A blank for a missing value.
fn number(value: Option<f64>, decimals: usize) -> String {
    // `+ 0.0` turns an empty float sum's -0.0 into 0.0.
    value.map_or_else(|| "-".to_owned(), |v| format!("{:.decimals$}", v + 0.0))
}

/// Three significant digits (at least the units): `13.3`, `0.0123`, `533`.
fn significant(value: Option<f64>) -> String {
    let decimals = value.map_or(0, |v| {
        let magnitude = v.abs().log10().floor();
        if magnitude.is_finite() {
            (2.0 - magnitude).max(0.0) as usize
        } else {
            0
        }
    });
    number(value, decimals)
}

fn cells(results: &[PointResult]) -> Vec<Vec<String>> {
    results
        .iter()
        .map(|r| COLUMNS.iter().map(|c| (c.cell)(r)).collect())
        .collect()
}

/// Columns padded to their widest cell; the status column (with its error) last and unpadded.
pub fn text(results: &[PointResult]) -> String {
    let rows = cells(results);
    let headers: Vec<String> = COLUMNS.iter().map(|c| c.header.to_owned()).collect();
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| {
            std::iter::once(&headers)
                .chain(&rows)
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String]| {
        let mut out = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i == 0 || i == 1 || i + 1 == row.len() {
                out += cell;
                if i + 1 < row.len() {
                    out += &" ".repeat(pad);
                }
            } else {
                out += &" ".repeat(pad);
                out += cell;
            }
            if i + 1 < row.len() {
                out += "  ";
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&headers);
    for row in &rows {
        out += &line(row);
    }
    out
}

pub fn markdown(results: &[PointResult]) -> String {
    let escape = |cell: &str| cell.replace('|', "\\|").replace('\n', " ");
    let mut out = String::new();
    out += &format!(
        "| {} |\n",
        COLUMNS
            .iter()
            .map(|c| c.header)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    out += &format!(
        "|{}|\n",
        COLUMNS
            .iter()
            .enumerate()
            .map(|(i, _)| {
                if i < 2 || i + 1 == COLUMNS.len() {
                    "---"
                } else {
                    "---:"
                }
            })
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in cells(results) {
        let row: Vec<String> = row.iter().map(|c| escape(c)).collect();
        out += &format!("| {} |\n", row.join(" | "));
    }
    out
}

/// Every field but the validation curve, at full precision; empty for missing.
pub fn csv(results: &[PointResult]) -> String {
    let mut out = String::new();
    for (index, result) in results.iter().enumerate() {
        let fields = csv_fields(result);
        if index == 0 {
            let keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
            out += &(keys.join(",") + "\n");
        }
        let cells: Vec<String> = fields.iter().map(|(_, value)| csv_field(value)).collect();
        out += &(cells.join(",") + "\n");
    }
    out
}

/// The columns in the struct's order (a JSON object of the struct would sort them).
fn csv_fields(r: &PointResult) -> Vec<(&'static str, String)> {
    fn show<T: ToString>(value: &Option<T>) -> String {
        value.as_ref().map(T::to_string).unwrap_or_default()
    }
    vec![
        ("point", r.point.clone()),
        ("preset", r.preset.clone()),
        ("method", r.method.to_owned()),
        ("method_parameters", r.method_parameters.clone()),
        ("configuration", show(&r.configuration)),
        ("parameters", show(&r.parameters)),
        ("flops_per_step", show(&r.flops_per_step)),
        ("flops_per_step_full", show(&r.flops_per_step_full)),
        ("activation_bytes", show(&r.activation_bytes)),
        ("flop_ratio", show(&r.flop_ratio)),
        ("median_step_seconds", show(&r.median_step_seconds)),
        ("mean_step_seconds", show(&r.mean_step_seconds)),
        (
            "median_tokens_per_second",
            show(&r.median_tokens_per_second),
        ),
        ("speedup", show(&r.speedup)),
        ("wall_seconds", show(&r.wall_seconds)),
        ("run_seconds", show(&r.run_seconds)),
        ("final_step", show(&r.final_step)),
        ("final_loss", show(&r.final_loss)),
        ("final_accuracy", show(&r.final_accuracy)),
        ("target_loss", show(&r.target_loss)),
        ("step_to_target", show(&r.step_to_target)),
        ("seconds_to_target", show(&r.seconds_to_target)),
        ("flops_to_target", show(&r.flops_to_target)),
        ("build_seconds", show(&r.build_seconds)),
        ("status", r.status.to_owned()),
        ("error", show(&r.error)),
        ("binary", show(&r.binary)),
    ]
}

/// RFC 4180: quoted where it holds a comma, quote or line break; quotes doubled.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_prints_without_a_sign() {
        assert_eq!(number(Some(-0.0), 1), "0.0");
        assert_eq!(significant(Some(std::iter::empty::<f64>().sum())), "0");
        assert_eq!(number(None, 1), "-");
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_point_with_quoted_fields() {
        let text = csv(&crate::sweep::results::sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("point,preset,method,method_parameters,configuration,"));
        assert!(!lines[0].contains("validation"));
        let columns = lines[0].split(',').count();
        assert!(lines[1].starts_with("l4-h128-baseline,l4-h128,baseline,,,1000,4000000000,"));
        // Every field of the JSON rows but the curve is a column.
        let row = serde_json::to_value(&crate::sweep::results::sample()[0]).unwrap();
        let mut keys: Vec<&str> = lines[0].split(',').collect();
        keys.sort();
        let mut fields: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "validation")
            .collect();
        fields.sort();
        assert_eq!(keys, fields);
        // The failed row's error holds no comma or quote, so it is not quoted; every row has all
        // the columns.
        assert!(
            lines[4].contains(",failed,build: no rules expected `{`,"),
            "{}",
            lines[4]
        );
        for line in &lines[1..] {
            assert_eq!(line.split(',').count(), columns, "{line}");
        }
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn text_and_markdown_tables_show_every_point() {
        let results = crate::sweep::results::sample();
        let text = text(&results);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("point "));
        assert!(lines[2].contains("  1.60  "), "{text}");
        assert!(
            lines[4].ends_with("failed: build: no rules expected `{`"),
            "{text}"
        );
        let markdown = markdown(&results);
        assert_eq!(markdown.lines().count(), 6);
        assert!(markdown
            .lines()
            .all(|l| l.starts_with('|') && l.ends_with('|')));
        assert_eq!(number(None, 2), "-");
        assert_eq!(significant(Some(13.319)), "13.3");
        assert_eq!(significant(Some(0.012345)), "0.0123");
        assert_eq!(significant(Some(532.8)), "533");
        assert_eq!(significant(Some(0.0)), "0");
        assert_eq!(number(Some(1.0 / 3.0), 2), "0.33");
    }
}
