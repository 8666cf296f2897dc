// error: an ork executor cannot be generic
use ork::{executor, Context, Result};

#[executor]
struct Generic<T> {
    value: T,
}

impl<T: Default> Generic<T> {
    fn new(_config: ()) -> Result<Self> {
        Ok(Generic {
            value: T::default(),
        })
    }

    fn run(
        &self,
        _config_file: &str,
        _ctx: &Context,
        _upstream: &ork::serde_json::Value,
    ) -> Result<()> {
        Ok(())
    }
}
