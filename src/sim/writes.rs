//! Timesheet writes (placeholder while mod.rs is wired up).
use super::api::{Reply, Req, Res};
use super::data::{State, User};

pub fn create(_st: &mut State, _req: &Req, _caller: &User) -> Res {
    Err(Reply::error(500))
}
pub fn update(_st: &mut State, _req: &Req, _caller: &User, _id: u64) -> Res {
    Err(Reply::error(500))
}
pub fn delete(_st: &mut State, _caller: &User, _id: u64) -> Res {
    Err(Reply::error(500))
}
pub fn action(_st: &mut State, _req: &Req, _caller: &User, _id: u64, _action: &str) -> Res {
    Err(Reply::error(500))
}
