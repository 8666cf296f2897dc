// error: #[ork::executor] must be placed on a struct
use ork::executor;

#[executor]
union NotAStruct {
    a: u32,
    b: f32,
}
