//! Work a handler starts once its answer is decided and that goes on after it answered: the
//! delivery of a reset code. Answering first keeps a decoy and a real send alike in time (S1 in
//! docs/security.md). The local server keeps running, so nothing has to wait for them; a Lambda
//! function may be frozen as soon as it has answered, so its internal extension waits for
//! [`Deliveries::settle`] before it lets the invocation end (docs/architecture.md).

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

/// How long a delivery waits before it starts, so that its work (a signed request to SNS or
/// SES) does not compete with the answer being written: on a small machine that made a
/// registered person's `send-code` answer a few milliseconds later than a decoy's.
const LET_THE_ANSWER_GO: std::time::Duration = std::time::Duration::from_millis(20);

/// The deliveries started and not yet awaited. Clones share them.
#[derive(Clone, Default)]
pub struct Deliveries {
    pending: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Deliveries {
    /// Starts `work` beside the answer, keeping the request's source for the audit.
    pub fn start(&self, work: impl Future<Output = ()> + Send + 'static) {
        let request = sspr_core::audit::current_request();
        let handle = tokio::spawn(sspr_core::audit::within_request(request, async move {
            tokio::time::sleep(LET_THE_ANSWER_GO).await;
            work.await
        }));
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.retain(|started| !started.is_finished());
        pending.push(handle);
    }

    /// Waits until every delivery started so far has ended (sent, or failed and audited).
    pub async fn settle(&self) {
        loop {
            let started = std::mem::take(&mut *self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            if started.is_empty() {
                return;
            }
            for handle in started {
                if let Err(e) = handle.await {
                    tracing::error!(error = %e, "a delivery ended abnormally");
                }
            }
        }
    }

    /// How many deliveries have been started and are not yet known to have ended.
    pub fn pending(&self) -> usize {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.retain(|started| !started.is_finished());
        pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Deliveries;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn settle_waits_for_every_delivery_started_even_one_started_by_another() {
        let deliveries = Deliveries::default();
        let done = Arc::new(AtomicUsize::new(0));
        for wait in [30, 10] {
            let (done, again, inner) = (Arc::clone(&done), deliveries.clone(), Arc::clone(&done));
            deliveries.start(async move {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                done.fetch_add(1, Ordering::SeqCst);
                // A delivery that starts another: settle waits for that one too.
                again.start(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    inner.fetch_add(1, Ordering::SeqCst);
                });
            });
        }
        assert_eq!(done.load(Ordering::SeqCst), 0, "started, not awaited");
        deliveries.settle().await;
        assert_eq!(done.load(Ordering::SeqCst), 4);
        assert_eq!(deliveries.pending(), 0);
        // Nothing pending: settling is immediate.
        tokio::time::timeout(Duration::from_millis(50), deliveries.settle()).await.expect("nothing to wait for");
    }

    #[tokio::test]
    async fn a_delivery_that_panics_is_logged_and_does_not_stop_the_others() {
        let deliveries = Deliveries::default();
        let done = Arc::new(AtomicUsize::new(0));
        deliveries.start(async { panic!("a sender's bug") });
        let counted = Arc::clone(&done);
        deliveries.start(async move {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        deliveries.settle().await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
