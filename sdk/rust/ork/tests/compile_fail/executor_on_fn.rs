// error: use #[ork::task] for a task function
use ork::executor;

#[executor]
fn run() {}
