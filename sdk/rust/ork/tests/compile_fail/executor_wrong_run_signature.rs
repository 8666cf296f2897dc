// error: [E0593]
use ork::{executor, Context, Result};

#[executor]
struct WrongRun;

impl WrongRun {
    fn new(_config: ()) -> Result<Self> {
        Ok(WrongRun)
    }

    // `upstream` is missing.
    fn run(&self, _config_file: &str, _ctx: &Context) -> Result<()> {
        Ok(())
    }
}
