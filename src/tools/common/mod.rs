//! Helpers that several tools share, one file per kind. A tool imports these, the tool
//! framework (`tools/mod.rs`, `args`, `schema`, `render`, `rows`, `paging`, `text`, …) and
//! lower layers, never another tool's file; a helper here imports no tool either.
//!
//! - [`missing_route`]: a route this Kimai lacks, named with the version that added it;
//! - [`work_contract`]: whether a 404 means the WorkContract plugin is missing;
//! - [`day_range`]: `filters.begin` / `filters.end` as days for the plugin's lists;
//! - [`user_lookup`]: one user from an id, a username or a display name;
//! - [`user_render`]: the text block for a user entity;
//! - [`entity_path`]: the Kimai collection an `entity` argument names;
//! - [`preview`]: `dry_run` answers of the bulk and destructive actions.

pub mod day_range;
pub mod entity_path;
pub mod missing_route;
pub mod preview;
pub mod user_lookup;
pub mod user_render;
pub mod work_contract;
