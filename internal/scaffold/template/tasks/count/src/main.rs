//! A built-in rust task: a function that gets the context, the outputs of the
//! tasks it depends on, and the `params:` of its config file.
use ork::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    min_length: usize,
}

#[derive(Serialize)]
struct Counted {
    total: usize,
    long: usize,
}

#[ork::task]
fn count(ctx: &Context, upstream: &serde_json::Value, params: Params) -> Result<Counted> {
    let greetings = upstream["greet"]["greetings"]
        .as_array()
        .ok_or_else(|| ork::Error::msg("upstream task `greet` produced no greetings"))?;
    let long = greetings
        .iter()
        .filter_map(|g| g.as_str())
        .filter(|g| g.len() >= params.min_length)
        .count();
    ctx.metrics().record("long_greetings", long as f64, &[("task", ctx.task_name())])?;
    Ok(Counted { total: greetings.len(), long })
}
