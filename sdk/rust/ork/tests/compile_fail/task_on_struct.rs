// error: use #[ork::executor] for an executor struct
#[ork::task]
struct NotAFunction;
