//! Reading every page of `GET /api/timesheets` for statistics and analyses.
//!
//! Kimai pages timesheets (contract §3): at most 500 per page, with `X-Total-Pages` and
//! `X-Total-Count` on every page and a 404 for a page past the end. The first page tells how
//! many there are; the rest are then fetched [`PARALLEL_PAGES`] at a time. The read is bounded
//! ([`MAX_RECORDS`], [`MAX_PAGES`]) and says so when the bound cut it. Progress goes to the
//! client as pages arrive (when the call carried a `progressToken`), and a cancelled call stops
//! fetching.

use super::{Context, ToolError, fanout};
use crate::kimai::{Request, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Records per page (Kimai's maximum).
pub const PAGE_SIZE: u64 = 500;
/// Most records one read collects.
pub const MAX_RECORDS: usize = 10_000;
/// Most pages one read requests.
pub const MAX_PAGES: u64 = 100;
/// Pages requested at the same time.
pub const PARALLEL_PAGES: usize = 4;

/// Every record of a filtered timesheet list.
#[derive(Debug)]
pub struct Pages<T> {
    pub records: Vec<T>,
    /// Kimai's `X-Total-Count`, when it sent one.
    pub total: Option<u64>,
    /// True when a bound stopped the read before the last record.
    pub truncated: bool,
    /// HTTP requests made.
    pub requests: usize,
}

/// Records as JSON values.
pub type AllPages = Pages<Value>;

/// Fetches all pages of `base` (a `GET /timesheets` request with its filters; `page` and
/// `size` are set here), records as JSON values.
pub fn fetch_all(ctx: &Context, base: &Request) -> Result<AllPages, ToolError> {
    fetch_pages(
        ctx,
        base,
        |resp| match resp.body {
            Value::Array(items) => Ok(items),
            _ => Ok(Vec::new()),
        },
        |v| v.get("id").and_then(Value::as_i64),
    )
}

/// Like [`fetch_all`], decoding each page straight into `T` (on the thread that fetched it):
/// much cheaper than JSON values when thousands of records only feed figures.
pub fn fetch_all_as<T>(
    ctx: &Context,
    base: &Request,
    id: fn(&T) -> Option<i64>,
) -> Result<Pages<T>, ToolError>
where
    T: DeserializeOwned + Send,
{
    let base = base.clone().raw_array();
    fetch_pages(
        ctx,
        &base,
        |resp| match resp.raw {
            Some(bytes) => serde_json::from_slice::<Vec<T>>(&bytes).map_err(|e| {
                ToolError::Failed(format!(
                    "Kimai sent a page of timesheets that could not be read: {e}"
                ))
            }),
            None => Ok(Vec::new()),
        },
        id,
    )
}

fn fetch_pages<T, D>(
    ctx: &Context,
    base: &Request,
    decode: D,
    id_of: fn(&T) -> Option<i64>,
) -> Result<Pages<T>, ToolError>
where
    T: Send,
    D: Fn(Response) -> Result<Vec<T>, ToolError> + Sync,
{
    let page_req = |n: u64| {
        let mut r = base.clone();
        r.query.retain(|(k, _)| k != "page" && k != "size");
        r.query("page", n).query("size", PAGE_SIZE)
    };
    let first = ctx.call(&page_req(1))?;
    let first_page = first.page;
    let first_items = decode(first)?;
    let mut out = Pages {
        records: Vec::new(),
        total: None,
        truncated: false,
        requests: 1,
    };
    let mut seen = HashSet::new();
    let mut add = |out: &mut Pages<T>, items: Vec<T>| {
        for rec in items {
            if id_of(&rec).is_none_or(|id| seen.insert(id)) && out.records.len() < MAX_RECORDS {
                out.records.push(rec);
            }
        }
    };
    let first_len = first_items.len() as u64;
    add(&mut out, first_items);
    let max_pages = MAX_PAGES.min((MAX_RECORDS as u64).div_ceil(PAGE_SIZE));

    match first_page {
        Some(p) => {
            out.total = Some(p.total_count);
            let last = p.total_pages.min(max_pages);
            if last > 1 {
                let pages: Vec<u64> = (2..=last).collect();
                let done = AtomicU64::new(1);
                ctx.progress(1, Some(last), Some(&format!("read page 1 of {last}")));
                let results = fanout::parallel(ctx, &pages, PARALLEL_PAGES, |n| {
                    let r = ctx.call(&page_req(*n)).and_then(&decode);
                    let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                    ctx.progress(d, Some(last), Some(&format!("read page {d} of {last}")));
                    r
                });
                if ctx.is_cancelled() {
                    return Err(ToolError::Failed("the call was cancelled".into()));
                }
                for r in results {
                    out.requests += 1;
                    match r {
                        Some(Ok(items)) => add(&mut out, items),
                        // A page past the end (records deleted meanwhile) is not an error.
                        Some(Err(ToolError::Kimai(e))) if e.status() == Some(404) => {}
                        Some(Err(e)) => return Err(e),
                        None => return Err(ToolError::Failed("the call was cancelled".into())),
                    }
                }
            }
            // Fewer records than Kimai counted because a bound stopped us (not because records
            // vanished between pages).
            out.truncated = (out.records.len() as u64) < p.total_count
                && (p.total_pages > last || p.total_count > MAX_RECORDS as u64);
        }
        None => {
            // No pagination headers (an unusual proxy or Kimai build): read page by page until
            // a short page, a 404 or a bound.
            let mut n = 1;
            let mut len = first_len;
            while len == PAGE_SIZE && n < max_pages && !ctx.is_cancelled() {
                n += 1;
                out.requests += 1;
                match ctx.call(&page_req(n)).and_then(&decode) {
                    Ok(items) => {
                        len = items.len() as u64;
                        add(&mut out, items);
                    }
                    Err(ToolError::Kimai(e)) if e.status() == Some(404) => break,
                    Err(e) => return Err(e),
                }
            }
            out.truncated = len == PAGE_SIZE && n >= max_pages;
        }
    }
    Ok(out)
}
