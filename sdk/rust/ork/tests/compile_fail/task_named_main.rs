// error: an ork task function cannot be called `main`
use ork::{Context, Result};

#[ork::task]
fn main(_ctx: &Context, _upstream: &ork::serde_json::Value, _params: ()) -> Result<()> {
    Ok(())
}
