// error: an ork task function cannot be async
use ork::{Context, Result};

#[ork::task]
async fn later(_ctx: &Context, _upstream: &ork::serde_json::Value, _params: ()) -> Result<()> {
    Ok(())
}
