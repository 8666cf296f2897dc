// error: [E0631]
use ork::Result;

#[ork::task]
fn wrong(_ctx: &str, _upstream: &ork::serde_json::Value, _params: ()) -> Result<()> {
    Ok(())
}
