//! The stdio transport: newline-delimited JSON-RPC on stdin/stdout (MCP "stdio" transport).
//!
//! Threads:
//! - the **reader** (the caller's thread) reads one line at a time, bounded by
//!   [`MAX_LINE_BYTES`]; quick messages (initialize, ping, tools/list, notifications) are
//!   handled right there, so their order is kept and a `ping` is never stuck behind a slow
//!   tool call;
//! - **workers** (`stdio-worker-N`, [`WORKERS`] of them) run tool calls and batches, taken from
//!   a bounded queue ([`QUEUE_DEPTH`]; a full queue makes the reader wait, which pushes back
//!   on the client instead of buffering without limit);
//! - one **writer** (`stdio-writer`) owns stdout and writes every outgoing message as one
//!   compact line, flushed at once. Everything else sends it messages over a channel, so lines
//!   never interleave.
//!
//! stdout carries protocol only; logs go to stderr. On stdin EOF the reader stops, in-flight
//! calls get up to [`DRAIN_TIME`] to finish and be written, and `serve` returns.

use crate::dispatch::{Connection, Dispatcher, Env};
use crate::kimai::Account;
use crate::mcp::{self, ChannelNotifier, RpcError};
use serde_json::Value;
use std::io::{self, BufRead, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Longest accepted input line (one JSON-RPC message). Longer lines are answered with a parse
/// error and skipped.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// Tool calls served at the same time.
pub const WORKERS: usize = 4;
/// Tool calls waiting for a worker before the reader waits too.
pub const QUEUE_DEPTH: usize = 64;
/// How long in-flight calls may take to finish after stdin closed.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

struct Shared {
    dispatcher: Dispatcher,
    conn: Connection,
    backend: Account,
    notifier: ChannelNotifier,
    label: String,
    policy: crate::tools::policy::Policy,
}

impl Shared {
    fn env(&self) -> Env<'_> {
        Env {
            backend: &self.backend,
            notifier: &self.notifier,
            label: &self.label,
            policy: &self.policy,
        }
    }
}

/// Serves one client over `input`/`output` until `input` ends, with every tool available.
pub fn serve<R, W>(input: R, output: W, backend: Account, label: &str) -> io::Result<()>
where
    R: BufRead,
    W: Write + Send + 'static,
{
    serve_with(
        input,
        output,
        backend,
        label,
        crate::tools::policy::Policy::default(),
    )
}

/// [`serve`] with what the tools may do (`--read-only`, `--tools`, `--exclude-tools`).
pub fn serve_with<R, W>(
    input: R,
    output: W,
    backend: Account,
    label: &str,
    policy: crate::tools::policy::Policy,
) -> io::Result<()>
where
    R: BufRead,
    W: Write + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel::<Value>();
    let writer = thread::Builder::new()
        .name("stdio-writer".into())
        .spawn(move || write_loop(output, out_rx))?;

    let shared = Arc::new(Shared {
        dispatcher: Dispatcher::new(),
        conn: Connection::new(),
        backend,
        notifier: ChannelNotifier(out_tx.clone()),
        label: label.to_string(),
        policy,
    });

    let (job_tx, job_rx) = mpsc::sync_channel::<mcp::Incoming>(QUEUE_DEPTH);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let mut workers = Vec::with_capacity(WORKERS);
    for n in 0..WORKERS {
        let (shared, job_rx, out_tx) = (shared.clone(), job_rx.clone(), out_tx.clone());
        workers.push(
            thread::Builder::new()
                .name(format!("stdio-worker-{n}"))
                .spawn(move || work_loop(&shared, &job_rx, &out_tx))?,
        );
    }

    let result = read_loop(input, &shared, &job_tx, &out_tx);

    // Shut down: no more jobs; workers finish what they have; then the writer drains.
    drop(job_tx);
    drop(out_tx);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let drainer = thread::Builder::new()
        .name("stdio-drain".into())
        .spawn(move || {
            for w in workers {
                let _ = w.join();
            }
            // The notifier inside `shared` holds the last sender; drop it so the writer ends.
            drop(shared);
            let _ = writer.join();
            let _ = done_tx.send(());
        });
    if drainer.is_ok() && done_rx.recv_timeout(DRAIN_TIME).is_err() {
        log::warn!(
            "stdin closed; in-flight calls did not finish within {} s and were abandoned",
            DRAIN_TIME.as_secs()
        );
    }
    result
}

