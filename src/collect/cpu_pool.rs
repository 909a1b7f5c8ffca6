//! A few threads of the collector's own for its CPU work: parsing,
//! sanitising, tagging. On the runtime's workers that work would stall
//! every other fetch's socket for milliseconds at a time (a 50-item feed
//! takes a few). Tokio's blocking pool is not used for it because it starts
//! a new thread whenever none is idle at that instant — nine of them in a
//! 500-feed collect on two cores — and glibc gives each thread that
//! allocates an arena of its own, which keeps its high-water mark. One
//! thread per core, the same ones for the whole run, is what the work
//! needs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Runs closures on a fixed set of threads, first come first served. The
/// threads end when the pool is dropped.
pub struct CpuPool {
    jobs: Sender<Job>,
}

/// Why a job gave no result.
#[derive(Debug, thiserror::Error)]
pub enum CpuPoolError {
    #[error("no processing thread could be started")]
    NoThreads,
    #[error("processing it panicked")]
    Panicked,
}

impl CpuPool {
    /// A pool of `threads` threads (at least one) named `name-N`.
    pub fn new(name: &str, threads: usize) -> Self {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            // A thread that cannot start leaves the work to the others; with
            // none, the receiver is gone and every job fails with NoThreads.
            let _ = std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || work(&queue));
        }
        CpuPool { jobs }
    }

    /// Runs `job` on one of the pool's threads and waits for its result
    /// without blocking the runtime. A panic costs this job, not the thread.
    pub async fn run<T, F>(&self, job: F) -> Result<T, CpuPoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if let Ok(value) = catch_unwind(AssertUnwindSafe(job)) {
                // The caller may have stopped waiting; nothing to do then.
                let _ = reply.send(value);
            }
        });
        self.jobs.send(job).map_err(|_| CpuPoolError::NoThreads)?;
        result.await.map_err(|_| CpuPoolError::Panicked)
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job, never while
        // running one; jobs catch their own panics, so it is never poisoned
        // by one.
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            // Every sender is gone: the pool was dropped.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_its_own_threads_and_survives_a_panic() {
        let pool = CpuPool::new("test-pool", 2);
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .expect("a job runs");
        assert!(name.is_some_and(|n| n.starts_with("test-pool-")));

        let panicked = pool.run(|| -> u32 { panic!("a hostile feed") }).await;
        assert!(matches!(panicked, Err(CpuPoolError::Panicked)));

        // Both threads still work after the panic: more jobs than threads,
        // all answered.
        let results = futures_util::future::join_all((0..8u32).map(|i| pool.run(move || i * 2))).await;
        let results: Vec<u32> = results.into_iter().map(|r| r.expect("a job runs")).collect();
        assert_eq!(results, (0..8).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn threads_end_when_the_pool_is_dropped() {
        let pool = CpuPool::new("test-drop", 1);
        let (tx, rx) = std::sync::mpsc::channel();
        pool.run(move || {
            // The sender lives in a thread-local of the pool's thread, so it
            // is dropped only when that thread ends.
            thread_local!(static HELD: std::cell::RefCell<Option<Sender<()>>> = const { std::cell::RefCell::new(None) });
            HELD.with(|h| *h.borrow_mut() = Some(tx));
        })
        .await
        .expect("a job runs");
        drop(pool);
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(10)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected),
            "the thread ended and dropped what it held"
        );
    }
}
