//! How much work runs at once: tool calls take a place among the caller's own
//! (`--max-calls-per-user`, per credential) and then a worker slot (`--workers`, shared), so
//! that a slow Kimai ties up its caller's capacity, not everyone's (design §3). Requests that
//! are quick by nature (`ping`, `initialize`, `tools/list`, notifications, `DELETE`) take
//! neither and never wait behind tool calls.
//!
//! Both are counters behind a mutex with a condition variable; a request waits at most
//! [`SLOT_WAIT`] for a place, then gets "busy". The locks are held only to count. With
//! `--state`, a credential's places are leases in the shared store instead (`crate::state`),
//! counted across the instances and lapsing after `--call-lease`, so that a killed instance
//! does not keep them; a waiting call then asks again every [`LEASE_POLL`] (sooner when a call
//! of this instance ends).

use crate::guard::CredentialKey;
use crate::state::{LeaseId, Store};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a request waits for a place before it is answered "busy".
pub const SLOT_WAIT: Duration = Duration::from_secs(30);

/// With `--state`: how often a call waiting for a place asks the store again.
pub const LEASE_POLL: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared worker slots: tool calls handled at once, from everyone.
pub struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }

    /// Runs `f` in a slot, or returns `None` when none freed up within `wait`.
    pub fn run<T>(&self, wait: Duration, f: impl FnOnce() -> T) -> Option<T> {
        {
            let guard = lock(&self.free);
            let (mut free, timeout) = self
                .cv
                .wait_timeout_while(guard, wait, |n| *n == 0)
                .unwrap_or_else(|e| e.into_inner());
            if timeout.timed_out() && *free == 0 {
                return None;
            }
            *free -= 1;
        }
        struct Release<'a>(&'a Slots);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                *lock(&self.0.free) += 1;
                self.0.cv.notify_one();
            }
        }
        let _release = Release(self);
        Some(f())
    }

    /// Slots free now.
    pub fn free(&self) -> usize {
        *lock(&self.free)
    }
}

/// Tool calls in flight per credential (`--max-calls-per-user`). The map holds only
/// credentials with a call in flight, so it is bounded by the calls running and waiting.
pub struct CallLimiter {
    max: usize,
    busy: Mutex<HashMap<CredentialKey, usize>>,
    cv: Condvar,
    /// `--state`: the store holding the leases, and how long one lasts.
    shared: Option<(Arc<Store>, Duration)>,
}

/// A place among a credential's calls; given back when dropped (also on a panic).
pub struct CallPermit {
    limiter: Arc<CallLimiter>,
    key: CredentialKey,
    /// With `--state`: the lease in the store (nothing is counted in this process).
    lease: Option<LeaseId>,
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        if let (Some(lease), Some((store, _))) = (&self.lease, &self.limiter.shared) {
            store.return_lease(lease);
            self.limiter.cv.notify_all();
            return;
        }
        let mut busy = lock(&self.limiter.busy);
        if let Some(n) = busy.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.key);
            }
        }
        drop(busy);
        // Waiters of several credentials share the condition variable.
        self.limiter.cv.notify_all();
    }
}

impl CallLimiter {
    pub fn new(max: usize) -> Arc<CallLimiter> {
        Arc::new(CallLimiter {
            max: max.max(1),
            busy: Mutex::new(HashMap::new()),
            cv: Condvar::new(),
            shared: None,
        })
    }