fn read_loop<R: BufRead>(
    mut input: R,
    shared: &Shared,
    jobs: &SyncSender<mcp::Incoming>,
    out: &Sender<Value>,
) -> io::Result<()> {
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        match read_bounded_line(&mut input, &mut line, MAX_LINE_BYTES) {
            Ok(Line::Eof) => return Ok(()),
            Ok(Line::TooLong) => {
                let err = RpcError::parse(format!(
                    "message longer than {MAX_LINE_BYTES} bytes; it was skipped"
                ));
                let _ = out.send(mcp::response_err(None, err));
                continue;
            }
            Ok(Line::Complete) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::error!("reading stdin failed: {e}");
                return Err(e);
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let incoming = match mcp::parse_incoming(&line) {
            Err(resp) => {
                let _ = out.send(resp);
                continue;
            }
            Ok(incoming) => incoming,
        };
        // Tool calls (and batches holding one) go to the workers, so that a `ping` or a
        // cancellation read after them is answered at once.
        if incoming.holds_tool_call() {
            if jobs.send(incoming).is_err() {
                return Ok(()); // every worker is gone: nothing more can be served
            }
        } else if let Some(reply) =
            shared
                .dispatcher
                .handle_incoming(&shared.conn, incoming, &shared.env())
        {
            let _ = out.send(reply);
        }
    }
}

fn work_loop(shared: &Shared, jobs: &Mutex<Receiver<mcp::Incoming>>, out: &Sender<Value>) {
    loop {
        // Hold the lock only to take one job.
        let job = {
            let rx = jobs.lock().unwrap_or_else(|e| e.into_inner());
            rx.recv()
        };
        let Ok(job) = job else { return };
        let reply = shared
            .dispatcher
            .handle_incoming(&shared.conn, job, &shared.env());
        if let Some(reply) = reply {
            let _ = out.send(reply);
        }
    }
}

fn write_loop<W: Write>(mut output: W, rx: Receiver<Value>) {
    for msg in rx {
        // Compact serialisation escapes every newline inside strings: one message, one line.
        let mut line = match serde_json::to_vec(&msg) {
            Ok(l) => l,
            Err(e) => {
                log::error!("could not serialise an outgoing message: {e}");
                continue;
            }
        };
        line.push(b'\n');
        if let Err(e) = output.write_all(&line).and_then(|_| output.flush()) {
            log::error!("writing to stdout failed ({e}); no more output can be sent");
            return;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Line {
    Complete,
    TooLong,
    Eof,
}

/// Reads up to and including the next `\n` into `buf` (without the newline), keeping at most
/// `max` bytes; the rest of an over-long line is read and discarded.
fn read_bounded_line<R: BufRead>(input: &mut R, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    let mut too_long = false;
    let mut saw_any = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if !saw_any {
                Line::Eof
            } else if too_long {
                Line::TooLong
            } else {
                Line::Complete // last line without a newline
            });
        }
        saw_any = true;
        let (part, found, used) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], true, i + 1),
            None => (chunk, false, chunk.len()),
        };
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        input.consume(used);
        if found {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn bounded_lines() {
        let mut input = Cursor::new(b"abc\n\ntoolongline\nlast".to_vec());
        let mut buf = Vec::new();
        assert_eq!(
            read_bounded_line(&mut input, &mut buf, 5).unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"abc");
        buf.clear();
        assert_eq!(
            read_bounded_line(&mut input, &mut buf, 5).unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"");
        buf.clear();
        assert_eq!(
            read_bounded_line(&mut input, &mut buf, 5).unwrap(),
            Line::TooLong
        );
        buf.clear();
        assert_eq!(
            read_bounded_line(&mut input, &mut buf, 5).unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(
            read_bounded_line(&mut input, &mut buf, 5).unwrap(),
            Line::Eof
        );
    }

    #[test]
    fn long_line_split_across_reads_is_skipped_whole() {
        // A BufReader with a tiny buffer forces the line to arrive in pieces.
        let data = b"0123456789abcdef\nok\n".to_vec();
        let mut input = io::BufReader::with_capacity(3, Cursor::new(data));
        let mut buf = Vec::new();
        assert_eq!(
            read_bounded_line(&mut input, &mut buf, 8).unwrap(),
            Line::TooLong
        );
        buf.clear();
        assert_eq!(
            read_bounded_line(&mut input, &mut buf, 8).unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"ok");
    }
}
