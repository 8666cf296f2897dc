// error: #[ork::executor] takes no arguments
use ork::{executor, Context, Result};

#[executor(name = "x")]
struct WithArgs;

impl WithArgs {
    fn new(_config: ()) -> Result<Self> {
        Ok(WithArgs)
    }

    fn run(
        &self,
        _config_file: &str,
        _ctx: &Context,
        _upstream: &ork::serde_json::Value,
    ) -> Result<()> {
        Ok(())
    }
}
