// error: an ork task function takes 3 arguments
use ork::{Context, Result};

#[ork::task]
fn two(_ctx: &Context, _upstream: &ork::serde_json::Value) -> Result<()> {
    Ok(())
}
