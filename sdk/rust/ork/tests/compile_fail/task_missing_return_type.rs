// error: an ork task function must return `ork::Result<O>`
use ork::Context;

#[ork::task]
fn nothing(_ctx: &Context, _upstream: &ork::serde_json::Value, _params: ()) {}