    /// Places counted as leases of `lease` in the shared store (`--state`).
    pub fn shared(max: usize, store: Arc<Store>, lease: Duration) -> Arc<CallLimiter> {
        Arc::new(CallLimiter {
            max: max.max(1),
            busy: Mutex::new(HashMap::new()),
            cv: Condvar::new(),
            shared: Some((store, lease)),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A place for one more call of `key`, waiting up to `wait` for one of its calls to end;
    /// [`Busy::Caller`] when none did, [`Busy::State`] when the shared store is unreachable.
    pub fn acquire(
        self: &Arc<Self>,
        key: CredentialKey,
        wait: Duration,
    ) -> Result<CallPermit, Busy> {
        let deadline = Instant::now() + wait;
        if let Some((store, lease)) = &self.shared {
            let who = crate::secret::hex(&key);
            loop {
                match store.take_lease(&who, self.max, *lease) {
                    Ok(Some(lease)) => {
                        return Ok(CallPermit {
                            limiter: self.clone(),
                            key,
                            lease: Some(lease),
                        });
                    }
                    Ok(None) => {}
                    Err(crate::state::Unreachable) => return Err(Busy::State),
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Busy::Caller(self.max));
                }
                // Woken early when a call of this instance ends; other instances' are polled.
                let busy = lock(&self.busy);
                let _ = self
                    .cv
                    .wait_timeout(busy, left.min(LEASE_POLL))
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        let mut busy = lock(&self.busy);
        loop {
            let n = busy.get(&key).copied().unwrap_or(0);
            if n < self.max {
                busy.insert(key, n + 1);
                return Ok(CallPermit {
                    limiter: self.clone(),
                    key,
                    lease: None,
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Busy::Caller(self.max));
            }
            busy = self
                .cv
                .wait_timeout(busy, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Calls of `key` in flight now (with `--state`: across the instances; 0 when the store
    /// cannot be asked).
    pub fn in_flight(&self, key: &CredentialKey) -> usize {
        if let Some((store, _)) = &self.shared {
            return store.leases(&crate::secret::hex(key)).unwrap_or(0);
        }
        lock(&self.busy).get(key).copied().unwrap_or(0)
    }
}

/// Why a call did not run.
#[derive(Debug, PartialEq, Eq)]
pub enum Busy {
    /// The caller's own calls took every place it has (`--max-calls-per-user`).
    Caller(usize),
    /// Every worker slot stayed taken (`--workers`).
    Server,
    /// `--state`: the shared store that counts the caller's calls is unreachable.
    State,
}

impl Busy {
    /// The message for the client.
    pub fn message(&self) -> String {
        match self {
            Busy::Caller(n) => format!(
                "Too many tool calls in flight: this user already has {n} running (the server's --max-calls-per-user); wait for one to finish"
            ),
            Busy::Server => "Server busy: every worker is taken; try again shortly".to_string(),
            Busy::State => {
                "Service unavailable: the shared state store is unreachable; try again shortly"
                    .to_string()
            }
        }
    }
}

/// Runs a tool call for `key`: first a place among its own calls, then a worker slot.
pub fn run_call<T>(
    calls: &Arc<CallLimiter>,
    slots: &Slots,
    key: CredentialKey,
    f: impl FnOnce() -> T,
) -> Result<T, Busy> {
    let started = Instant::now();
    let _permit = calls.acquire(key, SLOT_WAIT)?;
    let left = SLOT_WAIT.saturating_sub(started.elapsed());
    slots.run(left, f).ok_or(Busy::Server)
}

/// Runs `f` in a worker slot under a permit already held.
pub fn run_with_permit<T>(
    _permit: CallPermit,
    slots: &Slots,
    f: impl FnOnce() -> T,
) -> Result<T, Busy> {
    slots.run(SLOT_WAIT, f).ok_or(Busy::Server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_gets_its_share_and_others_stay_free() {
        let calls = CallLimiter::new(2);
        let a = [1u8; 32];
        let b = [2u8; 32];
        let p1 = calls.acquire(a, Duration::ZERO).unwrap();
        let _p2 = calls.acquire(a, Duration::ZERO).unwrap();
        assert_eq!(
            calls.acquire(a, Duration::from_millis(20)).err(),
            Some(Busy::Caller(2))
        );
        // Another credential is not held up.
        let pb = calls.acquire(b, Duration::ZERO);
        assert!(pb.is_ok());
        assert_eq!(calls.in_flight(&a), 2);
        drop(p1);
        assert!(calls.acquire(a, Duration::ZERO).is_ok());
        drop(pb);
        assert_eq!(calls.in_flight(&b), 0);
        assert!(lock(&calls.busy).get(&b).is_none());
    }

    #[test]
    fn a_waiting_call_runs_when_one_ends_and_panics_give_places_back() {
        let calls = CallLimiter::new(1);
        let slots = Arc::new(Slots::new(1));
        let key = [3u8; 32];
        let held = calls.acquire(key, Duration::ZERO).unwrap();
        let (c2, s2) = (calls.clone(), slots.clone());
        let t = std::thread::spawn(move || run_call(&c2, &s2, key, || 7));
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        assert_eq!(t.join().unwrap(), Ok(7));
        let (c3, s3) = (calls.clone(), slots.clone());
        let r =
            std::thread::spawn(move || run_call(&c3, &s3, key, || -> () { panic!("injected") }))
                .join();
        assert!(r.is_err());
        assert_eq!(calls.in_flight(&key), 0);
        assert_eq!(slots.free(), 1);
    }
}
