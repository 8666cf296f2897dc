//! A custom executor: configured once in ork.yaml, run for each task that
//! names it. ork builds this crate to a WASI module and runs every task in a
//! fresh sandbox.
use ork::{executor, Context, Result};
use serde::{Deserialize, Serialize};

/// The `config:` block of this executor in ork.yaml.
#[derive(Deserialize)]
struct GreeterConfig {
    greeting: String,
}

/// The task config file (`config_file:` in the workflow).
#[derive(Deserialize)]
struct TaskConfig {
    names: Vec<String>,
}

#[derive(Serialize)]
struct TaskOutput {
    greetings: Vec<String>,
}

#[executor]
struct GreeterExecutor {
    greeting: String,
}

impl GreeterExecutor {
    fn new(config: GreeterConfig) -> Result<Self> {
        Ok(GreeterExecutor { greeting: config.greeting })
    }

    fn run(&self, config_file: &str, ctx: &Context, _upstream: &serde_json::Value) -> Result<TaskOutput> {
        // The project is mounted read-only at the same relative paths.
        let text = std::fs::read_to_string(config_file)?;
        let task: TaskConfig = serde_yaml::from_str(&text)?;
        let greetings: Vec<String> = task
            .names
            .iter()
            .map(|n| format!("{}, {}!", self.greeting, n))
            .collect();
        ctx.info(&format!("greeted {} people", greetings.len()));
        ctx.metrics().record(
            "greetings",
            greetings.len() as f64,
            &[("task", ctx.task_name()), ("workflow", ctx.workflow_name())],
        )?;
        Ok(TaskOutput { greetings })
    }
}
