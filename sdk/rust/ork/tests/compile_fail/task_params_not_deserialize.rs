// error: [E0277]
use ork::{Context, Result};

struct NotDeserialize;

#[ork::task]
fn params(
    _ctx: &Context,
    _upstream: &ork::serde_json::Value,
    _params: NotDeserialize,
) -> Result<()> {
    Ok(())
}
