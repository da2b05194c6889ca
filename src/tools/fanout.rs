//! Many Kimai requests for one tool call: bounded parallel fan-out, batch summaries, and the
//! "read for everyone" rule.
//!
//! - [`parallel`] runs a closure over items on at most `limit` scoped threads at once,
//!   keeping the input order in the output and starting nothing new once the call is
//!   cancelled.
//! - [`batch`] is for writes on a list of ids (batch delete, approve, …): every id is tried
//!   once (repeats removed), and the result says what succeeded and what failed and why.
//! - [`read_all`] is for reads that feed an answer about everyone (absences of all users,
//!   members of all teams): items that answer 403/404 are skipped and named; any other failure
//!   (401, 5xx, timeout) fails the whole answer, because a partial "everyone" is a wrong answer.

use super::{Context, ToolError, kimai_error_text};
use crate::kimai;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Fan-out width for per-item reads and writes.
pub const FAN_OUT: usize = 10;

/// Runs `f` over `items`, at most `limit` at a time; results in input order. Items not started
/// because the call was cancelled yield `None`.
pub fn parallel<T, R, F>(ctx: &Context, items: &[T], limit: usize, f: F) -> Vec<Option<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let limit = limit.clamp(1, 32).min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..limit {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= items.len() || ctx.is_cancelled() {
                        return;
                    }
                    let r = f(&items[i]);
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// The outcome of a batch of writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub done: Vec<i64>,
    pub failed: Vec<(i64, String)>,
    /// Items left alone on purpose (e.g. already exported), with the reason.
    pub skipped: Vec<(i64, String)>,
}

/// Runs `op` for every id (repeats already removed by the caller), [`FAN_OUT`] at a time.
/// `op` returns `Ok(true)` when it changed something, `Ok(false)` when it left the item alone
/// on purpose (reason given by `skip_reason`).
pub fn batch<F>(ctx: &Context, ids: &[i64], skip_reason: &str, op: F) -> Result<Batch, ToolError>
where
    F: Fn(i64) -> Result<bool, ToolError> + Sync,
{
    let results = parallel(ctx, ids, FAN_OUT, |id| op(*id));
    if ctx.is_cancelled() {
        return Err(ToolError::Failed("the call was cancelled".into()));
    }
    let mut b = Batch::default();
    for (id, r) in ids.iter().zip(results) {
        match r {
            Some(Ok(true)) => b.done.push(*id),
            Some(Ok(false)) => b.skipped.push((*id, skip_reason.to_string())),
            Some(Err(e)) => b.failed.push((*id, short_error(&e))),
            None => b.failed.push((*id, "not attempted (cancelled)".into())),
        }
    }
    Ok(b)
}

/// A one-line reason for a failed item (Kimai's message and status, no hints).
pub fn short_error(e: &ToolError) -> String {
    match e {
        ToolError::Kimai(k) => kimai_error_text(k)
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("Kimai error: ")
            .to_string(),
        ToolError::Invalid(m) | ToolError::Failed(m) => m.clone(),
    }
}

impl Batch {
    /// `Batch delete: 3 of 4 timesheets deleted.` plus one line per failure (at most 10).
    pub fn summary(&self, verb_done: &str, noun: &str) -> String {
        let total = self.done.len() + self.failed.len() + self.skipped.len();
        let mut out = format!("{} of {total} {noun} {verb_done}.", self.done.len());
        if !self.done.is_empty() {
            out.push_str(&format!("\nSucceeded: {}", list(&self.done)));
        }
        if !self.skipped.is_empty() {
            let ids: Vec<i64> = self.skipped.iter().map(|(i, _)| *i).collect();
            out.push_str(&format!(
                "\nLeft unchanged ({}): {}",
                self.skipped[0].1,
                list(&ids)
            ));
        }
        if !self.failed.is_empty() {
            out.push_str(&format!("\nFailed: {}", self.failed.len()));
            for (id, why) in self.failed.iter().take(10) {
                out.push_str(&format!("\n- ID {id}: {why}"));
            }
            if self.failed.len() > 10 {
                out.push_str(&format!("\n- … and {} more", self.failed.len() - 10));
            }
        }
        out
    }
}

fn list(ids: &[i64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What [`read_all`] returns: the items read (with their key) and the keys skipped with the
/// HTTP status Kimai gave them.
pub type ReadAll<K, R> = (Vec<(K, R)>, Vec<(K, u16)>);

/// Reads one item per key for an "everyone" answer. Returns the successes (in order, paired
/// with their key) and the keys skipped because Kimai answered 403 or 404; any other failure
/// is returned as the error of the whole read.
pub fn read_all<K, R, F>(ctx: &Context, keys: &[K], f: F) -> Result<ReadAll<K, R>, ToolError>
where
    K: Clone + Sync + Send,
    R: Send,
    F: Fn(&K) -> Result<R, ToolError> + Sync,
{
    let results = parallel(ctx, keys, FAN_OUT, |k| f(k));
    if ctx.is_cancelled() {
        return Err(ToolError::Failed("the call was cancelled".into()));
    }
    let mut ok = Vec::new();
    let mut skipped = Vec::new();
    for (k, r) in keys.iter().zip(results) {
        match r {
            Some(Ok(v)) => ok.push((k.clone(), v)),
            Some(Err(ToolError::Kimai(e)))
                if matches!(e.status(), Some(403 | 404)) && !is_outage(&e) =>
            {
                skipped.push((k.clone(), e.status().unwrap_or(0)))
            }
            Some(Err(e)) => return Err(e),
            None => return Err(ToolError::Failed("the call was cancelled".into())),
        }
    }
    Ok((ok, skipped))
}

fn is_outage(e: &kimai::Error) -> bool {
    matches!(e, kimai::Error::Unauthorized { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_successes_skips_and_failures() {
        let b = Batch {
            done: vec![1, 2],
            failed: vec![(3, "403 Forbidden".into())],
            skipped: vec![(4, "already exported".into())],
        };
        assert_eq!(
            b.summary("deleted", "timesheets"),
            "2 of 4 timesheets deleted.\nSucceeded: 1, 2\nLeft unchanged (already exported): 4\nFailed: 1\n- ID 3: 403 Forbidden"
        );
    }
}
