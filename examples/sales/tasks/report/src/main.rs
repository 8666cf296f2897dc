//! Combines both aggregations into a report, written to the task's output
//! directory (kept under .ork/runs/<run>/report/output).
use std::fmt::Write as _;

use ork::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    title: String,
}

#[derive(Serialize)]
struct Report {
    total: f64,
    top_region: String,
    top_product: String,
    file: String,
}

fn groups<'a>(upstream: &'a serde_json::Value, task: &str) -> Result<&'a Vec<serde_json::Value>> {
    upstream[task]["groups"]
        .as_array()
        .ok_or_else(|| ork::Error::msg(format!("upstream task `{}` has no groups", task)))
}

#[ork::task]
fn report(ctx: &Context, upstream: &serde_json::Value, params: Params) -> Result<Report> {
    let regions = groups(upstream, "by_region")?;
    let products = groups(upstream, "by_product")?;
    let currency = upstream["by_region"]["currency"].as_str().unwrap_or("");
    let total: f64 = regions.iter().filter_map(|g| g["total"].as_f64()).sum();
    let total = (total * 100.0).round() / 100.0;
    let first = |gs: &Vec<serde_json::Value>| gs.first().and_then(|g| g["key"].as_str()).unwrap_or("-").to_string();

    let mut md = String::new();
    writeln!(md, "# {}\n\nTotal: {:.2} {}\n", params.title, total, currency)?;
    for (name, gs) in [("Region", regions), ("Product", products)] {
        writeln!(md, "| {} | Total | Rows |\n|---|---:|---:|", name)?;
        for g in gs {
            writeln!(md, "| {} | {:.2} | {} |", g["key"].as_str().unwrap_or("?"), g["total"].as_f64().unwrap_or(0.0), g["rows"])?;
        }
        writeln!(md)?;
    }
    let file = ctx.output_dir().join("report.md");
    std::fs::write(&file, md)?;
    let file = file.display().to_string();
    ctx.metrics().record("revenue_total", total, &[("task", ctx.task_name()), ("currency", currency)])?;
    Ok(Report { total, top_region: first(regions), top_product: first(products), file })
}
