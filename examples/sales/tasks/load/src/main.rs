//! Loads the sales CSV from the project (mounted read-only in the sandbox).
use ork::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    file: String,
}

#[derive(Serialize)]
struct Sale {
    date: String,
    region: String,
    product: String,
    units: u32,
    amount: f64,
}

#[derive(Serialize)]
struct Loaded {
    rows: Vec<Sale>,
}

#[ork::task]
fn load(ctx: &Context, _upstream: &serde_json::Value, params: Params) -> Result<Loaded> {
    let text = std::fs::read_to_string(&params.file)
        .map_err(|e| ork::Error::msg(format!("reading {}: {}", params.file, e)))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| ork::Error::msg(format!("{} is empty", params.file)))?;
    if header.trim() != "date,region,product,units,amount" {
        ork::bail!("{}: unexpected header {:?}", params.file, header);
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').map(|s| s.trim()).collect();
        if f.len() != 5 {
            ork::bail!("{}:{}: expected 5 fields, got {}", params.file, i + 2, f.len());
        }
        let bad = |what: &str| ork::Error::msg(format!("{}:{}: {} is not a number", params.file, i + 2, what));
        rows.push(Sale {
            date: f[0].to_string(),
            region: f[1].to_string(),
            product: f[2].to_string(),
            units: f[3].parse().map_err(|_| bad("units"))?,
            amount: f[4].parse().map_err(|_| bad("amount"))?,
        });
    }
    ctx.info(&format!("loaded {} rows from {}", rows.len(), params.file));
    ctx.metrics().record(
        "rows_loaded",
        rows.len() as f64,
        &[("task", ctx.task_name()), ("workflow", ctx.workflow_name())],
    )?;
    Ok(Loaded { rows })
}
