//! A custom executor that sums a measure by a column of the `load` task's rows.
//! Configured once in ork.yaml; each task names the column in its config file.
use std::collections::BTreeMap;

use ork::{executor, Context, Result};
use serde::{Deserialize, Serialize};

/// The executor's `config:` in ork.yaml.
#[derive(Deserialize)]
struct AggregateConfig {
    measure: String,
    #[serde(default = "default_currency")]
    currency: String,
}

fn default_currency() -> String {
    "USD".to_string()
}

/// A task's config file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskConfig {
    group_by: String,
    /// Keep only the largest groups.
    top: Option<usize>,
}

#[derive(Serialize)]
struct Group {
    key: String,
    total: f64,
    rows: usize,
}

#[derive(Serialize)]
struct TaskOutput {
    group_by: String,
    currency: String,
    groups: Vec<Group>,
}

#[executor]
struct AggregateExecutor {
    config: AggregateConfig,
}

impl AggregateExecutor {
    fn new(config: AggregateConfig) -> Result<Self> {
        if config.measure.is_empty() {
            ork::bail!("measure must not be empty");
        }
        Ok(AggregateExecutor { config })
    }

    fn run(&self, config_file: &str, ctx: &Context, upstream: &serde_json::Value) -> Result<TaskOutput> {
        let text = std::fs::read_to_string(config_file)?;
        let task: TaskConfig = serde_yaml::from_str(&text)
            .map_err(|e| ork::Error::msg(format!("{}: {}", config_file, e)))?;
        let rows = upstream["load"]["rows"]
            .as_array()
            .ok_or_else(|| ork::Error::msg("this executor needs the rows of an upstream task named `load`"))?;

        let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for row in rows {
            let key = row[&task.group_by]
                .as_str()
                .ok_or_else(|| ork::Error::msg(format!("rows have no text column `{}`", task.group_by)))?;
            let value = row[&self.config.measure]
                .as_f64()
                .ok_or_else(|| ork::Error::msg(format!("rows have no numeric column `{}`", self.config.measure)))?;
            let e = sums.entry(key.to_string()).or_insert((0.0, 0));
            e.0 += value;
            e.1 += 1;
        }
        let mut groups: Vec<Group> = sums
            .into_iter()
            .map(|(key, (total, rows))| Group { key, total: (total * 100.0).round() / 100.0, rows })
            .collect();
        groups.sort_by(|a, b| b.total.partial_cmp(&a.total).unwrap_or(std::cmp::Ordering::Equal));
        if let Some(n) = task.top {
            groups.truncate(n);
        }
        for g in &groups {
            ctx.metrics().record(
                "group_total",
                g.total,
                &[("task", ctx.task_name()), ("workflow", ctx.workflow_name()), (task.group_by.as_str(), g.key.as_str())],
            )?;
        }
        ctx.info(&format!("{} groups by {}", groups.len(), task.group_by));
        Ok(TaskOutput { group_by: task.group_by, currency: self.config.currency.clone(), groups })
    }
}
