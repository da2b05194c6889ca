//! Reading every page of `GET /api/timesheets` for statistics and analyses.
//!
//! Kimai pages timesheets (contract §3): at most 500 per page, with `X-Total-Pages` and
//! `X-Total-Count` on every page and a 404 for a page past the end. The first page tells how
//! many there are; the rest are then fetched [`PARALLEL_PAGES`] at a time, each decoded and
//! aggregated by the caller's visitor on the thread that fetched it ([`read_pages`]). The read
//! is bounded ([`MAX_RECORDS`], [`MAX_PAGES`]) and says so when the bound cut it. Progress goes to the
//! client as pages arrive (when the call carried a `progressToken`), and a cancelled call stops
//! fetching.

use super::{Context, ToolError, fanout};
use crate::kimai::{Page, Request};
use std::sync::atomic::{AtomicU64, Ordering};

/// Records per page (Kimai's maximum).
pub const PAGE_SIZE: u64 = 500;
/// Most records one read collects.
pub const MAX_RECORDS: usize = 10_000;
/// Most pages one read requests.
pub const MAX_PAGES: u64 = 100;
/// Pages requested at the same time.
pub const PARALLEL_PAGES: usize = 4;

/// What a read of every page saw.
#[derive(Debug, Default)]
pub struct Read {
    /// Kimai's `X-Total-Count`, when it sent one.
    pub total: Option<u64>,
    /// Records received (the visitor's counts of the pages' lengths).
    pub received: usize,
    /// True when a bound stopped the read before the last record.
    pub truncated: bool,
    /// HTTP requests made.
    pub requests: usize,
}

/// Reads every page of `base` (a `GET /timesheets` request with its filters; `page` and `size`
/// are set here) and hands each page's undecoded JSON array to `visit` on the thread that
/// fetched it, with its page number; `visit` returns how many records it took. So each page is
/// decoded and aggregated as soon as it arrives and dropped right after: no page outlives its
/// aggregation, and at most [`PARALLEL_PAGES`] pages are in memory at once. `visit` returns
/// the number of records in the page; which of them it keeps (repeats, filters) is its own
/// business.
pub fn read_pages<F>(ctx: &Context, base: &Request, visit: F) -> Result<Read, ToolError>
where
    F: Fn(u64, Vec<u8>) -> Result<usize, ToolError> + Sync,
{
    let page_req = |n: u64| {
        let mut r = base.clone().raw_array();
        r.query.retain(|(k, _)| k != "page" && k != "size");
        r.query("page", n).query("size", PAGE_SIZE)
    };
    // A body that is not an array (an odd proxy) holds no records.
    let fetch = |n: u64| -> Result<(usize, Option<Page>), ToolError> {
        let resp = ctx.call(&page_req(n))?;
        let page = resp.page;
        let taken = match resp.raw {
            Some(bytes) => visit(n, bytes)?,
            None => 0,
        };
        Ok((taken, page))
    };
    let mut out = Read {
        requests: 1,
        ..Read::default()
    };
    let (first_taken, first_page) = fetch(1)?;
    out.received = first_taken;
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
                    let r = fetch(*n);
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
                        Some(Ok((taken, _))) => out.received += taken,
                        // A page past the end (records deleted meanwhile) is not an error.
                        Some(Err(ToolError::Kimai(e))) if e.status() == Some(404) => {}
                        Some(Err(e)) => return Err(e),
                        None => return Err(ToolError::Failed("the call was cancelled".into())),
                    }
                }
            }
            // Fewer records than Kimai counted because a bound stopped us (not because records
            // vanished between pages).
            out.truncated = (out.received as u64) < p.total_count
                && (p.total_pages > last || p.total_count > MAX_RECORDS as u64);
        }
        None => {
            // No pagination headers (an unusual proxy or Kimai build): read page by page until
            // a short page, a 404 or a bound.
            let mut n = 1;
            let mut len = first_taken as u64;
            while len == PAGE_SIZE && n < max_pages && !ctx.is_cancelled() {
                n += 1;
                out.requests += 1;
                match fetch(n) {
                    Ok((taken, _)) => {
                        len = taken as u64;
                        out.received += taken;
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
