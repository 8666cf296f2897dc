// error: #[ork::task] takes no arguments
use ork::{Context, Result};

#[ork::task(retries = 3)]
fn with_args(_ctx: &Context, _upstream: &ork::serde_json::Value, _params: ()) -> Result<()> {
    Ok(())
}
