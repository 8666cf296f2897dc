// error: an ork task function takes 3 arguments
use ork::{Context, Result};

#[ork::task]
fn four(
    _ctx: &Context,
    _upstream: &ork::serde_json::Value,
    _params: (),
    _extra: u32,
) -> Result<()> {
    Ok(())
}
