// error: #[ork::executor] must be placed on a struct
use ork::executor;

#[executor]
enum NotAStruct {
    A,
}

impl NotAStruct {}
