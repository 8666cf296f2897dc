//! A custom executor for testing the host: configured from ork.yaml, it reads
//! each task's config file and reports what it saw.
//!
//! ```yaml
//! executors:
//!   probe:
//!     type: ./executor-probe      # however ork names a Rust executor crate
//!     config:
//!       greeting: hello
//!       fail_new: false           # true: `new` fails with "refusing to start"
//! ```

use ork::serde_json;
use ork::{executor, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct ExecutorConfig {
    greeting: String,
    #[serde(default)]
    fail_new: bool,
}

#[derive(Serialize)]
struct TaskOutput {
    greeting: String,
    config_file: String,
    /// Bytes in the task's config file (`null` when the task has none).
    config_len: Option<usize>,
    upstream_keys: Vec<String>,
}

#[executor]
struct ExecutorProbe {
    greeting: String,
}

impl ExecutorProbe {
    fn new(config: ExecutorConfig) -> Result<Self> {
        if config.fail_new {
            ork::bail!("refusing to start");
        }
        Ok(ExecutorProbe {
            greeting: config.greeting,
        })
    }

    fn run(
        &self,
        config_file: &str,
        ctx: &Context,
        upstream: &serde_json::Value,
    ) -> Result<TaskOutput> {
        let config_len = if config_file.is_empty() {
            None
        } else {
            let text = std::fs::read_to_string(config_file)
                .map_err(|e| ork::Error::from(e).context(format!("reading {}", config_file)))?;
            Some(text.len())
        };
        ctx.metrics().record(
            "greetings",
            1.0,
            &[("task", ctx.task_name()), ("workflow", ctx.workflow_name())],
        )?;
        let upstream_keys = upstream
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        Ok(TaskOutput {
            greeting: self.greeting.clone(),
            config_file: config_file.to_string(),
            config_len,
            upstream_keys,
        })
    }
}
