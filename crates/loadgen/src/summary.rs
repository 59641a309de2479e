//! `image-chat-loadgen summary FILE`: the side-by-side tables of a benchmark run. Reads the JSON
//! lines the scenarios wrote (several servers, several rounds of each case, as
//! `scripts/bench.sh` runs them), groups them by case (`--label`) and server (`--server-name`),
//! and prints one Markdown table per case with each figure's median over the rounds and
//! image-chat's ratio to every peer. Pure apart from reading the file.

use serde_json::Value;

/// The server the others are compared with.
pub const REFERENCE: &str = "image-chat";

/// The runs of one server in one case.
#[derive(Debug, Default)]
struct Runs {
    server: String,
    reports: Vec<Value>,
}

/// The median of the present values (`None` if there are none).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// A figure of a report, by JSON pointer into its results.
fn figure(report: &Value, pointer: &str) -> Option<f64> {
    report.get("results")?.pointer(pointer)?.as_f64()
}

/// One column: heading, pointer, scale, whether more is better (for the ratio), decimals.
struct Column {
    heading: &'static str,
    pointer: &'static str,
    scale: f64,
    higher_is_better: bool,
    decimals: usize,
}

const LOAD: &[Column] = &[
    Column {
        heading: "deliveries / server CPU-s",
        pointer: "/deliveries_per_cpu_sec",
        scale: 1.0,
        higher_is_better: true,
        decimals: 0,
    },
    Column {
        heading: "delivery p50 ms",
        pointer: "/latency/p50_ms",
        scale: 1.0,
        higher_is_better: false,
        decimals: 1,
    },
    Column {
        heading: "delivery p99 ms",
        pointer: "/latency/p99_ms",
        scale: 1.0,
        higher_is_better: false,
        decimals: 1,
    },
    Column {
        heading: "publish → ack p99 ms",
        pointer: "/ack_latency/p99_ms",
        scale: 1.0,
        higher_is_better: false,
        decimals: 1,
    },
];

const IDLE: &[Column] = &[Column {
    heading: "RSS per connection KiB",
    pointer: "/server_rss_per_connection_bytes",
    scale: 1.0 / 1024.0,
    higher_is_better: false,
    decimals: 1,
}];

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{v:.decimals$}"))
}

/// image-chat's advantage over a peer on one figure (> 1: image-chat is better).
fn advantage(ours: Option<f64>, theirs: Option<f64>, higher_is_better: bool) -> Option<f64> {
    let (ours, theirs) = (ours?, theirs?);
    let ratio = if higher_is_better {
        ours / theirs
    } else {
        theirs / ours
    };
    ratio.is_finite().then_some(ratio)
}

/// The tables for the JSON lines in `text`.
pub fn tables(text: &str) -> Result<String, String> {
    let mut cases: Vec<(String, String, Vec<Runs>)> = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let report: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let label = report["label"].as_str().unwrap_or("(no label)").to_owned();
        let scenario = report["scenario"].as_str().unwrap_or("").to_owned();
        let server = report["server"].as_str().unwrap_or(REFERENCE).to_owned();
        let at = match cases.iter().position(|(l, _, _)| *l == label) {
            Some(at) => at,
            None => {
                cases.push((label, scenario, Vec::new()));
                cases.len() - 1
            }
        };
        let servers = &mut cases[at].2;
        match servers.iter_mut().find(|r| r.server == server) {
            Some(runs) => runs.reports.push(report),
            None => servers.push(Runs {
                server,
                reports: vec![report],
            }),
        }
    }
    let mut out = String::new();
    for (label, scenario, mut servers) in cases {
        let columns = match scenario.as_str() {
            "load" => LOAD,
            "idle" => IDLE,
            _ => continue,
        };
        // image-chat first, then the peers in the order they ran.
        servers.sort_by_key(|r| r.server != REFERENCE);
        let medians: Vec<Vec<Option<f64>>> = servers
            .iter()
            .map(|runs| {
                columns
                    .iter()
                    .map(|c| {
                        median(
                            runs.reports
                                .iter()
                                .filter_map(|r| figure(r, c.pointer))
                                .map(|v| v * c.scale)
                                .collect(),
                        )
                    })
                    .collect()
            })
            .collect();
        let rounds: Vec<usize> = servers.iter().map(|r| r.reports.len()).collect();
        out.push_str(&format!(
            "\n#### {label} (median of {} rounds)\n\n| server |",
            rounds.iter().max().copied().unwrap_or(0)
        ));
        for c in columns {
            out.push_str(&format!(" {} |", c.heading));
        }
        out.push_str(" delivered / expected |\n|---|");
        for _ in columns {
            out.push_str("---:|");
        }
        out.push_str("---:|\n");
        for (runs, row) in servers.iter().zip(&medians) {
            out.push_str(&format!("| {} |", runs.server));
            for (c, value) in columns.iter().zip(row) {
                out.push_str(&format!(" {} |", cell(*value, c.decimals)));
            }
            let sum = |key| -> f64 { runs.reports.iter().filter_map(|r| figure(r, key)).sum() };
            if scenario == "load" {
                out.push_str(&format!(
                    " {:.0} / {:.0} |\n",
                    sum("/deliveries"),
                    sum("/deliveries_expected")
                ));
            } else {
                out.push_str(" — |\n");
            }
        }
        if let Some(ours) = servers
            .iter()
            .position(|r| r.server == REFERENCE)
            .map(|i| &medians[i])
        {
            for (runs, row) in servers.iter().zip(&medians) {
                if runs.server == REFERENCE {
                    continue;
                }
                out.push_str(&format!("| image-chat ÷ {} (× better) |", runs.server));
                for (i, c) in columns.iter().enumerate() {
                    out.push_str(&format!(
                        " {} |",
                        cell(advantage(ours[i], row[i], c.higher_is_better), 2)
                    ));
                }
                out.push_str(" |\n");
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn medians_and_ratios_per_case_and_server() {
        let line = |server: &str, dpc: f64, p99: f64| {
            format!(
                r#"{{"scenario":"load","label":"fanout","server":"{server}","results":{{"deliveries_per_cpu_sec":{dpc},"latency":{{"p50_ms":1,"p99_ms":{p99}}},"ack_latency":{{"p99_ms":2}},"deliveries":10,"deliveries_expected":10}}}}"#
            )
        };
        let text = [
            line("relay", 100.0, 10.0),
            line("image-chat", 200.0, 5.0),
            line("image-chat", 300.0, 50.0),
            line("image-chat", 250.0, 8.0),
            line("relay", 100.0, 10.0),
        ]
        .join("\n");
        let out = tables(&text).unwrap();
        assert!(out.contains("#### fanout (median of 3 rounds)"), "{out}");
        assert!(
            out.contains("| image-chat | 250 | 1.0 | 8.0 | 2.0 | 30 / 30 |"),
            "{out}"
        );
        assert!(
            out.contains("| relay | 100 | 1.0 | 10.0 | 2.0 | 20 / 20 |"),
            "{out}"
        );
        assert!(
            out.contains("| image-chat ÷ relay (× better) | 2.50 | 1.00 | 1.25 | 1.00 |"),
            "{out}"
        );
        assert_eq!(median(vec![1.0, 3.0]), Some(2.0));
        assert_eq!(median(Vec::new()), None);
    }
}
