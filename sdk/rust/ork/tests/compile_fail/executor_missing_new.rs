// error: no function or associated item named `new` found
use ork::{executor, Context, Result};

#[executor]
struct NoNew;

impl NoNew {
    fn run(
        &self,
        _config_file: &str,
        _ctx: &Context,
        _upstream: &ork::serde_json::Value,
    ) -> Result<()> {
        Ok(())
    }
}
