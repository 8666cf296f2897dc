// error: an ork task function takes no `self`
use ork::{Context, Result};

#[ork::task]
fn method(self, _ctx: &Context, _upstream: &ork::serde_json::Value) -> Result<()> {
    Ok(())
}
