// error: an ork task function cannot be generic
use ork::{Context, Result};

#[ork::task]
fn generic<P: Default>(
    _ctx: &Context,
    _upstream: &ork::serde_json::Value,
    _params: P,
) -> Result<()> {
    Ok(())
}
